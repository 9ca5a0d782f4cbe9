"""A Maven project keeps per-test results: Surefire's reports, one id per JUnit test.

Maven runs offline in the sandbox (``mvn -o``) against a local repository shown read-only
(``DEBUGTRACE_MAVEN_REPO``). The test makes one with what this project needs: a first build on
the host, with this machine's ``~/.m2/repository`` (surefire 3.2.5, JUnit 5.12.2; CI runs on the
same machine) as its only remote, into a folder the sandbox's user can read. Without Maven or
those artifacts the test is skipped, saying which.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from support.calc_repo import git
from support.services import require

M2 = Path.home() / ".m2" / "repository"
POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ex</groupId><artifactId>calc</artifactId><version>1.0</version>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>
    <dependency><groupId>org.junit.jupiter</groupId><artifactId>junit-jupiter</artifactId>
      <version>5.12.2</version><scope>test</scope></dependency>
  </dependencies>
  <build><plugins>
    <plugin><groupId>org.apache.maven.plugins</groupId>
      <artifactId>maven-surefire-plugin</artifactId><version>3.2.5</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId>
      <artifactId>maven-compiler-plugin</artifactId><version>3.11.0</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId>
      <artifactId>maven-resources-plugin</artifactId><version>3.3.1</version></plugin>
  </plugins></build>
</project>
"""
CALC = "package ex;\npublic class Calc { public static int div(int a, int b) { return a / b; } }\n"
TESTS = """package ex;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.*;
class CalcTest {
  @Test void divides() { assertEquals(2, Calc.div(4, 2)); }
  @Test void zero() { assertThrows(IllegalArgumentException.class, () -> Calc.div(1, 0)); }
  @Nested class Inner { @Test void inner() { assertTrue(true); } }
}
"""
FIX = """--- a/src/main/java/ex/Calc.java
+++ b/src/main/java/ex/Calc.java
@@ -1,2 +1,5 @@
 package ex;
-public class Calc { public static int div(int a, int b) { return a / b; } }
+public class Calc { public static int div(int a, int b) {
+  if (b == 0) throw new IllegalArgumentException("b == 0");
+  return a / b;
+} }
"""


# named central: the repository records where each artifact came from, and offline Maven only
# takes artifacts from the repositories the build names (central)
MIRROR = """<settings><mirrors><mirror><id>central</id><mirrorOf>*</mirrorOf>
<url>file://{m2}</url></mirror></mirrors></settings>
"""


def write_project(root: Path) -> Path:
    for name, text in {
        "pom.xml": POM,
        "src/main/java/ex/Calc.java": CALC,
        "src/test/java/ex/CalcTest.java": TESTS,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def maven_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local repository with what the project's build needs, readable by any user."""
    if not shutil.which("mvn") or not shutil.which("bwrap"):
        require("Maven", "mvn or bwrap is not installed (apt-get install maven bubblewrap)")
    needed = M2 / "org/apache/maven/plugins/maven-surefire-plugin/3.2.5"
    if not needed.is_dir() or not (M2 / "org/junit/jupiter/junit-jupiter/5.12.2").is_dir():
        require("Maven", f"{M2} lacks surefire 3.2.5 or JUnit 5.12.2 (tests run offline)")
    base = tmp_path_factory.mktemp("maven")
    repo = base / "repository"
    (base / "settings.xml").write_text(MIRROR.format(m2=M2))
    project = write_project(base / "warmup")
    subprocess.run(
        [
            *("mvn", "-q", "-B", "-s", str(base / "settings.xml")),
            *(f"-Dmaven.repo.local={repo}", "-Dmaven.test.failure.ignore=true", "test"),
        ],
        cwd=project,
        check=True,
        capture_output=True,
    )
    for path in [base, *base.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o044 | (0o011 if path.is_dir() else 0))
    return repo


@pytest.fixture
def collector(settings: Settings, maven_repo: Path) -> Iterator[Collector]:
    s = settings.model_copy(
        update={"allow_local_repos": True, "sandbox": "local", "maven_repo": maven_repo}
    )
    with Collector(settings=s) as c:
        yield c


def test_a_junit_fix_in_a_maven_project_is_validated_per_test(
    tmp_path: Path, collector: Collector
) -> None:
    repo = write_project(tmp_path / "calc")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "calc")
    trace = collector.submit(
        {
            "developer_id": "dev-maven",
            "repo_url": str(repo),
            "bug_description": "div(1, 0) throws ArithmeticException",
            "events": [
                {
                    "type": "edit",
                    "details": {"file": "src/main/java/ex/Calc.java", "diff": FIX},
                }
            ],
        }
    )
    done = collector.finalize(str(trace.id))
    v = done.result.validation
    tests = next(s for s in done.result.stages if s.name == "tests")
    assert v is not None and v.could_not_test is None, tests.log[-2000:]
    test_file = "src/test/java/ex/CalcTest.java"
    assert v.fail_to_pass == [f"{test_file}::zero"]
    assert v.pass_to_pass == [f"{test_file}::Inner::inner", f"{test_file}::divides"]
    assert v.fix_validated is True
    assert "maven local repository" in v.environment
