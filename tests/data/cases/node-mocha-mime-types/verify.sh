#!/usr/bin/env bash
# Redo the hand verification from scratch, without debugtrace's code: npm ci in a temp copy, the
# project's own mocha run through mocha's programmatic API with a ten-line reporter that records
# each test's file and titlePath, then compare with case.json. For a reviewer; never run by the
# test suite (it installs from the npm registry). Usage: bash verify.sh   (needs node, npm, git)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$here/base.tar.gz" -C "$tmp"
cd "$tmp"/mime-types-3.0.1
npm ci --ignore-scripts --no-audit --no-fund >/dev/null
cat > ids.js <<'JS'
// Runs test/test.js as `npm test` does; prints {"<file>::<suite> > <test>": "pass"|"fail"|"skip"}.
const path = require('path');
const Mocha = require('mocha');
const out = {};
function Rec(runner) {
  const put = (state) => (t) => {
    const id = `${path.relative(process.cwd(), t.file)}::${t.titlePath().join(' > ')}`;
    if (id in out && out[id] !== state) out[id] = 'fail'; else out[id] = state;
  };
  runner.on('pass', put('pass')); runner.on('fail', put('fail')); runner.on('pending', put('skip'));
}
const mocha = new Mocha({ reporter: Rec });
mocha.addFile('test/test.js');
mocha.run(() => console.log(JSON.stringify(out)));
JS
git apply "$here/test.diff"
node ids.js > "$tmp/before.json"
git apply "$here/fix.diff"
node ids.js > "$tmp/after.json"
python3 - "$tmp/before.json" "$tmp/after.json" "$here/case.json" <<'PY'
import json, sys
before, after, case = (json.load(open(p)) for p in sys.argv[1:])
f2p = sorted(t for t in before if before[t] == "fail" and after.get(t) == "pass")
p2p = sorted(t for t in before if before[t] == "pass" and after.get(t) == "pass")
bad = sorted(t for t in before if before[t] == "pass" and after.get(t) != "pass")
print(f"{len(f2p)} fail_to_pass, {len(p2p)} pass_to_pass, {len(bad)} pass_to_fail")
assert not bad, bad
assert f2p == case["fail_to_pass"], "fail_to_pass differs from case.json"
assert p2p == case["pass_to_pass"], "pass_to_pass differs from case.json"
print("case.json matches")
PY
