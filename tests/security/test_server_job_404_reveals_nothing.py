"""Issue 14, low: a job's 404 revealed its trace id.

Before, a developer asking for another developer's job got ``404 no trace with id '<their trace
id>'`` (the job was found, then its trace refused), which also told them the job exists. Now it is
exactly the 404 of a job that does not exist.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from debugtrace import Collector, Settings
from debugtrace.server.app import create_app

LOCAL = "http://127.0.0.1:8000"
REPO = "https://example.com/r.git"


def test_another_developers_job_is_the_404_of_a_job_that_does_not_exist(
    settings: Settings,
) -> None:
    collector = Collector(
        settings=settings.model_copy(
            update={"sandbox": "local", "api_token": "admin-token-for-job-tests"}
        )
    )
    alice = collector.create_token("alice")
    bobs = str(
        collector.submit({"developer_id": "bob", "repo_url": REPO, "bug_description": "b"}).id
    )
    job = collector.storage.create_job(bobs, "grade", {})
    missing = "0" * 23 + "1"
    with TestClient(create_app(collector=collector), base_url=LOCAL) as client:
        h = {"Authorization": f"Bearer {alice}"}
        theirs = client.get(f"/api/jobs/{job.id}", headers=h)
        nothing = client.get(f"/api/jobs/{missing}", headers=h)
        assert theirs.status_code == nothing.status_code == 404
        assert bobs not in theirs.text
        assert theirs.json()["detail"] == nothing.json()["detail"].replace(missing, job.id)
        # The admin still sees it.
        admin = {"Authorization": "Bearer admin-token-for-job-tests"}
        assert client.get(f"/api/jobs/{job.id}", headers=admin).json()["trace_id"] == bobs
