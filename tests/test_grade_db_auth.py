"""`grader grade` on the real assignment, in real Docker beside a real Postgres testcontainer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from docker import DockerClient

from grader import variants
from grader.core import Status
from grader.engine import leftovers
from grader.pipeline import grade

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "fastapi-db-auth"


def test_reference_scores_full_marks(tmp_path: Path, docker_client: DockerClient) -> None:
    # through the CLI, as a user runs it
    out = tmp_path / "ref"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "grade",
            str(ROOT / "reference_solution" / ASSIGNMENT),
            "--assignment",
            ASSIGNMENT,
            "--out",
            str(out),
            "--seed",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((out / "results.json").read_text())
    failed = [t["name"] + "\n" + t["output"] for t in data["tests"] if t["status"] != "passed"]
    assert data["score"] == 100, "\n\n".join(failed)[:6000]
    timings = data["extra_data"]["timings"]
    assert {"build", "database_ready", "app_ready", "checks", "total"} <= set(timings)
    assert "Score 100/100" in done.stderr
    run_id = json.loads((out / "full.json").read_text())["run_id"]
    assert not leftovers(docker_client, runs={run_id})


def test_starter_template_scores_above_zero_below_half(
    tmp_path: Path, docker_client: DockerClient
) -> None:
    result = grade(
        submission_path=ROOT / "student_template" / ASSIGNMENT,
        assignment=ASSIGNMENT,
        out=tmp_path / "tpl",
    )
    assert result.status is Status.GRADED, result.reason
    assert 0 < result.score < 50, result.score
    passed = {i.id for i in result.items if i.passed}
    assert {"image-builds", "app-starts", "health"} <= passed
    assert not leftovers(docker_client, runs={result.run_id})


def test_buggy_sample_loses_points_where_its_bugs_are(
    tmp_path: Path, docker_client: DockerClient
) -> None:
    out = tmp_path / "buggy"
    sample = variants.load_sample(ROOT / "specs" / ASSIGNMENT / "examples" / "buggy-sample.yaml")
    result = grade(
        submission_path=variants.materialize(sample, tmp_path / "buggy-sample"),
        assignment=ASSIGNMENT,
        out=out,
    )
    assert result.status is Status.GRADED, result.reason
    failed = {i.id for i in result.items if not i.passed}
    # unsalted sha512, DELETE without an ownership check, 200 instead of 201
    assert {"db-passwords", "items-ownership", "users-create"} <= failed, failed
    assert 40 < result.score < 100
    html = (out / "report.html").read_text()
    assert "curl -i -X POST" in html and "status 201" in html
    assert "Not enough permissions" in html
    assert not leftovers(docker_client, runs={result.run_id})
