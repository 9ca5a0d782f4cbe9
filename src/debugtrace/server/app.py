"""The FastAPI app. Routes only translate HTTP to Collector calls and errors to status codes."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from debugtrace.collector import Collector
from debugtrace.config import Settings
from debugtrace.errors import (
    AppendConflict,
    AuthError,
    Forbidden,
    InvalidTrace,
    JobConflict,
    JobNotFound,
    StorageError,
    TraceIdConflict,
    TraceNotFound,
)
from debugtrace.ingest import parse_trace
from debugtrace.jobs import LEASE_S, Job
from debugtrace.model import EVENT_LIST, Event, Trace, TraceStatus
from debugtrace.server.auth import ADMIN, Authenticator, Principal
from debugtrace.server.bodylimit import BodyLimitMiddleware
from debugtrace.server.dashboard import SESSION_COOKIE, Signer, install
from debugtrace.server.guard import GuardSettings, RequestGuard, is_open
from debugtrace.server.housekeeping import start_cleanup
from debugtrace.storage import ID_PATTERN, TracePage

log = logging.getLogger(__name__)

JSON = "application/json"
_EVENTS_SCHEMA = EVENT_LIST.json_schema(ref_template="#/components/schemas/{model}")

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?")


def _iso_only(value: Any) -> Any:
    """``since`` is a date or a date-time in ISO 8601; pydantic alone would also take a number
    of seconds since 1970 (``0.5``), which no one means."""
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value.strip()):
        raise ValueError("must be an ISO 8601 date or date-time, e.g. 2025-01-31T12:00:00Z")
    return value


TraceId = Annotated[
    str, Path(pattern=ID_PATTERN, description="a trace id (24 hex digits)", examples=["0" * 24])
]
JobId = Annotated[
    str, Path(pattern=ID_PATTERN, description="a job id (24 hex digits)", examples=["0" * 24])
]
Since = Annotated[
    datetime,
    BeforeValidator(_iso_only),
    Query(description="created at or after (ISO 8601 date or date-time)"),
]
# Filter values are stored text: NUL can be in none of them (and PostgreSQL refuses it).
_TEXT = r"^[^\x00]*$"


# -- documented response bodies (the routes build them by hand; these are for /openapi.json) ----


class Message(BaseModel):
    """An error that is not about one field: 401, 403, 404, 409, 413, 503."""

    detail: str


class PositionConflict(BaseModel):
    """409 of ``POST /api/traces/{id}/events?after=N``: the trace holds ``event_count`` events,
    neither ``N`` nor this batch after ``N``."""

    detail: str
    event_count: int


class FieldError(BaseModel):
    """One problem of a 422: where (a path of keys and indexes) and what."""

    loc: list[str | int]
    msg: str
    type: str | None = None
    """Set for errors in query or path parameters (FastAPI's validation), not for bodies."""


class InvalidInput(BaseModel):
    """422: every problem found in the request, each with its field path."""

    detail: list[FieldError]


class Submitted(BaseModel):
    """201 of ``POST /api/traces``."""

    id: str
    status: TraceStatus
    event_count: int
    job: Job | None


class EventsAdded(BaseModel):
    """201 of ``POST /api/traces/{id}/events`` (also for a repeat of a batch sent with
    ``?after=N`` that the trace already holds: the same numbers, nothing stored twice)."""

    trace_id: str
    count: int
    first_seq: int | None
    last_seq: int | None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of a route (every /api route may answer 400, 401, 422
    and 503; writes 403 and 415 too)."""
    text = {
        400: "a Host header this server does not answer (DNS rebinding; see docs/http.md)",
        401: "missing or invalid bearer token",
        403: "the token may not write this developer's traces, or a cross-site write",
        404: "no such trace or job (or another developer's)",
        409: "a finalize of this trace is already queued or running; a client-chosen id that "
        "holds a different trace; an append whose ?after= is not the trace's event count",
        413: "request body over DEBUGTRACE_MAX_BODY_BYTES",
        415: "a write whose body is not application/json",
        422: "invalid input; each error names its field path",
        503: "the database is unavailable",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted({*codes, 400, 401, 422, 503}):
        model = InvalidInput if code == 422 else Message
        out[code] = {"model": model, "description": text[code]}
    out[401]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return out


_LOCATION = {"Location": {"description": "URL of the new resource", "schema": {"type": "string"}}}
_LOCATED = {"headers": _LOCATION}


async def caller(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The authenticated caller (a dependency of every /api route).

    A bearer token, or for GET and HEAD only (reads: no CSRF risk) the dashboard's session
    cookie, which its script uses to refresh statuses; the session is checked against the store
    on every request (sign-out and token revocation end it).
    """
    auth: Authenticator = request.app.state.auth
    if is_open(request):
        return ADMIN  # the guard found no token anywhere for this request (loopback only)
    if authorization is None and request.method in ("GET", "HEAD"):
        signer: Signer = request.app.state.signer
        key = signer.session_key(request.cookies.get(SESSION_COOKIE))
        if key is not None:
            who = await run_in_threadpool(auth.session_principal, key)
            if who is not None:
                return who
    return await run_in_threadpool(auth.principal, authorization)


# Module level: FastAPI resolves these (string) annotations in the module's namespace.
Caller = Annotated[Principal, Depends(caller)]


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    # Bodies are read raw and validated by the library (same errors as the CLI), so their schema
    # is declared here for /docs and /openapi.json rather than through a parameter.
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


FINALIZE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "test_patch": {
            "type": "string",
            "description": "held-out tests: a unified diff of test files applied to both runs "
            "(default: the trace's held_out.test_patch)",
        },
        "fail_to_pass": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 2000},
            "maxItems": 10000,
            "description": "test ids that must go from failing to passing for the fix to "
            "validate (default: the trace's held_out.fail_to_pass)",
        },
    },
}
"""The schema of a finalize request's optional body (checked by ``parse_finalize_request``)."""


def create_app(settings: Settings | None = None, collector: Collector | None = None) -> FastAPI:
    """Build the HTTP app over a Collector (made from ``settings`` when not given)."""
    collector = collector or Collector(settings=settings or Settings())
    auth = Authenticator(collector)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The auth mode is decided now: a store that ever issued a token keeps this process
        # closed whatever happens to the token rows later.
        await run_in_threadpool(auth.required)
        # Jobs whose runner died (lease expired) are requeued and every queued job resubmitted:
        # a restart loses nothing, and a second server leaves the first one's running jobs be.
        await run_in_threadpool(collector.resume_jobs)
        cleanup = start_cleanup(collector.settings)  # what crashed runs left (in the background)
        sweeper = asyncio.create_task(_sweep_expired_jobs(collector))
        yield
        sweeper.cancel()
        cleanup.join(timeout=1)
        await run_in_threadpool(collector.close)

    app = FastAPI(
        title="debugtrace",
        version="0.1.0",
        summary="Capture debugging sessions, validate fixes in a sandbox, grade the reasoning.",
        lifespan=lifespan,
    )
    app.state.collector = collector
    app.state.auth = auth

    # -- errors ---------------------------------------------------------------------------------

    @app.exception_handler(InvalidTrace)
    async def invalid(_: Request, exc: InvalidTrace) -> JSONResponse:
        return JSONResponse({"detail": exc.as_dicts()}, status_code=422)

    @app.exception_handler(TraceNotFound)
    @app.exception_handler(JobNotFound)
    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(JobConflict)
    @app.exception_handler(TraceIdConflict)
    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(AppendConflict)
    async def misplaced(_: Request, exc: AppendConflict) -> JSONResponse:
        # The count lets a client see where the trace stands (it resends nothing by itself).
        return JSONResponse({"detail": str(exc), "event_count": exc.event_count}, status_code=409)

    @app.exception_handler(AuthError)
    async def unauthorized(_: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(StorageError)
    async def unavailable(_: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A storage backend that let a driver error through (the database went away): still a
        # 503 that says so, never a bare 500.
        if _is_database_error(exc):
            log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
            return JSONResponse(
                {"detail": f"the database is unavailable: {type(exc).__name__}"}, status_code=503
            )
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Every method the path takes, not only those of the first route that matched it.
            headers["Allow"] = ", ".join(_allowed_methods(app, request.scope))
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    # -- helpers --------------------------------------------------------------------------------

    async def owned_trace(trace_id: str, who: Principal) -> Any:
        summary = await run_in_threadpool(collector.summary, trace_id)
        if not who.may_access(summary.developer_id):
            raise TraceNotFound(trace_id)  # another developer's trace: as if it did not exist
        return summary

    async def may_access(trace_id: str, who: Principal) -> bool:
        try:
            await owned_trace(trace_id, who)
        except TraceNotFound:
            return False
        return True

    # -- routes ---------------------------------------------------------------------------------

    @app.get("/healthz", tags=["ops"], responses={503: _errors()[503]})
    async def healthz() -> dict[str, str]:
        """Liveness and database reachability."""
        await run_in_threadpool(collector.traces, limit=1)
        return {"status": "ok"}

    @app.post(
        "/api/traces",
        status_code=201,
        tags=["traces"],
        openapi_extra=_body(Trace.model_json_schema(ref_template="#/components/schemas/{model}")),
        response_model=Submitted,
        responses={
            201: {"description": "stored; finalize queued unless ?finalize=false", **_LOCATED},
            200: {
                "model": Submitted,
                "description": "a repeat of the submission that stored the trace under this "
                "client-chosen `id`: nothing stored again, nothing queued",
                **_LOCATED,
            },
            **_errors(403, 409, 413, 415),
        },
    )
    async def submit(
        request: Request, who: Caller, finalize: Annotated[bool, Query()] = True
    ) -> JSONResponse:
        """Store a trace (the seed's JSON shape), then queue its finalize (`?finalize=false`
        only stores). Returns the new id, the status and the job.

        With an `id` (24 lowercase hex digits, chosen by the client) the trace is stored under
        it, once: a repeat of the same submission answers 200 with the stored trace, a
        different trace under that id is a 409."""
        body = await request.body()
        trace = await run_in_threadpool(parse_trace, body, collector.settings.limits)
        if not who.may_access(trace.developer_id):
            raise Forbidden(f"this token writes traces of developer {who.developer_id!r} only")
        # A server never clones local paths unless allowed: refused here, not at finalize.
        created = True
        if trace.id is None:
            stored = await run_in_threadpool(partial(collector.submit, trace, untrusted=True))
        else:
            stored, created = await run_in_threadpool(
                partial(collector.submit_once, trace, untrusted=True)
            )
        job = None
        if finalize and created:
            job = await run_in_threadpool(collector.enqueue, str(stored.id))
        return JSONResponse(
            {
                "id": stored.id,
                "status": "queued" if job else stored.status,
                "event_count": len(stored.events),
                "job": job.model_dump(mode="json") if job else None,
            },
            status_code=201 if created else 200,
            headers={"Location": f"/api/traces/{stored.id}"},
        )

    @app.get("/api/traces", response_model=TracePage, tags=["traces"], responses=_errors())
    async def list_traces(
        who: Caller,
        developer_id: Annotated[str | None, Query(pattern=_TEXT, max_length=255)] = None,
        repo_url: Annotated[str | None, Query(pattern=_TEXT, max_length=4096)] = None,
        status: TraceStatus | None = None,
        # Typed without `| None` so the schema is a plain date-time string: schemathesis mutates
        # an anyOf[date-time, null] parameter into invalid components (seen as a flaky failure).
        since: Since = None,  # type: ignore[assignment]
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9a-f]{1,64}$")] = None,
        q: Annotated[str | None, Query(pattern=_TEXT, max_length=500)] = None,
        repo_contains: Annotated[str | None, Query(pattern=_TEXT, max_length=4096)] = None,
        order: Literal["id", "created"] = "id",
    ) -> Response:
        """Trace summaries, newest first; pass `next_cursor` back as `cursor` for the next page.
        `q`: a part of the bug description or id, `repo_contains`: a part of the repository URL
        (any case; `%` and `_` are literal); `order`: by id (as stored) or by `created_at`."""
        if not who.admin:
            developer_id = who.developer_id
        page = await run_in_threadpool(
            collector.traces,
            developer_id=developer_id,
            repo_url=repo_url,
            status=status,
            since=since,
            limit=limit,
            cursor=cursor,
            text=q,
            repo_contains=repo_contains,
            order=order,
        )
        return Response(page.model_dump_json(), media_type=JSON)

    @app.get(
        "/api/traces/{trace_id}",
        tags=["traces"],
        responses={200: {"model": Trace}, **_errors(404)},
    )
    async def get_trace(trace_id: TraceId, who: Caller) -> Response:
        """The trace with its events and QA results (stages, test classification, grades)."""
        trace = await run_in_threadpool(collector.get, trace_id)
        if not who.may_access(trace.developer_id):
            raise TraceNotFound(trace_id)
        return Response(trace.model_dump_json(), media_type=JSON)

    @app.post(
        "/api/traces/{trace_id}/events",
        status_code=201,
        tags=["traces"],
        response_model=EventsAdded,
        responses={
            **_errors(403, 404, 413, 415),
            409: {
                "model": PositionConflict,
                "description": "?after=N is not the trace's event count (and the trace does "
                "not hold this batch after N)",
            },
        },
        openapi_extra=_body(
            {
                "anyOf": [
                    _EVENTS_SCHEMA,
                    {
                        "type": "object",
                        "properties": {"events": _EVENTS_SCHEMA},
                        "required": ["events"],
                    },
                ]
            }
        ),
    )
    async def add_events(
        trace_id: TraceId,
        request: Request,
        who: Caller,
        after: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    ) -> JSONResponse:
        """Append a batch of events (a list, or `{"events": [...]}`), atomically.

        `?after=N` makes it safe to retry: the batch is appended only when the trace has exactly
        N events; when it already holds this batch after N (the first try went through) the
        answer is the same, nothing stored twice; otherwise 409 with the trace's
        `event_count`."""
        body = await request.body()

        def append() -> list[Event]:
            # One trip to the thread pool for the whole batch (the hot path of ingestion); the
            # raw body goes to the library, which parses it once.
            # The admin may write any trace: no ownership query on the hot path.
            if not who.admin and not who.may_access(collector.summary(trace_id).developer_id):
                raise TraceNotFound(trace_id)
            return collector.add_events(trace_id, body, after=after)

        stored = await run_in_threadpool(append)
        seqs = [e.seq for e in stored]
        return JSONResponse(
            {
                "trace_id": trace_id,
                "count": len(stored),
                "first_seq": seqs[0] if seqs else None,
                "last_seq": seqs[-1] if seqs else None,
            },
            status_code=201,
        )

    @app.post(
        "/api/traces/{trace_id}/finalize",
        status_code=202,
        response_model=Job,
        tags=["traces"],
        responses={202: {"description": "queued", **_LOCATED}, **_errors(403, 404, 409, 413, 415)},
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": FINALIZE_BODY}},
            }
        },
    )
    async def finalize(trace_id: TraceId, request: Request, who: Caller) -> Response:
        """Queue finalize (clone, apply, test before/after, grade); returns the job.

        An optional JSON body gives held-out tests for this run, overriding the trace's own:
        `test_patch` (a diff of test files applied to both runs; bounded like an edit's diff)
        and `fail_to_pass` (test ids that must go from failing to passing)."""
        await owned_trace(trace_id, who)  # an unknown (or another's) trace: 404 first
        body = await request.body()
        options = None
        if body.strip():
            options = await run_in_threadpool(collector.finalize_request, body)
        job = await run_in_threadpool(partial(collector.enqueue, trace_id, options=options))
        return Response(
            job.model_dump_json(),
            media_type=JSON,
            status_code=202,
            headers={"Location": f"/api/jobs/{job.id}"},
        )

    @app.get("/api/jobs/{job_id}", response_model=Job, tags=["jobs"], responses=_errors(404))
    async def get_job(job_id: JobId, who: Caller) -> Response:
        """A job's state: queued, running, done or failed (with the error), and its attempts."""
        job = await run_in_threadpool(collector.job, job_id)
        if not who.admin and not await may_access(job.trace_id, who):
            raise JobNotFound(job_id)  # another developer's job: the same 404, no trace id
        return Response(job.model_dump_json(), media_type=JSON)

    # The web dashboard at / (pages, /static, security headers); see docs/dashboard.md.
    app.state.signer = install(app, collector, auth)
    app.add_middleware(BodyLimitMiddleware, max_bytes=collector.settings.max_body_bytes)
    # Outermost: Host, client, Origin and content-type rules before anything else runs.
    app.add_middleware(RequestGuard, auth=auth, allowed_hosts=GuardSettings().hosts())
    return app


async def _sweep_expired_jobs(collector: Collector, every_s: float = LEASE_S / 2) -> None:
    """Every half lease, requeue and resubmit the jobs whose runner died meanwhile (on another
    host, or a worker): they run again without waiting for a server to restart."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await run_in_threadpool(partial(collector.resume_jobs, all_queued=False))
        except Exception as exc:  # the database is away: try again at the next sweep
            log.warning("could not requeue jobs whose lease expired: %s", exc)


def _allowed_methods(app: FastAPI, scope: MutableMapping[str, Any]) -> list[str]:
    """Every method some route of ``app`` takes for the request's path."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match == Match.NONE:
            continue
        methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _is_database_error(exc: BaseException) -> bool:
    """A database driver's or SQLAlchemy's own exception (by module: the server does not import
    storage internals)."""
    return any(
        (cls.__module__ or "").split(".")[0] in ("sqlalchemy", "psycopg", "psycopg2", "sqlite3")
        for cls in type(exc).__mro__
    )


def app_from_env() -> FastAPI:
    """The app configured from the environment (the factory ``debugtrace serve`` gives uvicorn)."""
    return create_app(Settings())
