// debugtrace's reporter for `node --test` (Node 18.19+ and 20+): one JSON line per test result.
//
// finalize writes this file into the worktree as .debugtrace-node-reporter.mjs and runs
//   node --test --test-reporter=./.debugtrace-node-reporter.mjs
//        --test-reporter-destination=.debugtrace-report.json
//        --test-reporter=spec --test-reporter-destination=stdout ...
// Each line: {"file": "test/x.test.js", "path": ["suite", "name"], "outcome": "pass|fail|skip|todo",
//             "type": "test|suite|null", "failure": "testCodeFailure|...|null"}
// Node reports test:start and test:pass/test:fail in definition order (start before the subtests,
// the result after them), so a stack of started names per file gives every test its ancestors.
import { relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

function absoluteFile(data) {
  const file = data.file;
  if (typeof file !== 'string' || file === '') return null;
  // Node 18 gives ES modules' tests a file: URL, CommonJS ones a path.
  if (file.startsWith('file:')) {
    try {
      return fileURLToPath(file);
    } catch {
      return file;
    }
  }
  return file;
}

export default async function* debugtraceReporter(source) {
  const stacks = new Map();
  for await (const event of source) {
    const data = event.data ?? {};
    if (event.type === 'test:start') {
      const key = String(data.file ?? '');
      const stack = stacks.get(key) ?? [];
      stack.length = data.nesting;
      stack[data.nesting] = data.name;
      stacks.set(key, stack);
    } else if (event.type === 'test:pass' || event.type === 'test:fail') {
      const stack = stacks.get(String(data.file ?? '')) ?? [];
      const details = data.details ?? {};
      let outcome = event.type === 'test:pass' ? 'pass' : 'fail';
      if (data.todo !== undefined && data.todo !== false) outcome = 'todo';
      else if (data.skip !== undefined && data.skip !== false) outcome = 'skip';
      const file = absoluteFile(data);
      const path = [...stack.slice(0, data.nesting), data.name];
      // A file that fails as a whole (it throws on load) is reported as a test named after the
      // file; path [] says so. Older runners nest every test under such a per-file test.
      while (path.length > 0 && (path[0] === file || path[0] === data.file)) path.shift();
      const line = {
        file: file === null ? null : relative(process.cwd(), file).split(sep).join('/'),
        path,
        outcome,
        type: details.type ?? null,
        failure: details.error?.failureType ?? null,
      };
      yield JSON.stringify(line) + '\n';
    }
  }
}
