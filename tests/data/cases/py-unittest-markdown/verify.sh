#!/usr/bin/env bash
# Redo this case's hand verification from scratch: a temp dir, a fresh venv with the project's tox test
# environment (extras "testing": coverage, pyyaml; pytidylib has no wheel and is left out), the project installed
# editable from base.tar.gz, test.diff applied (before), then fix.diff (after); the suite is run the way
# tox.ini runs it, `python -m unittest discover <root>/tests`, with a result class that records each test
# under a pytest-style id (file relative to the root::Class::method). Prints fail_to_pass and the
# pass_to_pass count and compares them with case.json. WITH_PYTEST=1 also installs pytest (which brings
# Pygments and packaging) and compares with case-with-pytest.json instead. Not run by any test suite.
# Usage: ./verify.sh     (PYTHON=/path/to/python3.11 to pick the interpreter, KEEP=1 to keep the temp dir)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-$(command -v python3.11 || echo /root/.pyenv/versions/3.11.7/bin/python)}
TOP=Markdown-3.5.1
DEPS=(coverage==7.18.0 PyYAML==6.0.4)
EXPECTED="$HERE/case.json"
if [ "${WITH_PYTEST:-0}" = 1 ]; then
  DEPS+=(pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1 packaging==26.4 Pygments==2.21.0)
  EXPECTED="$HERE/case-with-pytest.json"
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/verify-case.XXXXXX")
[ "${KEEP:-0}" = 1 ] && echo "work dir: $WORK" || trap 'rm -rf "$WORK"' EXIT
tar xzf "$HERE/base.tar.gz" -C "$WORK"
"$PY" -m venv "$WORK/venv"
V="$WORK/venv/bin"
"$V/pip" install -q --disable-pip-version-check --only-binary :all: "${DEPS[@]}"
"$V/pip" install -q --disable-pip-version-check -e "$WORK/$TOP"
"$V/pip" freeze --all > "$WORK/freeze.txt"
"$V/python" -c 'import markdown, sys; print("markdown imported from", markdown.__file__); sys.exit(0 if markdown.__file__.startswith(sys.argv[1]) else 1)' "$WORK/$TOP/"
cat > "$WORK/ut_run.py" <<'PY'
import json, os, sys, unittest
root, start, out = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3]
os.chdir(root)
results = {}
def tid(test):
    if isinstance(test, unittest.case._SubTest):
        test = test.test_case
    cls = type(test)
    if cls.__module__ == "unittest.loader":  # _FailedTest: a module that failed to import
        return "<load-failure>::" + test._testMethodName
    f = os.path.relpath(os.path.abspath(sys.modules[cls.__module__].__file__), root).replace(os.sep, "/")
    return f"{f}::{cls.__qualname__}::{test._testMethodName}"
class R(unittest.TextTestResult):
    def _set(self, test, outcome):
        k = tid(test)
        if results.get(k) in ("failed", "error") and outcome == "passed":
            return
        results[k] = outcome
    def addSuccess(self, t): super().addSuccess(t); self._set(t, "passed")
    def addFailure(self, t, e): super().addFailure(t, e); self._set(t, "failed")
    def addError(self, t, e): super().addError(t, e); self._set(t, "error")
    def addSkip(self, t, r): super().addSkip(t, r); self._set(t, "skipped")
    def addExpectedFailure(self, t, e): super().addExpectedFailure(t, e); self._set(t, "skipped")
    def addUnexpectedSuccess(self, t): super().addUnexpectedSuccess(t); self._set(t, "failed")
    def addSubTest(self, t, s, e):
        super().addSubTest(t, s, e)
        if e is not None:
            self._set(t, "failed" if issubclass(e[0], t.failureException) else "error")
res = unittest.TextTestRunner(resultclass=R, stream=sys.stderr).run(unittest.defaultTestLoader.discover(start))
with open(out, "w") as f:
    json.dump(results, f, indent=0, sort_keys=True)
c = lambda *o: sum(v in o for v in results.values())
print(f"ran {res.testsRun}: {c('passed')} passed, {c('failed', 'error')} failed/error, {c('skipped')} skipped")
PY
cd "$WORK/$TOP"
git apply --check "$HERE/test.diff"
git apply "$HERE/test.diff"
run() { env TZ=UTC PYTHONHASHSEED=0 LC_ALL=C.UTF-8 "$V/python" "$WORK/ut_run.py" "$WORK/$TOP" "$WORK/$TOP/tests" "$WORK/$1.json" 2> "$WORK/$1.log" || true; }
echo "before (base + test.diff):"; run before
git apply "$HERE/fix.diff"
echo "after (base + test.diff + fix.diff):"; run after
"$V/python" - "$WORK/before.json" "$WORK/after.json" "$EXPECTED" <<'PY'
import json, sys
before, after, case = (json.load(open(p)) for p in sys.argv[1:4])
f2p = sorted(k for k, v in after.items() if v == "passed" and before.get(k) in ("failed", "error"))
p2p = sorted(k for k, v in after.items() if v == "passed" and before.get(k) == "passed")
broken = sorted(k for k, v in before.items() if v == "passed" and after.get(k) != "passed")
print("fail_to_pass:", *f2p, sep="\n  ")
print("pass_to_pass:", len(p2p), "tests")
print("passed before, not after:", broken or "none")
ok = f2p == case["fail_to_pass"] and p2p == case["pass_to_pass"] and not broken
print(("matches " if ok else "DIFFERS from ") + sys.argv[3].rsplit("/", 1)[-1])
sys.exit(0 if ok else 1)
PY
