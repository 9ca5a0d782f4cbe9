"""The FastAPI app. Routes only translate HTTP to Collector calls and errors to status codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from debugtrace.collector import Collector
from debugtrace.config import Settings
from debugtrace.errors import (
    AuthError,
    Forbidden,
    InvalidTrace,
    JobConflict,
    JobNotFound,
    StorageError,
    TraceNotFound,
)
from debugtrace.ingest import parse_trace
from debugtrace.jobs import Job
from debugtrace.model import EVENT_LIST, Event, Trace, TraceStatus
from debugtrace.server.auth import ADMIN, Authenticator, Principal
from debugtrace.server.bodylimit import BodyLimitMiddleware
from debugtrace.server.dashboard import SESSION_COOKIE, Signer, install
from debugtrace.storage import TracePage

JSON = "application/json"
_EVENTS_SCHEMA = EVENT_LIST.json_schema(ref_template="#/components/schemas/{model}")


# -- documented response bodies (the routes build them by hand; these are for /openapi.json) ----


class Message(BaseModel):
    """An error that is not about one field: 401, 403, 404, 409, 413, 503."""

    detail: str


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
    """201 of ``POST /api/traces/{id}/events``."""

    trace_id: str
    count: int
    first_seq: int | None
    last_seq: int | None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of a route (every /api route may answer 401 and 503)."""
    text = {
        401: "missing or invalid bearer token",
        403: "the token may not write this developer's traces",
        404: "no such trace or job (or another developer's)",
        409: "a finalize of this trace is already queued or running",
        413: "request body over DEBUGTRACE_MAX_BODY_BYTES",
        422: "invalid input; each error names its field path",
        503: "the database is unavailable",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted({*codes, 401, 422, 503}):
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

    A bearer token, or for GET and HEAD only (reads: no CSRF risk) the dashboard's signed session
    cookie, which its script uses to refresh statuses.
    """
    auth: Authenticator = request.app.state.auth
    if auth.open_access():
        return ADMIN  # no thread-pool trip on the (loopback-only) open server's hot path
    if authorization is None and request.method in ("GET", "HEAD"):
        signer: Signer = request.app.state.signer
        who = signer.principal(request.cookies.get(SESSION_COOKIE))
        if who is not None:
            return who
    return await run_in_threadpool(auth.principal, authorization)


# Module level: FastAPI resolves these (string) annotations in the module's namespace.
Caller = Annotated[Principal, Depends(caller)]


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    # Bodies are read raw and validated by the library (same errors as the CLI), so their schema
    # is declared here for /docs and /openapi.json rather than through a parameter.
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


def create_app(settings: Settings | None = None, collector: Collector | None = None) -> FastAPI:
    """Build the HTTP app over a Collector (made from ``settings`` when not given)."""
    collector = collector or Collector(settings=settings or Settings())
    auth = Authenticator(collector)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Jobs a previous process left queued or running are resubmitted: a restart loses nothing.
        await run_in_threadpool(collector.resume_jobs)
        yield
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
    async def conflict(_: Request, exc: JobConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

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

    # -- helpers --------------------------------------------------------------------------------

    async def owned_trace(trace_id: str, who: Principal) -> Any:
        summary = await run_in_threadpool(collector.summary, trace_id)
        if not who.may_access(summary.developer_id):
            raise TraceNotFound(trace_id)  # another developer's trace: as if it did not exist
        return summary

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
            **_errors(403, 413),
        },
    )
    async def submit(
        request: Request, who: Caller, finalize: Annotated[bool, Query()] = True
    ) -> JSONResponse:
        """Store a trace (the seed's JSON shape), then queue its finalize (`?finalize=false`
        only stores). Returns the new id, the status and the job."""
        body = await request.body()
        trace = await run_in_threadpool(parse_trace, body, collector.settings.limits)
        if not who.may_access(trace.developer_id):
            raise Forbidden(f"this token writes traces of developer {who.developer_id!r} only")
        # A server never clones local paths unless allowed: refused here, not at finalize.
        stored = await run_in_threadpool(partial(collector.submit, trace, untrusted=True))
        job = None
        if finalize:
            job = await run_in_threadpool(collector.enqueue, str(stored.id))
        return JSONResponse(
            {
                "id": stored.id,
                "status": "queued" if job else stored.status,
                "event_count": len(stored.events),
                "job": job.model_dump(mode="json") if job else None,
            },
            status_code=201,
            headers={"Location": f"/api/traces/{stored.id}"},
        )

    @app.get("/api/traces", response_model=TracePage, tags=["traces"], responses=_errors())
    async def list_traces(
        who: Caller,
        developer_id: str | None = None,
        repo_url: str | None = None,
        status: TraceStatus | None = None,
        # Typed without `| None` so the schema is a plain date-time string: schemathesis mutates
        # an anyOf[date-time, null] parameter into invalid components (seen as a flaky failure).
        since: Annotated[datetime, Query(description="created at or after")] = None,  # type: ignore[assignment]  # noqa: RUF013
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9a-f]{1,64}$")] = None,
    ) -> Response:
        """Trace summaries, newest first; pass `next_cursor` back as `cursor` for the next page."""
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
        )
        return Response(page.model_dump_json(), media_type=JSON)

    @app.get(
        "/api/traces/{trace_id}",
        tags=["traces"],
        responses={200: {"model": Trace}, **_errors(404)},
    )
    async def get_trace(trace_id: str, who: Caller) -> Response:
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
        responses=_errors(404, 413),
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
    async def add_events(trace_id: str, request: Request, who: Caller) -> JSONResponse:
        """Append a batch of events (a list, or `{"events": [...]}`), atomically."""
        body = await request.body()

        def append() -> list[Event]:
            # One trip to the thread pool for the whole batch (the hot path of ingestion); the
            # raw body goes to the library, which parses it once.
            # The admin may write any trace: no ownership query on the hot path.
            if not who.admin and not who.may_access(collector.summary(trace_id).developer_id):
                raise TraceNotFound(trace_id)
            return collector.add_events(trace_id, body)

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
        responses={202: {"description": "queued", **_LOCATED}, **_errors(404, 409)},
    )
    async def finalize(trace_id: str, who: Caller) -> Response:
        """Queue finalize (clone, apply, test before/after, grade); returns the job."""
        await owned_trace(trace_id, who)
        job = await run_in_threadpool(collector.enqueue, trace_id)
        return Response(
            job.model_dump_json(),
            media_type=JSON,
            status_code=202,
            headers={"Location": f"/api/jobs/{job.id}"},
        )

    @app.get("/api/jobs/{job_id}", response_model=Job, tags=["jobs"], responses=_errors(404))
    async def get_job(job_id: str, who: Caller) -> Response:
        """A job's state: queued, running, done or failed (with the error), and its attempts."""
        job = await run_in_threadpool(collector.job, job_id)
        await owned_trace(job.trace_id, who)
        return Response(job.model_dump_json(), media_type=JSON)

    # The web dashboard at / (pages, /static, security headers); see docs/dashboard.md.
    app.state.signer = install(app, collector, auth)
    app.add_middleware(BodyLimitMiddleware, max_bytes=collector.settings.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """The app configured from the environment (the factory ``debugtrace serve`` gives uvicorn)."""
    return create_app(Settings())
