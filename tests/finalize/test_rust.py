"""A Rust crate keeps per-test results, each id naming the test target cargo ran it in.

cargo runs offline in the sandbox with the host's rustup toolchain and cargo home shown
read-only. Skipped, saying so, where cargo or bubblewrap is not installed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from debugtrace.finalize.testresults import parse_libtest
from support.calc_repo import git
from support.services import require

CARGO = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo") / "bin" / "cargo"
LIB = """pub fn div(a: i64, b: i64) -> Option<i64> { Some(a / b) }
#[cfg(test)]
mod tests {
    use super::*;
    #[test] fn divides() { assert_eq!(div(4, 2), Some(2)); }
    #[test] fn zero_is_none() { assert_eq!(div(1, 0), None); }
}
"""
INTEGRATION = "#[test] fn divides() { assert_eq!(calc::div(9, 3), Some(3)); }\n"
FIX = """--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1 +1 @@
-pub fn div(a: i64, b: i64) -> Option<i64> { Some(a / b) }
+pub fn div(a: i64, b: i64) -> Option<i64> { if b == 0 { None } else { Some(a / b) } }
"""
# What cargo 1.95 printed for a crate with a test of the same name in two targets.
CARGO_OUTPUT = """\
     Running unittests src/lib.rs (target/debug/deps/rs-a35a48c092d3f767)
test tests::it_works ... ok
test tests::slow ... ignored
test tests::fails ... FAILED
test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.08s
     Running tests/integration.rs (target/debug/deps/integration-31a69c2f8c13c266)
test it_works ... ok
test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
   Doc-tests rs
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
"""


def test_each_cargo_test_id_names_its_target() -> None:
    assert parse_libtest(CARGO_OUTPUT) == {
        "src/lib.rs::tests::it_works": "passed",
        "src/lib.rs::tests::slow": "skipped",
        "src/lib.rs::tests::fails": "failed",
        "tests/integration.rs::it_works": "passed",
    }


@pytest.fixture
def collector(settings: Settings) -> Iterator[Collector]:
    if not CARGO.is_file() and not shutil.which("cargo"):
        require("cargo", "Rust is not installed (rustup, or apt-get install cargo)")
    if not shutil.which("bwrap"):
        require("bubblewrap", "bwrap is not installed (apt-get install bubblewrap)")
    s = settings.model_copy(update={"allow_local_repos": True, "sandbox": "local"})
    with Collector(settings=s) as c:
        yield c


def test_a_rust_fix_is_validated_per_test(tmp_path: Path, collector: Collector) -> None:
    repo = tmp_path / "calc"
    files = {
        "Cargo.toml": '[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2021"\n',
        "src/lib.rs": LIB,
        "tests/integration.rs": INTEGRATION,
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "calc")
    trace = collector.submit(
        {
            "developer_id": "dev-rust",
            "repo_url": str(repo),
            "bug_description": "div(1, 0) panics",
            "events": [{"type": "edit", "details": {"file": "src/lib.rs", "diff": FIX}}],
        }
    )
    done = collector.finalize(str(trace.id))
    v = done.result.validation
    tests = next(s for s in done.result.stages if s.name == "tests")
    assert v is not None and v.could_not_test is None, tests.log[-2000:]
    assert v.fail_to_pass == ["src/lib.rs::tests::zero_is_none"]
    assert v.pass_to_pass == ["src/lib.rs::tests::divides", "tests/integration.rs::divides"]
    assert v.fix_validated is True
