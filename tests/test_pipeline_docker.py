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


def test_good_submission_full_marks(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
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


def test_wrong_answer_shows_expected_actual_and_curl(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
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


def test_broken_dockerfile_is_a_graded_result(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    sub = make_submission(
        tmp_path / "broken", dockerfile_extra="RUN echo about to fail && exit 3\n"
    )
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert result.status is Status.BUILD_FAILED
    assert result.score == 0
    assert "exit" in result.reason.lower() or "returned a non-zero code" in result.reason
    assert "about to fail" in result.build_log
    html = (tmp_path / "out" / "report.html").read_text()
    assert "did not build" in html and "about to fail" in html
    assert not leftovers(docker_client, runs={result.run_id})


def test_app_that_exits_at_once(mini: Path, tmp_path: Path, docker_client: DockerClient) -> None:
    sub = make_submission(
        tmp_path / "exits", cmd='["python", "-c", "print(\'boom: no config\'); exit(3)"]'
    )
    begin = time.monotonic()
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert time.monotonic() - begin < 60
    assert result.status is Status.START_FAILED
    assert (
        result.reason
        == "the app exited with code 3 before answering; the log ends with: boom: no config"
    )
    assert "boom: no config" in result.app_log
    assert result.score == 20  # it built
    assert "boom: no config" in (tmp_path / "out" / "report.html").read_text()
    assert not leftovers(docker_client, runs={result.run_id})


def test_app_that_never_gets_healthy(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    sub = make_submission(tmp_path / "silent", cmd='["sleep", "3600"]')
    begin = time.monotonic()
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert time.monotonic() - begin < 60
    assert result.status is Status.START_FAILED
    assert "within 8 s" in result.reason
    assert result.score == 20
    assert not leftovers(docker_client, runs={result.run_id})


def test_build_that_never_ends_is_cut(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
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
    done = subprocess.run(
        _cli("grade", str(sub), "--assignment", str(mini), "--out", str(tmp_path / "o")),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "no Docker engine answers" in done.stderr
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert "score" not in data
    assert data["extra_data"]["status"] == "not_graded"
    assert "not graded" in (tmp_path / "o" / "report.html").read_text().lower()


def test_ctrl_c_leaves_nothing_behind(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    sub = make_submission(tmp_path / "silent", cmd='["sleep", "3600"]')  # never healthy: waits 8 s
    run_id = f"test-ctrl-c-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        _cli(
            "grade",
            str(sub),
            "--assignment",
            str(mini),
            "--out",
            str(tmp_path / "o"),
            "--run-id",
            run_id,
        ),
        stderr=subprocess.PIPE,
        text=True,
    )
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


def test_root_images_run_as_nobody_unless_they_need_root(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    plain = grade(submission_path=make_submission(tmp_path / "plain"), assignment=mini)
    assert plain.score == 100 and "serving as uid 65534" in plain.app_log
    needy = grade(
        submission_path=make_submission(tmp_path / "needy", mode="needs-root"), assignment=mini
    )
    assert needy.score == 100 and "serving as uid 0" in needy.app_log
    assert not leftovers(docker_client, runs={plain.run_id, needy.run_id})


def test_app_without_health_route_loses_only_the_start_item(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    """It answers HTTP, just not 2xx on GET /health: after the start deadline the checks run anyway."""
    sub = make_submission(tmp_path / "no-health", mode="no-health")
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert result.status is Status.START_FAILED and result.answered_unhealthy
    assert "not healthy within 8 s: GET /health answered 404, never 2xx" in result.reason
    assert result.score == 70  # builds, GET /hello greets; not "the app starts"
    starts = next(i for i in result.items if i.id == "starts")
    assert starts.points == 0 and "GET /health answered 404" in starts.outcomes[0].message
    html = (tmp_path / "out" / "report.html").read_text()
    assert "The app never passed its health check" in html and "Not run" not in html
    assert not leftovers(docker_client, runs={result.run_id})


CRASH = """\
print("\\x1b[32mINFO\\x1b[0m:     Started server process", flush=True)
import psycopg  # not installed: the decisive line of the log
"""


def test_crash_at_import_names_the_exception(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    sub = make_submission(
        tmp_path / "crash", files={"crash.py": CRASH}, cmd='["python", "crash.py"]'
    )
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert result.status is Status.START_FAILED and not result.answered_unhealthy, result.reason
    assert result.reason.startswith("the app exited with code 1 before answering")
    assert result.reason.endswith("ModuleNotFoundError: No module named 'psycopg'")
    assert result.score == 20
    html = (tmp_path / "out" / "report.html").read_text()
    assert "\x1b" not in html and "INFO:     Started server process" in html
    # the item that could not run is one line, the log is above the scores
    assert "Not run: 1 rubric item (50 points)" in html and "(not run)" not in html
    assert html.index("App log") < html.index("Score by category")
    assert not leftovers(docker_client, runs={result.run_id})


INSTALL = """\
echo "Collecting psycopg2==2.9.9"
echo "  error: subprocess-exited-with-error"
echo "      Error: pg_config executable not found."
echo "error: metadata-generation-failed"
exit 1
"""


def test_failed_run_step_names_the_command_and_its_error(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    sub = make_submission(
        tmp_path / "pip",
        files={"install.sh": INSTALL},
        dockerfile_extra="COPY install.sh .\nRUN sh install.sh\n",
    )
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert result.status is Status.BUILD_FAILED
    assert result.reason == (
        "docker build failed: step 4 `RUN sh install.sh` exited with code 1: "
        "Error: pg_config executable not found."
    )
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.index("Build log") < html.index("Score by category")
    assert not leftovers(docker_client, runs={result.run_id})


# a registry on this machine's loopback that nothing answers on: like `FROM python:latest` on a
# grading machine without a registry (no test sends anything off the machine)
NOWHERE = "127.0.0.1:9/python:latest"


@pytest.mark.parametrize(
    "dockerfile",
    [
        f'FROM {NOWHERE}\nCMD ["python", "app.py"]\n',
        f'ARG BASE={NOWHERE}\nFROM ${{BASE}}\nCMD ["python", "app.py"]\n',
    ],
)
def test_missing_base_image_is_named_with_the_available_ones(
    mini: Path, tmp_path: Path, dockerfile: str, docker_client: DockerClient
) -> None:
    sub = make_submission(tmp_path / "latest")
    (sub / "Dockerfile").write_text(dockerfile)
    result = grade(submission_path=sub, assignment=mini, out=tmp_path / "out")
    assert result.status is Status.BUILD_FAILED
    assert f"the base image `{NOWHERE}` is not available on the grading machine" in result.reason
    bases = result.reason.split("base images it has: ")[1].split(", ")
    assert "python:3.11-slim" in bases and "postgres:15" in bases
    assert not any(b.startswith("api-grader") for b in bases)
    assert f"`{NOWHERE}` is not available" in (tmp_path / "out" / "report.html").read_text()
    assert not leftovers(docker_client, runs={result.run_id})


MIGRATE = """\
print("\\x1b[33mWARNING\\x1b[0m no migrations in this app", flush=True)
raise SystemExit(2)
"""


def test_migrate_alone_is_in_the_report(tmp_path: Path, docker_client: DockerClient) -> None:
    from mini_assignment import write_mini

    spec = write_mini(tmp_path / "spec" / "mini", migrate='["python", "migrate.py"]')
    sub = make_submission(tmp_path / "sub", files={"migrate.py": MIGRATE})
    result = grade(submission_path=sub, assignment=spec, out=tmp_path / "out")
    assert result.status is Status.GRADED and result.score == 100, result.reason
    assert result.migrate is not None and result.migrate.exit_code == 2
    assert result.migrate.command == ["python", "migrate.py"]
    full = json.loads((tmp_path / "out" / "full.json").read_text())
    assert (
        full["migrate"]["exit_code"] == 2 and "no migrations in this app" in full["migrate"]["log"]
    )
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Migrate command alone" in html and "<b>exited with code 2</b>" in html
    assert "WARNING no migrations in this app" in html and "\x1b" not in html
    assert not leftovers(docker_client, runs={result.run_id})
