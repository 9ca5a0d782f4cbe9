"""The FastAPI app. Routes only translate HTTP to Collector calls and errors to status codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from ..collector import Collector
from ..config import Settings
from ..errors import ErrorDetail, InvalidTrace, JobNotFound, StorageError, TraceNotFound
from ..ingest import parse_events, parse_trace
from ..jobs import Job, JobConflict
from ..model import Event, Trace, TraceStatus
from ..storage import TracePage
from ..workspace import RepoError, check_repo_url
from .auth import Authenticator, AuthError, Forbidden, Principal
from .bodylimit import BodyLimitMiddleware

JSON = "application/json"
_EVENTS_SCHEMA = TypeAdapter(list[Event]).json_schema(ref_template="#/components/schemas/{model}")


async def caller(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The authenticated caller (a dependency of every /api route)."""
    auth: Authenticator = request.app.state.auth
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
        summary = await run_in_threadpool(_summary, collector, trace_id)
        if not who.may_access(summary.developer_id):
            raise TraceNotFound(trace_id)  # another developer's trace: as if it did not exist
        return summary

    # -- routes ---------------------------------------------------------------------------------

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness and database reachability."""
        await run_in_threadpool(collector.traces, limit=1)
        return {"status": "ok"}

    @app.post(
        "/api/traces",
        status_code=201,
        tags=["traces"],
        openapi_extra=_body(Trace.model_json_schema(ref_template="#/components/schemas/{model}")),
        responses={201: {"description": "stored; finalize queued unless finalize=false"}},
    )
    async def submit(
        request: Request, who: Caller, finalize: Annotated[bool, Query()] = True
    ) -> JSONResponse:
        """Store a trace (the seed's JSON shape), then queue its finalize (`?finalize=false`
        only stores). Returns the new id, the status and the job."""
        body = await request.body()
        trace = await run_in_threadpool(parse_trace, body, collector.settings.limits)
        try:
            # Refused here, not at finalize: a server never clones local paths unless allowed.
            check_repo_url(trace.repo_url, collector.settings.allow_local_repos)
        except RepoError as exc:
            raise InvalidTrace([ErrorDetail(("repo_url",), str(exc))]) from None
        if not who.may_access(trace.developer_id):
            raise Forbidden(f"this token writes traces of developer {who.developer_id!r} only")
        stored = await run_in_threadpool(collector.submit, trace)
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

    @app.get("/api/traces", response_model=TracePage, tags=["traces"])
    async def list_traces(
        who: Caller,
        developer_id: str | None = None,
        repo_url: str | None = None,
        status: TraceStatus | None = None,
        since: datetime | None = None,
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
        responses={200: {"model": Trace}, 404: {"description": "no such trace"}},
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
        await owned_trace(trace_id, who)
        events = await run_in_threadpool(parse_events, body, collector.settings.limits)
        stored = await run_in_threadpool(collector.add_events, trace_id, events)
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
        responses={409: {"description": "already queued or running"}},
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

    @app.get("/api/jobs/{job_id}", response_model=Job, tags=["jobs"])
    async def get_job(job_id: str, who: Caller) -> Response:
        """A job's state: queued, running, done or failed (with the error), and its attempts."""
        job = await run_in_threadpool(collector.job, job_id)
        await owned_trace(job.trace_id, who)
        return Response(job.model_dump_json(), media_type=JSON)

    app.add_middleware(BodyLimitMiddleware, max_bytes=collector.settings.max_body_bytes)
    return app


def _summary(collector: Collector, trace_id: str) -> Any:
    storage = collector.storage
    getter = getattr(storage, "get_summary", None)
    return getter(trace_id) if getter else storage.get(trace_id)


def app_from_env() -> FastAPI:
    """The app configured from the environment (the factory ``debugtrace serve`` gives uvicorn)."""
    return create_app(Settings())
