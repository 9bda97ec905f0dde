"""The app's second instance in Docker: fuzzing runs beside the contract suite on an instance of
its own, on a database of its own, so neither sees the other's data; `alone:` keeps the old
order. Real images, real Postgres, real HTTP."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml
from docker import DockerClient

from grader import runtimes, submission
from grader.assignment import load
from grader.core import LABEL, Status
from grader.engine import leftovers
from grader.pipeline import grade
from grader.runtimes.docker import BESIDE

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = ROOT / "specs" / "fastapi-db-auth"
REFERENCE = ROOT / "reference_solution" / "fastapi-db-auth"
SECOND = "--- the app's second instance"


def test_the_second_instance_has_a_database_of_its_own(
    tmp_path: Path, docker_client: DockerClient
) -> None:
    spec = load(SPEC_DIR)
    root = submission.prepare(REFERENCE, workdir=tmp_path / "submission")
    run_id = f"test-twin-{uuid.uuid4().hex[:8]}"
    with runtimes.create("docker", run_id=run_id) as runtime:
        up = runtime.up(root, spec, twin=True)
        first, second = up.target, up.twin
        assert first is not None and second is not None, up.reason
        assert second.base_url != first.base_url
        assert second.database_url and second.database_url != first.database_url
        assert second.env["SECRET_KEY"] == first.env["SECRET_KEY"]  # tokens mean the same
        assert second.restart is None  # a restart would look like a sandbox lost
        user = {"email": "second@example.com", "password": "a-long-password"}
        with httpx.Client(trust_env=False) as http:
            assert http.post(second.base_url + "/users/", json=user).status_code == 201
        assert first.database_url is not None
        with psycopg.connect(second.database_url) as db:
            assert db.execute("SELECT email FROM users").fetchall() == [(user["email"],)]
        with psycopg.connect(first.database_url) as db:
            assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)
        assert up.twin_logs is not None and "Uvicorn running" in up.twin_logs()
        # the second yields the CPU to the first when both want more than the machine has
        weights = {_weight(docker_client, run_id, t.base_url) for t in (first, second)}
        assert weights == {1024, BESIDE.weight}
    assert not leftovers(docker_client, runs={run_id})


def _weight(client: DockerClient, run_id: str, url: str) -> int:
    """The CPU weight of the run's container that serves `url`."""
    host = httpx.URL(url).host
    for container in client.containers.list(filters={"label": f"{LABEL}={run_id}"}):
        attrs = container.attrs
        networks = attrs["NetworkSettings"]["Networks"].values()
        ports = [
            b["HostPort"] for bs in attrs["NetworkSettings"]["Ports"].values() for b in bs or []
        ]
        if host in {n["IPAddress"] for n in networks} or str(httpx.URL(url).port) in ports:
            return int(attrs["HostConfig"]["CpuShares"])
    raise AssertionError(f"no container of run {run_id} serves {url}")


def _alone(tmp_path: Path) -> Path:
    """fastapi-db-auth with its fuzzing `alone:`: after the contract suite, on the same app."""
    spec = tmp_path / "spec"
    shutil.copytree(SPEC_DIR, spec, ignore=shutil.ignore_patterns("examples", "mutants"))
    data = yaml.safe_load((spec / "assignment.yaml").read_text(encoding="utf-8"))
    data["alone"] = ["schemathesis"]
    data["reference"] = str(REFERENCE)
    (spec / "assignment.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return spec


@pytest.mark.parametrize("order", ["beside", "alone"])
def test_the_reference_scores_the_same_beside_or_alone(
    order: str, tmp_path: Path, docker_client: DockerClient
) -> None:
    assignment = _alone(tmp_path) if order == "alone" else SPEC_DIR
    result = grade(submission_path=REFERENCE, assignment=assignment, seed=0)
    assert result.status is Status.GRADED, result.reason
    assert result.score == result.max_score == 100
    assert (SECOND in result.app_log) is (order == "beside")
    fuzzed = [o for item in result.items for o in item.outcomes if o.check == "schemathesis"]
    assert fuzzed and all(o.passed for o in fuzzed)
    assert not leftovers(docker_client, runs={result.run_id})
