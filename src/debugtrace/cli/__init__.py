"""The ``debugtrace`` command: a thin layer over :class:`debugtrace.Collector`.

Bad input prints one line saying what is wrong and where, and exits 2; a failing backend (database
unreachable, ...) exits 1. Heavy modules are imported inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import sys

# `debugtrace hook ...` runs on every tool call of a coding agent, which waits for it: answer it
# before the imports below, with a stdlib-only module that never fails (capture/claude_code_hook).
if sys.argv[1:2] == ["hook"] and "debugtrace" in sys.argv[0].replace("\\", "/").split("/")[-1]:
    from debugtrace.capture.claude_code_hook import main as _hook_main

    sys.exit(_hook_main(sys.argv[2:]))

import argparse
import contextlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from debugtrace import __version__
from debugtrace.cli import held_out
from debugtrace.errors import UsageError
from debugtrace.registry import DISTRIBUTION

if TYPE_CHECKING:
    from pydantic import ValidationError

    from debugtrace.client import RemoteCollector
    from debugtrace.collector import Collector
    from debugtrace.config import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Same one-line shape as every other bad-input message, and the usual exit code 2.
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


def _read_input(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from None


def _settings(args: argparse.Namespace) -> Settings:
    """The settings from the environment (and ``.env``), with ``--database-url`` on top."""
    from pydantic import ValidationError

    from debugtrace.config import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        raise UsageError(_bad_setting(exc)) from None
    updates: dict[str, Any] = {}
    if args.database_url:
        updates["database_url"] = args.database_url
    if "allow_local_repos" not in settings.model_fields_set:
        # On the command line the user finalizes their own traces, local repositories included;
        # DEBUGTRACE_ALLOW_LOCAL_REPOS=0 turns this off. (The HTTP server never allows them.)
        updates["allow_local_repos"] = True
    if "trust_trace_test_command" not in settings.model_fields_set:
        updates["trust_trace_test_command"] = True  # the user's own traces, as above
    return settings.model_copy(update=updates) if updates else settings


def _bad_setting(exc: ValidationError) -> str:
    # Field ``foo`` (of Settings or of its nested Limits) is read from DEBUGTRACE_FOO.
    errors = exc.errors()
    loc = errors[0]["loc"] if errors else ()
    name = f"DEBUGTRACE_{str(loc[0]).upper()}" if loc else "a DEBUGTRACE_* variable"
    msg = errors[0]["msg"] if errors else str(exc)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid setting {name} (environment or .env): {msg}{more}"


def _collector(args: argparse.Namespace) -> Collector:
    from debugtrace.collector import Collector

    return Collector(settings=_settings(args))


def _capture(args: argparse.Namespace) -> Collector | RemoteCollector:
    """Where recording commands send: the team server of ``DEBUGTRACE_SERVER_URL`` (through
    the spool: nothing is lost while it is unreachable), else the local database."""
    from debugtrace.client import connect

    return connect(_settings(args))


def _finalize_or_queue(c: Collector | RemoteCollector, trace_id: str) -> tuple[Any, int | None]:
    """Finalize here, or queue it on the team server (its result comes later: ``show``)."""
    from debugtrace.client import RemoteCollector

    if isinstance(c, RemoteCollector):
        c.enqueue_finalize(trace_id)
        print(f"finalize queued on {c.settings.server_url}", file=sys.stderr)
        return None, EXIT_OK
    from debugtrace.cli.render import render_result

    trace = c.finalize(trace_id, progress=_progress())
    sys.stdout.write(render_result(trace))
    return trace, None


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


# -- commands ---------------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace) -> int:
    text = _read_input(args.file)
    with _capture(args) as c:
        trace = c.submit(text)
        print(f"stored trace with {len(trace.events)} events", file=sys.stderr)
        if args.finalize:
            _finalize_or_queue(c, str(trace.id))
        print(trace.id)
    # Stored either way; a failed stage is reported but does not make the submit fail.
    return EXIT_OK


def _progress() -> Callable[[Any], None]:
    """Stage progress on stderr: a spinner on a terminal, one line per finished stage."""
    from debugtrace.cli.render import StageProgress

    return StageProgress(sys.stderr)


def cmd_events_add(args: argparse.Namespace) -> int:
    text = _read_input(args.file)
    with _capture(args) as c:
        stored = c.add_events(args.trace_id, text)
    seqs = [e.seq for e in stored]
    span = f"{seqs[0]}..{seqs[-1]}" if seqs else "none"
    print(f"added {len(stored)} events to {args.trace_id} (seq {span})")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    with _collector(args) as c:
        trace = c.get(args.trace_id)
    if args.json:
        sys.stdout.write(trace.model_dump_json(indent=2) + "\n")
    else:
        from debugtrace.cli.render import render_trace

        sys.stdout.write(render_trace(trace, full=args.full))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    with _collector(args) as c:
        page = c.traces(
            developer_id=args.developer,
            repo_url=args.repo,
            status=args.status,
            limit=args.limit,
            cursor=args.cursor,
            text=args.search,
            repo_contains=args.repo_contains,
            order="created" if args.by_created else "id",
        )
    if args.json:
        sys.stdout.write(page.model_dump_json(indent=2) + "\n")
        return EXIT_OK
    from debugtrace.cli.render import render_page

    sys.stdout.write(render_page(page))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from debugtrace.cli.export import cmd_export as run

    since = _parse_since(args.since) if args.since is not None else None
    return run(args, since, _collector)


def _parse_since(value: str) -> Any:
    from datetime import datetime

    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since {value!r} is not a date or time (YYYY-MM-DD, or ISO 8601 such as "
            "2025-03-01T09:00:00Z; without a zone it is UTC)"
        ) from None


def cmd_finalize(args: argparse.Namespace) -> int:
    from debugtrace.cli.held_out import read_test_patch, test_ids
    from debugtrace.finalize import FinalizeOptions

    settings = _settings(args)
    test_patch = None
    if args.test_patch is not None:
        test_patch = read_test_patch(args.test_patch, settings.limits.max_diff_bytes)
    fail_to_pass = test_ids(args.fail_to_pass) if args.fail_to_pass is not None else None
    options = FinalizeOptions(
        repeat=args.repeat,
        per_edit=args.per_edit,
        test_command=args.test_command,
        force=args.force,
        test_patch=test_patch,
        fail_to_pass=fail_to_pass,
    )
    from debugtrace.collector import Collector

    with Collector(settings=settings) as c:
        trace = c.finalize(args.trace_id, options, progress=_progress())
    from debugtrace.cli.render import render_result

    sys.stdout.write(render_result(trace))
    return _finalize_exit(trace, latest=True)


def _finalize_exit(trace: Any, latest: bool = False) -> int:
    """0 when every stage ran (ok or skipped), 1 with one line naming the first that did not.

    With ``latest``, the stages of the newest run (which may be in the history when it failed
    before the tests and an earlier verdict stands)."""
    from debugtrace.storage import latest_run

    run = latest_run(trace.result) if latest else trace.result
    for st in run.stages:
        if st.status in ("failed", "error"):
            _fail(f"stage {st.name} {st.status}: {st.message}")
            return EXIT_FAILED
    return EXIT_OK


def cmd_grade(args: argparse.Namespace) -> int:
    graders = [n.strip() for n in args.grader.split(",")] if args.grader else None
    with _collector(args) as c:
        trace = c.grade(args.trace_id, graders)
    from debugtrace.cli.render import render_grades

    sys.stdout.write(render_grades(trace))
    return _finalize_exit(trace)


def cmd_sandbox_build(args: argparse.Namespace) -> int:
    from debugtrace.sandbox.docker.images import build_sandbox_image
    from debugtrace.sandbox.docker.sandbox import connect

    packages = tuple(p.strip() for p in args.packages.split(",") if p.strip())
    tag = build_sandbox_image(
        connect(),
        tag=args.tag,
        base=args.base,
        packages=packages,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(tag)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import ipaddress
    import os

    settings = _settings(args)
    if args.database_url:
        os.environ["DEBUGTRACE_DATABASE_URL"] = args.database_url  # uvicorn's workers read it
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        from debugtrace.collector import Collector

        with Collector(settings=settings) as c:
            has_tokens = c.has_tokens()
        if not (settings.api_token or has_tokens):
            raise UsageError(
                f"refusing to serve on {args.host} without authentication: set "
                "DEBUGTRACE_API_TOKEN or create a token (`debugtrace token create DEV_ID`), "
                "or serve on 127.0.0.1"
            )
    import uvicorn

    uvicorn.run(
        "debugtrace.server.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )
    return EXIT_OK


def cmd_token_create(args: argparse.Namespace) -> int:
    with _collector(args) as c:
        token = c.create_token(args.developer_id)
        info = c.token_info(token)
    ident = f" {info.id}" if info is not None else ""
    print(
        f"token{ident} for {args.developer_id} (shown once; only its hash is stored):",
        file=sys.stderr,
    )
    print(token)
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    with _collector(args) as c:
        tokens = c.tokens(args.developer)
    if args.json:
        _print_json([t.model_dump(mode="json") for t in tokens])
        return EXIT_OK
    if not tokens:
        print("no tokens", file=sys.stderr)
        return EXIT_OK
    print(f"{'ID':<24}  {'DEVELOPER':<20}  {'CREATED':<20}  STATUS")
    for t in tokens:
        status = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        print(f"{t.id:<24}  {t.developer_id:<20}  {t.created_at:%Y-%m-%d %H:%M} UTC  {status}")
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    ids = list(args.token_ids)
    if not ids and not args.developer:
        raise UsageError(
            "name the tokens to revoke (IDs from `debugtrace token list`) or --developer"
        )
    with _collector(args) as c:
        if args.developer:
            ids += [t.id for t in c.tokens(args.developer) if t.active]
            if not ids:
                raise UsageError(f"developer {args.developer!r} has no active token")
        unknown = []
        for token_id in ids:
            info = c.revoke_token(token_id)
            if info is None:
                unknown.append(token_id)
            else:
                print(f"revoked {info.id} ({info.developer_id})")
    if unknown:
        raise UsageError(f"no token with id {', '.join(unknown)} (see `debugtrace token list`)")
    return EXIT_OK


# -- the command-line workflow: start / exec / note / diff / stop -------------------------------


def _store(c: Collector | RemoteCollector) -> Any:
    from debugtrace.capture.session import SessionStore

    return SessionStore(c.settings.data_dir / "sessions")


def _session(c: Collector | RemoteCollector, trace_id: str | None) -> Any:
    """The session named by id, else the open one of the current repository."""
    from debugtrace.capture.session import repo_root
    from debugtrace.errors import NoOpenSession

    store = _store(c)
    if trace_id:
        found = store.by_id(trace_id)
        if found is None:
            c.get(trace_id)  # unknown ids say so
            raise NoOpenSession(f"trace {trace_id} is not open here (start one, or it was stopped)")
        return found
    return store.for_repo(repo_root(Path.cwd()))


def cmd_spool_flush(args: argparse.Namespace) -> int:
    from debugtrace.client.cli import cmd_spool_flush as flush

    return flush(args)


def cmd_start(args: argparse.Namespace) -> int:
    from debugtrace.capture.session import start

    with _capture(args) as c:
        session = start(c, _store(c), Path(args.repo), args.bug, args.developer)
    print(f"recording {session.repo} (stop with `debugtrace stop`)", file=sys.stderr)
    print(session.trace_id)
    return EXIT_OK


def cmd_exec(args: argparse.Namespace) -> int:
    from debugtrace.capture.recorder import run_command

    rest = list(args.rest)
    if "--" not in rest:
        raise UsageError("usage: debugtrace exec [ID] -- COMMAND [ARGS...]")
    split = rest.index("--")
    ids, cmd = rest[:split], rest[split + 1 :]
    if len(ids) > 1 or not cmd:
        raise UsageError("usage: debugtrace exec [ID] -- COMMAND [ARGS...]")
    with _capture(args) as c:
        session = _session(c, ids[0] if ids else None)
        event = run_command(
            cmd, max_output=c.settings.limits.max_output_bytes, echo=sys.stdout.buffer
        )
        c.add_events(session.trace_id, [event])
    code = event.details.exit_code
    return code if isinstance(code, int) and code >= 0 else EXIT_FAILED


def cmd_note(args: argparse.Namespace) -> int:
    from debugtrace.model import ReasoningEvent

    trace_id, text = (
        (args.words[0], args.words[1]) if len(args.words) == 2 else (None, args.words[0])
    )
    with _capture(args) as c:
        session = _session(c, trace_id)
        confidence: str | float | None = args.confidence
        with contextlib.suppress(TypeError, ValueError):
            confidence = float(args.confidence)  # "0.7" on the command line means the number
        c.add_events(session.trace_id, [ReasoningEvent.new(text, args.type, confidence)])
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from debugtrace.capture.session import capture

    with _capture(args) as c:
        stored = capture(c, _store(c), _session(c, args.trace_id))
    files = ", ".join(e.details.file for e in stored) or "nothing changed"
    print(f"recorded {len(stored)} edit(s): {files}", file=sys.stderr)
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    with _capture(args) as c:
        session = _session(c, args.trace_id)
        _store(c).close(session)
        print(f"stopped recording {session.trace_id}", file=sys.stderr)
        if args.finalize:
            trace, queued = _finalize_or_queue(c, session.trace_id)
            return queued if queued is not None else _finalize_exit(trace, latest=True)
    print(session.trace_id)
    return EXIT_OK


def cmd_record(args: argparse.Namespace) -> int:
    from debugtrace.capture.shell import EXIT_NOT_OPEN, parse_record, record
    from debugtrace.errors import DebugtraceError, StorageError

    try:
        request = parse_record(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with _capture(args) as c:
        try:
            session = _session(c, request.trace_id)
        except StorageError:
            raise
        except DebugtraceError as exc:  # no open session (or not in a repository, unknown id)
            if request.trace_id:  # a session that was open: the shell hook stops recording it
                if not request.quiet:
                    _fail(str(exc))
                return EXIT_NOT_OPEN
            if request.quiet:
                return EXIT_OK
            raise
        record(c, _store(c), session, request)
    return EXIT_OK


def cmd_shell_init(args: argparse.Namespace) -> int:
    from debugtrace.capture.shell import snippet

    sys.stdout.write(snippet(args.shell))
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from debugtrace.cli.imports import cmd_import as run

    return run(args, _settings(args), _progress())


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from debugtrace.cli.demo import run_demo
    from debugtrace.cli.render import render_trace
    from debugtrace.collector import Collector

    # The demo finalizes the local repository it has just made, whatever the setting says.
    settings = _settings(args).model_copy(update={"allow_local_repos": True})
    with (
        tempfile.TemporaryDirectory(prefix="debugtrace-demo-") as tmp,
        Collector(settings=settings) as c,
    ):
        print("recording a demo debugging session (calc.py: divide by zero) ...", file=sys.stderr)
        trace = run_demo(c, Path(tmp), finalize=not args.no_finalize, progress=_progress())
        sys.stdout.write(render_trace(trace))
        print(f"\nstored as {trace.id} in {c.settings.sqlalchemy_url()}", file=sys.stderr)
        print(trace.id)
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    from debugtrace.plugins import Plugins

    plugins = Plugins(_settings(args))
    rows: list[dict[str, Any]] = []
    for kind in ("storage", "sandbox", "grader", "executor"):
        for info in plugins.backends(kind).values():
            missing = info.missing()
            rows.append(
                {
                    "kind": kind,
                    "name": info.name,
                    "package": info.package(),
                    "installed": not missing,
                    "missing": missing,
                    "install_hint": info.install_hint,
                    "description": info.description,
                }
            )
    if args.json:
        _print_json(rows)
        return EXIT_OK
    for r in rows:
        state = "ok" if r["installed"] else f"missing {', '.join(r['missing'])}"
        print(f"{r['kind']:<8} {r['name']:<12} {r['package']:<22} {state:<12} {r['description']}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from debugtrace.model import EVENT_LIST, Trace

    target: Any = Trace if args.what == "trace" else EVENT_LIST
    _print_json(target.json_schema() if args.what == "events" else target.model_json_schema())
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from debugtrace.storage.sql.engine import make_engine
    from debugtrace.storage.sql.migrate import upgrade

    engine = make_engine(_settings(args).sqlalchemy_url())
    try:
        before, after = upgrade(engine, args.revision)
    finally:
        engine.dispose()
    print(f"database at revision {after} (was {before or 'empty'})")
    return EXIT_OK


# -- wiring -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every ``debugtrace`` subcommand."""
    p = _Parser(
        prog="debugtrace",
        description="Capture debugging sessions, validate fixes in a sandbox, grade the reasoning.",
    )
    p.add_argument("--version", action="version", version=f"{DISTRIBUTION} {__version__}")
    p.add_argument(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy URL of the store (default: $DEBUGTRACE_DATABASE_URL or a SQLite file)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=fn)
        return sp

    sp = add("submit", cmd_submit, "store a trace from a JSON file (or - for stdin); prints its id")
    sp.add_argument("file", metavar="FILE|-")
    sp.add_argument(
        "--finalize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="validate the fix right after storing (default; --no-finalize only stores)",
    )

    sp = add("show", cmd_show, "show a stored trace as a timeline (or --json)")
    sp.add_argument("trace_id", metavar="ID")
    sp.add_argument("--json", action="store_true", help="the full stored document as JSON")
    sp.add_argument("--full", action="store_true", help="do not shorten outputs and diffs")

    sp = add("list", cmd_list, "list stored traces, newest first")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--developer", metavar="ID")
    sp.add_argument("--repo", metavar="URL")
    sp.add_argument("--repo-contains", metavar="TEXT", help="repositories whose URL has TEXT")
    sp.add_argument("--search", metavar="TEXT", help="bug descriptions or ids containing TEXT")
    sp.add_argument("--by-created", action="store_true", help="order by created_at (imports)")
    sp.add_argument("--status", choices=["open", "queued", "finalizing", "finalized"])
    sp.add_argument("--limit", type=int, default=50)
    sp.add_argument("--cursor", help="next_cursor of the previous page")

    sp = add(
        "export",
        cmd_export,
        "stream stored traces as chat fine-tuning JSONL, Parquet, preference pairs, "
        "OpenTelemetry spans or ATIF",
    )
    from debugtrace.cli.export import add_arguments

    add_arguments(sp)

    ev = sub.add_parser("events", help="work with the events of a trace")
    ev_sub = ev.add_subparsers(dest="events_command", metavar="ACTION", parser_class=_Parser)
    ev_sub.required = True
    sp = ev_sub.add_parser("add", help="append events from a JSON file (a list or {events: [...]})")
    sp.add_argument("trace_id", metavar="ID")
    sp.add_argument("file", metavar="FILE|-")
    sp.set_defaults(func=cmd_events_add)

    sp = add("finalize", cmd_finalize, "validate the fix of a stored trace and grade it")
    sp.add_argument("trace_id", metavar="ID")
    sp.add_argument(
        "--repeat", type=int, metavar="N", help="run the tests N times to mark flaky ones"
    )
    sp.add_argument("--per-edit", action="store_true", help="record which edit made each test pass")
    sp.add_argument("--test-command", metavar="CMD", help="run this instead of the detected tests")
    sp.add_argument("--force", action="store_true", help="run even if a previous run seems stuck")
    held_out.add_arguments(sp)

    sp = add("start", cmd_start, "open a trace for this repository; prints its id")
    sp.add_argument("--bug", required=True, help="the bug being debugged")
    sp.add_argument("--repo", default=".", help="the repository (default: here)")
    sp.add_argument("--developer", help="who (default: git config user.email)")

    sp = add("exec", cmd_exec, "run a command, show its output, record it: exec [ID] -- CMD")
    sp.add_argument("rest", nargs=argparse.REMAINDER, metavar="[ID] -- CMD ...")

    sp = add("note", cmd_note, "record a thought: note [ID] TEXT [--type T] [--confidence C]")
    sp.add_argument("words", nargs="+", metavar="[ID] TEXT")
    sp.add_argument("--type", help="hypothesis, observation, plan, question, conclusion, ...")
    sp.add_argument("--confidence", help="low, medium, high or 0..1")

    sp = add("diff", cmd_diff, "record the working tree's change since the last diff as edits")
    sp.add_argument("trace_id", nargs="?", metavar="ID")

    sp = add("stop", cmd_stop, "stop recording (the trace stays stored)")
    sp.add_argument("trace_id", nargs="?", metavar="ID")
    sp.add_argument("--finalize", action="store_true", help="validate and grade it now")

    from debugtrace.capture.shell import RECORD_USAGE, add_record_arguments

    sp = add("record", cmd_record, "record a command that already ran: record [ID] ... -- CMD")
    sp.usage = RECORD_USAGE
    add_record_arguments(sp)
    sp.add_argument("rest", nargs=argparse.REMAINDER, metavar="[ID] -- CMD ...")

    sp = add("shell-init", cmd_shell_init, "print the shell integration: eval it in ~/.bashrc")
    sp.add_argument("shell", choices=["bash", "zsh"])

    from debugtrace.importers import FORMATS

    sp = add("import", cmd_import, "store agent sessions and trajectories as traces")
    sp.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, directories, globs, or - for stdin"
    )
    sp.add_argument(
        "--format", choices=list(FORMATS), help="the files' format (default: told from each file)"
    )
    sp.add_argument("--repo", metavar="URL", help="the repository (when the file names none)")
    sp.add_argument("--base-commit", metavar="SHA", help="the commit the agent started from")
    sp.add_argument("--developer", metavar="ID", help="owner (default: the agent's name)")
    sp.add_argument("--finalize", action="store_true", help="validate each fix after storing")
    sp.add_argument("--dry-run", action="store_true", help="print the traces (JSON Lines) only")

    from debugtrace.cli.agents import add_agent_commands

    add_agent_commands(sub)

    sp = add("demo", cmd_demo, "record, store and finalize a demo debugging session")
    sp.add_argument("--no-finalize", action="store_true", help="only record and store it")

    sp = add("grade", cmd_grade, "grade a stored trace again (the tests are not re-run)")
    sp.add_argument("trace_id", metavar="ID")
    sp.add_argument("--grader", metavar="NAME[,NAME]", help="which graders (default: configured)")

    sl = sub.add_parser("spool", help="events waiting for the team server (DEBUGTRACE_SERVER_URL)")
    sl_sub = sl.add_subparsers(dest="spool_command", metavar="ACTION", parser_class=_Parser)
    sl_sub.required = True
    sp = sl_sub.add_parser("flush", help="send what waits, in order (exit 1 while some still wait)")
    sp.set_defaults(func=cmd_spool_flush)

    sb = sub.add_parser("sandbox", help="sandbox maintenance")
    sb_sub = sb.add_subparsers(dest="sandbox_command", metavar="ACTION", parser_class=_Parser)
    sb_sub.required = True
    sp = sb_sub.add_parser(
        "build", help="build the docker sandbox image (python + pytest, user 1000, no network)"
    )
    sp.add_argument("--tag", default="debugtrace-python:3.11")
    sp.add_argument(
        "--base",
        help="base image (default: debugtrace-base:bookworm if present, else python:3.11-slim)",
    )
    sp.add_argument("--packages", default="pytest", help="comma-separated packages to install")
    sp.set_defaults(func=cmd_sandbox_build)

    sp = add("serve", cmd_serve, "run the HTTP API (FastAPI + uvicorn; extra `server`)")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")

    tk = sub.add_parser("token", help="API tokens for the HTTP server")
    tk_sub = tk.add_subparsers(dest="token_command", metavar="ACTION", parser_class=_Parser)
    tk_sub.required = True
    sp = tk_sub.add_parser("create", help="issue a token for one developer's traces")
    sp.add_argument("developer_id", metavar="DEV_ID")
    sp.set_defaults(func=cmd_token_create)
    sp = tk_sub.add_parser("list", help="list tokens (ids, developers, revoked or not)")
    sp.add_argument("--developer", metavar="DEV_ID", help="only this developer's tokens")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_token_list)
    sp = tk_sub.add_parser(
        "revoke", help="revoke tokens at once (their dashboard sessions end with them)"
    )
    sp.add_argument("token_ids", nargs="*", metavar="ID", help="token ids (`token list`)")
    sp.add_argument("--developer", metavar="DEV_ID", help="every active token of this developer")
    sp.set_defaults(func=cmd_token_revoke)

    sp = add("plugins", cmd_plugins, "list storage, sandbox and grader backends")
    sp.add_argument("--json", action="store_true")

    sp = add("schema", cmd_schema, "print the JSON Schema of a trace (or of an event list)")
    sp.add_argument("what", nargs="?", choices=["trace", "events"], default="trace")

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    db_sub.required = True
    sp = db_sub.add_parser("upgrade", help="migrate the database schema (creates it if new)")
    sp.add_argument("revision", nargs="?", default="head")
    sp.set_defaults(func=cmd_db_upgrade)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 a backend failed, 2 bad input)."""
    args = build_parser().parse_args(argv)
    from pydantic import ValidationError

    from debugtrace.errors import (
        DebugtraceError,
        InvalidTrace,
        StorageError,
        TraceNotFound,
        UnknownBackend,
    )

    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        _fail(str(exc))
        return exc.code
    except InvalidTrace as exc:
        _fail(f"invalid input: {exc}")
        return EXIT_USAGE
    except (TraceNotFound, UnknownBackend) as exc:
        _fail(str(exc))
        return EXIT_USAGE
    except StorageError as exc:
        _fail(f"{exc} (check --database-url / DEBUGTRACE_DATABASE_URL)")
        return EXIT_FAILED
    except DebugtraceError as exc:
        _fail(str(exc))
        return EXIT_FAILED
    except ValidationError as exc:  # an option the library refuses, e.g. `list --limit 0`
        _fail(f"invalid input: {InvalidTrace.from_pydantic(exc.errors())}")
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except ImportError as exc:  # e.g. the driver of a --database-url is not installed
        _fail(f"{exc}; install the package that provides it (`debugtrace plugins` shows hints)")
        return EXIT_FAILED
    except OSError as exc:  # e.g. the database folder cannot be created
        _fail(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
