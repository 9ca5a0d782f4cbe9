"""Generate the reference parts of the docs from the code, so they cannot drift.

python docs/gen.py          # rewrite docs/hooks.md and docs/configuration.md
python docs/gen.py --check  # exit 1 if either is stale (run by the test suite)
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from debugtrace import hookspecs
from debugtrace.config import Limits, Settings

DOCS = Path(__file__).parent


def hooks_md() -> str:
    out = [
        "# Hook reference\n\n",
        "Generated from `src/debugtrace/hookspecs.py` by `python docs/gen.py`; do not edit.\n",
        "Implement a hook with `@debugtrace.hookimpl` in a module or object registered\n",
        "through the entry-point group `debugtrace` (see [plugins.md](plugins.md)).\n",
    ]
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not hasattr(fn, "debugtrace_spec"):
            continue
        sig = str(inspect.signature(fn)).replace("'", "")
        out.append(f"\n## `{name}{sig}`\n\n{inspect.cleandoc(fn.__doc__ or '')}\n")
    return "".join(out)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "(computed)" if field.annotation is not Limits else "(see below)"
    if field.default is None or field.default == "":
        return "unset"
    return f"`{field.default}`"


def config_md() -> str:
    out = [
        "# Configuration\n\n",
        "Generated from `src/debugtrace/config.py` by `python docs/gen.py`; do not edit.\n\n",
        "Every setting is an environment variable (also read from a `.env` file in the working\n",
        "directory). In Python, pass `Settings(...)` to `Collector(settings=...)` instead.\n\n",
        "| variable | default | meaning |\n|---|---|---|\n",
    ]
    for name, field in Settings.model_fields.items():
        if name == "limits":
            continue
        out.append(f"| `DEBUGTRACE_{name.upper()}` | {_default(field)} | {field.description} |\n")
    out.append(
        "\n## Input limits\n\nEach breach is refused with the field and the variable to raise.\n\n"
    )
    out.append("| variable | default | meaning |\n|---|---|---|\n")
    for name, field in Limits.model_fields.items():
        out.append(f"| `DEBUGTRACE_{name.upper()}` | `{field.default}` | {field.description} |\n")
    return "".join(out)


GENERATED = {"hooks.md": hooks_md, "configuration.md": config_md}


def main() -> int:
    stale = []
    for filename, make in GENERATED.items():
        path, text = DOCS / filename, make()
        if "--check" in sys.argv:
            if not path.exists() or path.read_text() != text:
                stale.append(filename)
        else:
            path.write_text(text)
    if stale:
        print(f"stale docs: {', '.join(stale)}; run `python docs/gen.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
