#!/usr/bin/env bash
# Redo the hand verification from scratch, without debugtrace's code: npm ci in a temp copy, the
# project's own runner (node --test, TAP output, one run per test file: `node --test` finds only
# test/ipaddr.test.js here), ids read from the TAP by a few lines of node, then compare with
# case.json. For a reviewer; never run by the test suite (it installs from the
# npm registry). Usage: bash verify.sh   (needs node >= 18.19, npm, git)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$here/base.tar.gz" -C "$tmp"
cd "$tmp"/ipaddr.js-2.4.0
npm ci --ignore-scripts --no-audit --no-fund >/dev/null
cat > "$tmp/ids.js" <<'JS'
// TAP of `node --test FILE` -> {"FILE::<suite> > <test>": "pass"|"fail"|"skip"}; suites left out.
const file = process.argv[2];
const out = {}; const stack = []; let cur = null;
for (const line of require('fs').readFileSync(0, 'utf8').split('\n')) {
  let m = line.match(/^( *)# Subtest: (.*)$/);
  if (m) { const d = m[1].length / 4; stack.length = d; stack[d] = m[2]; continue; }
  m = line.match(/^( *)(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/);
  if (m) { cur = { d: m[1].length / 4, ok: m[2] === 'ok', name: m[3], dir: m[4] }; continue; }
  if (!cur) continue;
  if (/^ *type: 'suite'$/.test(line)) cur.suite = true;
  if (/^ *\.\.\.$/.test(line)) {
    if (!cur.suite) {
      const id = `${file}::${[...stack.slice(0, cur.d), cur.name].join(' > ')}`;
      if (id in out) throw new Error(`duplicate ${id}`);
      out[id] = cur.dir ? 'skip' : cur.ok ? 'pass' : 'fail';
    }
    cur = null;
  }
}
console.log(JSON.stringify(out));
JS
git apply "$here/test.diff"
ls test/*.test.js  # the files `node --test` runs: test/ipaddr.test.js
(node --test --test-reporter=tap test/ipaddr.test.js || true) | node "$tmp/ids.js" test/ipaddr.test.js > "$tmp/before.json"
git apply "$here/fix.diff"
(node --test --test-reporter=tap test/ipaddr.test.js || true) | node "$tmp/ids.js" test/ipaddr.test.js > "$tmp/after.json"
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
