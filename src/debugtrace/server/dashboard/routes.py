"""The dashboard's pages and form posts (server-rendered; the JS only refreshes live statuses)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool

from debugtrace.collector import Collector
from debugtrace.errors import AuthError, JobConflict, TraceNotFound
from debugtrace.model import Trace
from debugtrace.server.auth import ADMIN, Authenticator, Principal
from debugtrace.server.dashboard import charts, views
from debugtrace.server.dashboard.session import (
    CSRF_COOKIE,
    FLASH_COOKIE,
    FLASH_TTL_S,
    SESSION_COOKIE,
    SESSION_TTL_S,
    Signer,
    new_csrf_cookie,
)
from debugtrace.server.dashboard.text import bug_title, is_cost_key, money
from debugtrace.server.guard import is_open
from debugtrace.storage import is_id

HERE = Path(__file__).parent
LIVE = ("queued", "finalizing")
SORT_LABELS = (
    ("-created", "newest first"),
    ("created", "oldest first"),
    ("-score", "highest score"),
    ("score", "lowest score"),
)


def _oneline(text: str | None, width: int = 80) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _yesno(value: bool | None, untested: bool = False) -> str:
    if untested:
        return "could not test"
    return "—" if value is None else ("yes" if value else "no")


def _verdict_class(value: bool | None, untested: bool = False) -> str:
    """The CSS class of a verdict's label: yes, no, untested (could not test), none."""
    if untested:
        return "verdict-untested"
    return "verdict-none" if value is None else ("verdict-yes" if value else "verdict-no")


def _when(value: datetime | None, seconds: bool = False) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def make_env() -> Environment:
    """The template environment: HTML autoescaped, undefined names are errors."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        oneline=_oneline,
        yesno=_yesno,
        when=_when,
        title=bug_title,
        money=money,
        verdict_class=_verdict_class,
    )
    return env


class Dashboard:
    """The pages over one Collector and Authenticator."""

    def __init__(self, collector: Collector, auth: Authenticator, signer: Signer) -> None:
        self.collector = collector
        self.auth = auth
        self.signer = signer
        self.env = make_env()

    # -- who is asking ---------------------------------------------------------------------------

    async def identify(self, request: Request) -> tuple[Principal | None, bool]:
        """``(principal, signed_in)``: the admin when no token is configured; else the session's
        caller, looked up in the store on every request (None without a valid session)."""
        open_ = is_open(request)
        if open_ is None:  # no guard ran (the dashboard mounted alone)
            open_ = not await run_in_threadpool(self.auth.required)
        if open_:
            return ADMIN, False
        key = self.signer.session_key(request.cookies.get(SESSION_COOKIE))
        if key is None:
            return None, False
        who = await run_in_threadpool(self.auth.session_principal, key)
        return who, who is not None

    def to_login(self, request: Request, target: str | None = None) -> Response:
        """303 to the sign-in form, which comes back to ``target`` (default: this page)."""
        if target is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)

    # -- rendering ------------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        *,
        who: Principal | None = None,
        signed_in: bool = False,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page, with this browser's CSRF token (and its cookie, set on the first page)."""
        csrf_cookie = request.cookies.get(CSRF_COOKIE)
        fresh = not csrf_cookie or len(csrf_cookie) > 64
        if fresh:
            csrf_cookie = new_csrf_cookie()
        assert csrf_cookie is not None
        html = self.env.get_template(template).render(
            who=who or ADMIN,
            signed_in=signed_in,
            csrf=self.signer.csrf_token(csrf_cookie, request.cookies.get(SESSION_COOKIE)),
            section=context.pop("section", ""),
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        if fresh:
            _set_cookie(request, response, CSRF_COOKIE, csrf_cookie, max_age=None)
        return response

    def error(
        self, request: Request, status: int, heading: str, message: str, **kw: Any
    ) -> HTMLResponse:
        return self.render(
            request, "error.html", status_code=status, heading=heading, message=message, **kw
        )

    def no_such_trace(
        self, request: Request, trace_id: str, who: Principal, signed_in: bool
    ) -> HTMLResponse:
        """The 404 page for an unknown trace, or another developer's (the same, as in the API)."""
        return self.error(
            request,
            404,
            "No such trace",
            f"There is no trace {trace_id}.",
            who=who,
            signed_in=signed_in,
        )

    # -- form posts -----------------------------------------------------------------------------

    async def form(self, request: Request) -> dict[str, str] | None:
        """The posted form, when it comes from one of our pages (same origin, valid CSRF token);
        None otherwise."""
        if not _same_origin(request):
            return None
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return None
        body = await request.body()
        try:
            parsed = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return None
        fields = {k: v[0] for k, v in parsed.items() if v}
        ok = self.signer.check_csrf(
            fields.get("csrf"),
            request.cookies.get(CSRF_COOKIE),
            request.cookies.get(SESSION_COOKIE),
        )
        return fields if ok else None

    def forbidden_form(self, request: Request, who: Principal, signed_in: bool) -> HTMLResponse:
        return self.error(
            request,
            403,
            "Form refused",
            "This form is out of date or came from another site. Reload the page and try again.",
            who=who,
            signed_in=signed_in,
        )

    def flash_redirect(self, request: Request, trace_id: str, message: str) -> Response:
        path = f"/traces/{trace_id}"
        response = RedirectResponse(path, status_code=303)
        value = self.signer.sign("flash", {"t": trace_id, "m": message}, FLASH_TTL_S)
        _set_cookie(request, response, FLASH_COOKIE, value, max_age=FLASH_TTL_S, path=path)
        return response

    def take_flash(self, request: Request, trace_id: str) -> str:
        ok, value = self.signer.unsign("flash", request.cookies.get(FLASH_COOKIE))
        if ok and isinstance(value, dict) and value.get("t") == trace_id:
            return str(value.get("m", ""))
        return ""


def _set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int | None,
    path: str = "/",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _same_origin(request: Request) -> bool:
    """False for a request the browser says another site started (``Sec-Fetch-Site``).

    A second line of defence behind the CSRF token; the ``Origin`` is not compared with ``Host``
    because a reverse proxy may rewrite the latter."""
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def safe_next(target: str | None) -> str:
    """A local path to go back to after signing in (anything else: the trace list)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 32 for c in target):
        return "/"
    return target


def build_router(dash: Dashboard) -> APIRouter:
    """The dashboard's routes (left out of the OpenAPI document: they are pages, not the API)."""
    router = APIRouter(include_in_schema=False)
    collector = dash.collector

    @router.get("/")
    async def trace_list(request: Request) -> Response:
        who, signed_in = await dash.identify(request)
        if who is None:
            return dash.to_login(request)
        filters = views.Filters.parse(request.query_params)
        page = await run_in_threadpool(views.list_page, collector, who, filters)
        return dash.render(
            request,
            "list.html",
            who=who,
            signed_in=signed_in,
            section="traces",
            filters=filters,
            page=page,
            statuses=views.STATUSES,
            sorts=SORT_LABELS,
        )

    @router.get("/overview")
    async def overview(request: Request) -> Response:
        who, signed_in = await dash.identify(request)
        if who is None:
            return dash.to_login(request)
        data = await run_in_threadpool(views.overview, collector, who)
        return dash.render(
            request,
            "overview.html",
            who=who,
            signed_in=signed_in,
            section="overview",
            data=data,
            score_chart=charts.vertical_bars(
                "chart-scores",
                "Traces per score",
                data.scores,
                [f"score-{label}" if label.isdigit() else "score-none" for label, _ in data.scores],
            ),
            validated_chart=charts.share_bar(
                "chart-validated",
                "Share of validated fixes",
                data.validated,
                ["v-" + label.replace(" ", "-") for label, _ in data.validated],
            ),
            developer_chart=charts.stacked_columns(
                "chart-developers",
                "Traces per developer per week",
                data.weeks,
                data.per_developer,
            ),
        )

    @router.get("/traces/{trace_id}")
    async def trace_page(request: Request, trace_id: str) -> Response:
        who, signed_in = await dash.identify(request)
        if who is None:
            return dash.to_login(request)
        if not is_id(trace_id):  # not an id at all: never reaches the store
            return dash.no_such_trace(request, trace_id, who, signed_in)
        trace = await _owned_trace(collector, who, trace_id)
        if trace is None:
            return dash.no_such_trace(request, trace_id, who, signed_in)
        split = request.query_params.get("view") == "split"
        result = trace.result
        test_search = (request.query_params.get("tests") or "").strip()[: views.MAX_TEST_FILTER]
        test_groups = views.group_tests(result, test_search)
        grades = [
            {
                "grade": g,
                "chart": charts.rubric_chart(
                    f"rubric-{i}",
                    f"Rubric of {g.grader or 'the grader'}",
                    {name: item.score for name, item in g.rubric.items()},
                ),
            }
            for i, g in enumerate(result.latest_grades().values())
        ]
        response = dash.render(
            request,
            "trace.html",
            who=who,
            signed_in=signed_in,
            section="traces",
            trace=trace,
            flash=dash.take_flash(request, trace_id),
            validation=result.validation,
            verdict=views.verdict_text(result),
            score=result.score(),
            held_out=views.held_out_view(trace),
            history=views.history_rows(result),
            latest_failed=views.latest_failed_run(result),
            metadata=_metadata(trace.metadata),
            stages=views.stage_list(result),
            test_groups=test_groups,
            test_search=test_search,
            title=bug_title(trace.bug_description, 300),
            grades=grades,
            events=await run_in_threadpool(views.timeline, trace, split),
            split=split,
        )
        if FLASH_COOKIE in request.cookies:
            response.delete_cookie(FLASH_COOKIE, path=request.url.path)
        return response

    @router.post("/traces/{trace_id}/finalize")
    async def finalize(request: Request, trace_id: str) -> Response:
        who, signed_in = await dash.identify(request)
        if who is None:
            return dash.to_login(request, f"/traces/{trace_id}")
        if await dash.form(request) is None:
            return dash.forbidden_form(request, who, signed_in)
        if not is_id(trace_id) or not await _may_access(collector, who, trace_id):
            return dash.no_such_trace(request, trace_id, who, signed_in)
        try:
            job = await run_in_threadpool(collector.enqueue, trace_id)
        except JobConflict:
            message = "A finalize of this trace is already queued or running."
        else:
            message = f"Finalize queued (job {job.id})."
        return dash.flash_redirect(request, trace_id, message)

    @router.post("/traces/{trace_id}/regrade")
    async def regrade(request: Request, trace_id: str) -> Response:
        who, signed_in = await dash.identify(request)
        if who is None:
            return dash.to_login(request, f"/traces/{trace_id}")
        if await dash.form(request) is None:
            return dash.forbidden_form(request, who, signed_in)
        if not is_id(trace_id):
            return dash.no_such_trace(request, trace_id, who, signed_in)
        trace = await _owned_trace(collector, who, trace_id)
        if trace is None:
            return dash.no_such_trace(request, trace_id, who, signed_in)
        if trace.status in LIVE:
            message = "A finalize of this trace is queued or running: re-grade after it ends."
            return dash.flash_redirect(request, trace_id, message)
        graded = await run_in_threadpool(collector.grade, trace_id)
        stage = next((s for s in graded.result.stages if s.name == "grade"), None)
        if stage is not None and stage.status not in ("ok", "skipped"):
            message = f"Re-grade {stage.status}: {stage.message}"
        else:
            scores = ", ".join(
                f"{g.grader} {g.score}/5" for g in graded.result.latest_grades().values()
            )
            message = f"Re-graded: {scores or 'no grader ran'}"
        return dash.flash_redirect(request, trace_id, message)

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        who, _ = await dash.identify(request)
        if who is not None:
            return RedirectResponse(target, status_code=303)
        return dash.render(request, "login.html", next=target, error="")

    @router.post("/login")
    async def login(request: Request) -> Response:
        fields = await dash.form(request)
        if fields is None:
            return dash.forbidden_form(request, ADMIN, False)
        target = safe_next(fields.get("next"))
        if is_open(request):  # no token configured: nothing to sign in to
            return RedirectResponse(target, status_code=303)
        token = fields.get("token", "").strip()
        try:
            who = await run_in_threadpool(dash.auth.authenticate, token) if token else None
        except AuthError:
            who = None
        if who is None:
            return dash.render(
                request,
                "login.html",
                status_code=401,
                next=target,
                error="That token is not valid. Check it and try again.",
            )
        key = await run_in_threadpool(
            collector.open_session, who.developer_id, who.token_id, SESSION_TTL_S
        )
        response = RedirectResponse(target, status_code=303)
        _set_cookie(
            request, response, SESSION_COOKIE, dash.signer.session(key), max_age=SESSION_TTL_S
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        fields = await dash.form(request)
        if fields is None:
            who, signed_in = await dash.identify(request)
            return dash.forbidden_form(request, who or ADMIN, signed_in)
        key = dash.signer.session_key(request.cookies.get(SESSION_COOKIE))
        if key is not None:  # ended in the store: a copy of the cookie is worthless now
            await run_in_threadpool(collector.end_session, key)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router


async def _owned_trace(collector: Collector, who: Principal, trace_id: str) -> Trace | None:
    """The whole trace, when it exists and ``who`` may see it; None otherwise."""
    try:
        trace = await run_in_threadpool(collector.get, trace_id)
    except TraceNotFound:
        return None
    return trace if who.may_access(trace.developer_id) else None


async def _may_access(collector: Collector, who: Principal, trace_id: str) -> bool:
    try:
        summary = await run_in_threadpool(collector.summary, trace_id)
    except TraceNotFound:
        return False
    return who.may_access(summary.developer_id)


def _metadata(metadata: dict[str, Any], keys: int = 20) -> list[tuple[str, str]]:
    out = []
    for key, value in list(metadata.items())[:keys]:
        if is_cost_key(str(key)) and isinstance(value, int | float) and not isinstance(value, bool):
            text = money(value)
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
        out.append((str(key), _oneline(text, 200)))
    return out


__all__ = ["Dashboard", "build_router", "make_env", "safe_next"]
