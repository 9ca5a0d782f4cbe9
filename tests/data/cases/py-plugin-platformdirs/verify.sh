#!/usr/bin/env bash
# Redo this case's hand verification from scratch: a temp dir, a fresh venv, the
# pinned dependencies (wheels only), the project installed editable from base.tar.gz,
# test.diff applied (before), then fix.diff (after); prints fail_to_pass and the
# pass_to_pass count and compares them with case.json. Not run by any test suite.
# Usage: ./verify.sh            (PYTHON=/path/to/python3.11 to pick the interpreter, KEEP=1 to keep the temp dir)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-$(command -v python3.11 || echo /root/.pyenv/versions/3.11.7/bin/python)}
TOP=platformdirs-3.8.0
DEPS=(appdirs==1.4.4 covdefaults==2.3.0 coverage==7.18.0 pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1 packaging==26.4 Pygments==2.21.0 pytest-cov==7.1.0 pytest-mock==3.17.0)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/verify-case.XXXXXX")
[ "${KEEP:-0}" = 1 ] && echo "work dir: $WORK" || trap 'rm -rf "$WORK"' EXIT
tar xzf "$HERE/base.tar.gz" -C "$WORK"
"$PY" -m venv "$WORK/venv"
V="$WORK/venv/bin"
"$V/pip" install -q --disable-pip-version-check --only-binary :all: "${DEPS[@]}"
"$V/pip" install -q --disable-pip-version-check -e "$WORK/$TOP"
"$V/pip" freeze --all > "$WORK/freeze.txt"
"$V/python" -c 'import platformdirs, sys; print("platformdirs", platformdirs.__version__, "imported from", platformdirs.__file__); sys.exit(0 if platformdirs.__file__.startswith(sys.argv[1]) else 1)' "$WORK/$TOP/src/"
cd "$WORK/$TOP"
git apply --check "$HERE/test.diff"
git apply "$HERE/test.diff"
run() { env TZ=UTC PYTHONHASHSEED=0 LC_ALL=C.UTF-8 "$V/python" -m pytest -p no:cacheprovider -q -o junit_family=xunit1 --junitxml="$WORK/$1.xml"  > "$WORK/$1.log" 2>&1 || true; tail -n 1 "$WORK/$1.log"; }
echo "before (base + test.diff):"; run before
git apply "$HERE/fix.diff"
echo "after (base + test.diff + fix.diff):"; run after
"$V/python" - "$WORK/before.xml" "$WORK/after.xml" "$HERE/case.json" <<'PY'
import json, sys, xml.etree.ElementTree as ET
def ids(path):
    res = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        f, cls, name = tc.get("file"), tc.get("classname") or "", tc.get("name")
        if f:
            mod = f[:-3].replace("/", ".")
            rest = cls[len(mod):].lstrip(".") if cls.startswith(mod) else cls
            nid = "::".join([f, *(rest.split(".") if rest else []), name])
        else:
            nid = "<collection>::" + cls + "::" + name
        kids = {c.tag for c in tc}
        out = "failed" if "failure" in kids else "error" if "error" in kids else "skipped" if "skipped" in kids else "passed"
        if nid in res:  # only a teardown error may follow its own test's report
            if res[nid] != "passed" or out != "error":
                sys.exit(f"duplicate test id {nid}")
        res[nid] = out
    return res
before, after, case = ids(sys.argv[1]), ids(sys.argv[2]), json.load(open(sys.argv[3]))
f2p = sorted(k for k, v in after.items() if v == "passed" and before.get(k) in ("failed", "error"))
p2p = sorted(k for k, v in after.items() if v == "passed" and before.get(k) == "passed")
broken = sorted(k for k, v in before.items() if v == "passed" and after.get(k) != "passed")
print("fail_to_pass:", *f2p, sep="\n  ")
print("pass_to_pass:", len(p2p), "tests")
print("passed before, not after:", broken or "none")
ok = f2p == case["fail_to_pass"] and p2p == case["pass_to_pass"] and not broken
print("matches case.json" if ok else "DIFFERS from case.json")
sys.exit(0 if ok else 1)
PY
