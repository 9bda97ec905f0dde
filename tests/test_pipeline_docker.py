"""The whole pipeline in real Docker on a tiny assignment written by the test itself.

Also shows the grader is assignment-agnostic: this assignment has no database and its own rubric.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from docker import DockerClient
from mini_assignment import make_submission

from grader.core import Status
from grader.engine import leftovers
from grader.pipeline import grade

pytestmark = pytest.mark.docker

def test_good_submission_full_marks(mini: Path, tmp_path: Path, docker_client: DockerClient) -> None:
    sub = make_submission(tmp_path / "good")
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert result.status is Status.GRADED, result.reason
    assert result.score == 100
    assert set(result.timings) >= {"build", "app_ready", "checks", "total"}
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["score"] == 100 and len(data["tests"]) == 3
    assert {t["status"] for t in data["tests"]} == {"passed"}
    assert data["extra_data"]["timings"]["total"] > 0
    assert not leftovers(docker_client, runs={result.run_id})


def test_wrong_answer_shows_expected_actual_and_curl(mini: Path, tmp_path: Path,
                                                     docker_client: DockerClient) -> None:
    sub = make_submission(tmp_path / "wrong", mode="wrong")
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert result.status is Status.GRADED
    assert result.score == 75  # 20 + 30 + half of 50
    item = next(i for i in result.items if i.id == "hello")
    failure = item.failures[0]
    assert failure.expected == '{"greeting": "hello"}' and failure.actual == '{"greeting": "bye"}'
    assert failure.exchange is not None and failure.exchange.curl().startswith("curl -i -X GET")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "GET /hello greets" in html and "curl -i -X GET" in html and "bye" in html
    assert not leftovers(docker_client, runs={result.run_id})


def test_broken_dockerfile_is_a_graded_result(mini: Path, tmp_path: Path,
                                              docker_client: DockerClient) -> None:
    sub = make_submission(tmp_path / "broken", dockerfile_extra="RUN echo about to fail && exit 3\n")
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert result.status is Status.BUILD_FAILED
    assert result.score == 0
    assert "exit" in result.reason.lower() or "returned a non-zero code" in result.reason
    assert "about to fail" in result.build_log
    html = (tmp_path / "out" / "report.html").read_text()
    assert "did not build" in html and "about to fail" in html
    assert not leftovers(docker_client, runs={result.run_id})


def test_app_that_exits_at_once(mini: Path, tmp_path: Path, docker_client: DockerClient) -> None:
    sub = make_submission(tmp_path / "exits", cmd='["python", "-c", "print(\'boom: no config\'); exit(3)"]')
    begin = time.monotonic()
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert time.monotonic() - begin < 60
    assert result.status is Status.START_FAILED
    assert "exited with code 3" in result.reason
    assert "boom: no config" in result.app_log
    assert result.score == 20  # it built
    assert "boom: no config" in (tmp_path / "out" / "report.html").read_text()
    assert not leftovers(docker_client, runs={result.run_id})


def test_app_that_never_gets_healthy(mini: Path, tmp_path: Path, docker_client: DockerClient) -> None:
    sub = make_submission(tmp_path / "silent", cmd='["sleep", "3600"]')
    begin = time.monotonic()
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert time.monotonic() - begin < 60
    assert result.status is Status.START_FAILED
    assert "within 8 s" in result.reason
    assert result.score == 20
    assert not leftovers(docker_client, runs={result.run_id})


def test_build_that_never_ends_is_cut(mini: Path, tmp_path: Path, docker_client: DockerClient) -> None:
    sub = make_submission(tmp_path / "slow", dockerfile_extra="RUN sleep 600\n")
    begin = time.monotonic()
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out", build_timeout=5)
    assert time.monotonic() - begin < 60
    assert result.status is Status.BUILD_FAILED
    assert "longer than 5 s" in result.reason
    assert not leftovers(docker_client, runs={result.run_id})


def test_unsafe_archive_is_refused(mini: Path, tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Dockerfile", "FROM python:3.11-slim\n")
        zf.writestr("../../escape.txt", "x")
    result = grade(submission_path=archive, assignment=mini, out=tmp_path / "out")
    assert result.status is Status.REJECTED
    assert "outside the submission" in result.reason
    assert result.score == 0
    assert "outside the submission" in (tmp_path / "out" / "report.html").read_text()


def _cli(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "grader.cli", *args]


def test_grader_fault_is_not_a_zero(mini: Path, tmp_path: Path) -> None:
    """No engine: exit 2, a clear message, and results.json without a score."""
    sub = make_submission(tmp_path / "good")
    env = {**os.environ, "DOCKER_HOST": "tcp://127.0.0.1:9"}
    done = subprocess.run(_cli("grade", str(sub), "--assignment", str(mini), "--out", str(tmp_path / "o")),
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "no Docker engine answers" in done.stderr
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert "score" not in data
    assert data["extra_data"]["status"] == "not_graded"
    assert "not graded" in (tmp_path / "o" / "report.html").read_text().lower()


def test_ctrl_c_leaves_nothing_behind(mini: Path, tmp_path: Path, docker_client: DockerClient) -> None:
    sub = make_submission(tmp_path / "silent", cmd='["sleep", "3600"]')  # never healthy: waits 8 s
    run_id = f"test-ctrl-c-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(_cli("grade", str(sub), "--assignment", str(mini), "--out", str(tmp_path / "o"),
                                 "--run-id", run_id), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "starting the app" in line:
            break
    deadline = time.monotonic() + 20
    while not leftovers(docker_client, runs={run_id}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers(docker_client, runs={run_id}), "the app container should be running now"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert not leftovers(docker_client, runs={run_id})


def test_root_images_run_as_nobody_unless_they_need_root(mini: Path, tmp_path: Path,
                                                         docker_client: DockerClient) -> None:
    plain = grade(submission_path=make_submission(tmp_path / "plain"), assignment=mini)
    assert plain.score == 100 and "serving as uid 65534" in plain.app_log
    needy = grade(submission_path=make_submission(tmp_path / "needy", mode="needs-root"), assignment=mini)
    assert needy.score == 100 and "serving as uid 0" in needy.app_log
    assert not leftovers(docker_client, runs={plain.run_id, needy.run_id})
