"""`grader check` in students' repositories: with Docker, in local mode without a Docker engine,
on a Postgres server the student names, and through the starter repo's CI jobs (GitHub's workflow
and GitLab's .gitlab-ci.yml, both running .github/self-check.sh)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REFERENCE_DIR, ROOT, TEMPLATE_DIR, fresh_database
from docker import DockerClient

from grader import localpg
from grader.assignment import load

GRADER = [sys.executable, "-m", "grader.cli"]
DEPLOY_ITEMS = {"image-builds", "app-starts"}  # what only Docker can check


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", ".grader-report"))
    return dest


def _check(
    repo: Path,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRADER, "check", *args],
        cwd=cwd or repo,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _full(repo: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo / ".grader-report" / "full.json").read_text())
    return data


def _items(full: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in full["items"]}


def test_reference_passes_in_docker_from_a_subfolder(
    tmp_path: Path, docker_client: DockerClient
) -> None:
    repo = _copy(REFERENCE_DIR, tmp_path / "repo")
    done = _check(repo, cwd=repo / "app")  # the marker is found in a parent folder
    assert done.returncode == 0, done.stdout + done.stderr
    full = _full(repo)
    assert full["runtime"] == "docker"
    items = _items(full)
    assert all(i["visibility"] == "visible" for i in items.values())
    assert full["hidden"] > 0 and full["score"] == full["max_score"] == 100 - full["hidden_points"]
    assert all(i["passed"] for i in items.values())
    assert "hidden check(s)" in done.stderr
    # hidden tests leave no trace in a self-check, not even through the differential check
    hidden_tests = {
        line.split("(")[0].removeprefix("def ")
        for f in ("test_forged_jwt.py",)
        for line in (ROOT / "specs" / "fastapi-db-auth" / "tests" / f).read_text().splitlines()
        if line.startswith("def test_")
    }
    assert hidden_tests
    names = {o["name"].split("[")[0].split(" ·")[0] for i in items.values() for o in i["outcomes"]}
    assert not names & hidden_tests, names & hidden_tests


def test_reference_passes_in_local_mode_without_a_docker_engine(tmp_path: Path) -> None:
    repo = _copy(REFERENCE_DIR, tmp_path / "repo")
    clusters = set(Path(tempfile.gettempdir()).glob("api-grader-pg-*"))
    # no engine answers this process: nothing of it can run in Docker (the engine itself may be
    # busy with other grades, so its container list proves nothing)
    done = _check(repo, env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no Docker engine answers: grading in local mode" in done.stderr
    full = _full(repo)
    assert full["runtime"] == "local"
    items = _items(full)
    for item_id, item in items.items():
        if item_id in DEPLOY_ITEMS:  # reported, never silently passed
            assert item["not_checked"] and item["points"] == 0 and not item["passed"]
        else:
            assert item["passed"], item
    assert "not checked in local mode" in done.stderr
    assert (
        set(Path(tempfile.gettempdir()).glob("api-grader-pg-*")) <= clusters
    )  # removed afterwards


def test_template_fails_locally_on_a_named_postgres_server(
    tmp_path: Path, postgres: localpg.LocalPostgres
) -> None:
    repo = _copy(TEMPLATE_DIR, tmp_path / "repo")
    server = fresh_database(postgres, "student_own")
    done = _check(
        repo,
        "--runtime",
        "local",
        "--database-url",
        server.replace("postgresql://", "postgresql+asyncpg://"),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    full = _full(repo)
    assert full["runtime"] == "local" and 0 < full["score"] < full["max_score"] / 2
    out = done.stderr
    assert "✗" in out and "expected:" in out and "Where the points went" in out
    # the reproducer is the whole request sequence, a script next to the report
    script = re.search(r"reproduce: python (\S+\.py)", out)
    assert script and (repo / script[1]).is_file(), out  # relative to where `grader check` ran
    # the run's databases were created on that server and dropped afterwards
    import psycopg

    with psycopg.connect(server) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
    assert not [n for n in names if n.startswith("grader_")], names


def test_local_mode_says_what_to_change_when_it_cannot_start_the_app(tmp_path: Path) -> None:
    """A CMD local mode cannot run, and no module for the assignment's own command: a graded start
    failure that names the CMD and what to write instead — never a silent "did not start"."""
    repo = _copy(ROOT / "reference_solution" / "fastapi-basics", tmp_path / "repo")
    (repo / "app").rename(repo / "web")
    (repo / "Dockerfile").write_text(
        'FROM python:3.11-slim\nWORKDIR /srv\nCOPY . .\nCMD ["./run.sh"]\n'
    )
    done = _check(repo, "--runtime", "local")
    assert done.returncode == 1, done.stdout + done.stderr
    full = _full(repo)
    assert full["status"] == "start_failed" and full["score"] == 0
    assert full["reason"] == (
        "local mode runs the Dockerfile's CMD when it is a plain uvicorn/gunicorn/fastapi command; "
        "yours is `./run.sh` (`./run.sh` is not uvicorn, gunicorn or `fastapi run`), and the "
        "assignment's `uvicorn app.main:app --host 127.0.0.1 --port 8000` finds no module app.main: "
        "make the CMD e.g. `uvicorn <module>:app --host 0.0.0.0 --port 8000`, run from the WORKDIR "
        "that holds <module>"
    )
    assert "yours is `./run.sh`" in done.stderr


def test_local_mode_never_runs_a_program_of_the_submission(tmp_path: Path) -> None:
    """CMD `./uvicorn …` names the submission's own script (here one that would leave a marker,
    then serve all the same): local mode runs the virtual environment's uvicorn instead."""
    repo = _copy(ROOT / "reference_solution" / "fastapi-basics", tmp_path / "repo")
    marker = tmp_path / "ran"
    script = repo / "uvicorn"
    script.write_text(f'#!/bin/sh\ntouch {marker}\nexec python -m uvicorn "$@"\n')
    script.chmod(0o755)
    cmd = ["./uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
    (repo / "Dockerfile").write_text(
        f"FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\nCMD {json.dumps(cmd)}\n"
    )
    done = _check(repo, "--runtime", "local")
    full = _full(repo)
    assert full["runtime"] == "local" and full["status"] != "start_failed", done.stderr
    assert _items(full)["app-starts"]["points"] == 0  # not checked in local mode
    assert full["score"] > 0 and not marker.exists()


def test_without_a_marker_the_check_cannot_run(tmp_path: Path) -> None:
    done = _check(tmp_path)
    assert done.returncode == 2
    assert ".grader.yaml" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "template", sorted((ROOT / "student_template").iterdir()), ids=lambda p: p.name
)
def test_workflow_runs_only_the_repo_script(template: Path) -> None:
    """Every starter repo ships the workflow and the script it runs, and names its assignment."""
    assert yaml.safe_load((template / ".grader.yaml").read_text()) == {"assignment": template.name}
    workflow = yaml.safe_load((template / ".github" / "workflows" / "grade.yml").read_text())
    steps = workflow["jobs"]["self-check"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs == ["bash .github/self-check.sh"]
    assert (template / ".github" / "self-check.sh").read_text() == (
        TEMPLATE_DIR / ".github" / "self-check.sh"
    ).read_text()  # the tested one below
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"].rstrip("/") == ".grader-report" and upload["if"] == "always()"
    assert {s.get("uses", "").split("@")[0] for s in steps} <= {
        "",
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
    }


def test_workflow_script_on_the_starter_repo(tmp_path: Path, docker_client: DockerClient) -> None:
    """The script the workflow runs, as GitHub runs it: it installs the grader from GRADER_REPO,
    fails the job (exit 1), writes the job summary, JUnit XML and the report to upload."""
    repo = _copy(TEMPLATE_DIR, tmp_path / "repo")
    summary = tmp_path / "step-summary.md"
    env = {
        **os.environ,
        "GRADER_REPO": str(ROOT),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", ".github/self-check.sh"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    text = summary.read_text()
    assert text.startswith("## fastapi-db-auth: Graded. Score ") and "### To fix" in text
    assert "curl -i" in text
    junit = (repo / ".grader-report" / "junit.xml").read_text()
    assert "<failure" in junit
    assert (repo / ".grader-report" / "report.html").stat().st_size > 1000


# What a GitLab runner gives a job (predefined variables); never GitHub's
GITLAB_ENV = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_JOB_ID": "4242",
    "CI_JOB_NAME": "self-check",
    "CI_JOB_TOKEN": "not-a-token",
    "CI_COMMIT_SHA": "0" * 40,
    "CI_COMMIT_REF_NAME": "main",
    "CI_PIPELINE_SOURCE": "push",
}


def _gitlab_job(template: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    ci: dict[str, Any] = yaml.safe_load((template / ".gitlab-ci.yml").read_text())
    return ci, ci["self-check"]


def _without_github(env: dict[str, str]) -> dict[str, str]:
    """The environment minus GitHub's variables (this suite may itself run on GitHub Actions)."""
    return {k: v for k, v in env.items() if not k.startswith(("GITHUB_", "RUNNER_"))}


@pytest.mark.parametrize(
    "template", sorted((ROOT / "student_template").iterdir()), ids=lambda p: p.name
)
def test_gitlab_job_runs_the_workflow_script(template: Path) -> None:
    """Every starter repo's .gitlab-ci.yml runs what the GitHub workflow runs, on the same Python,
    with the same time limit; the JUnit file the script writes is GitLab's test report and the
    report folder its artifact, kept when the job fails; exit 1 and 2 fail the job, as on GitHub."""
    schema = ["--builtin-schema", "vendor.gitlab-ci"]
    valid = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *schema, str(template / ".gitlab-ci.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert valid.returncode == 0, valid.stdout + valid.stderr  # GitLab's schema of the file
    ci, job = _gitlab_job(template)
    workflow = yaml.safe_load((template / ".github" / "workflows" / "grade.yml").read_text())
    github = workflow["jobs"]["self-check"]
    assert set(ci) == {"variables", "self-check"}
    # no allow_failure: a failing check (1) and one that cannot run (2) fail the job
    assert set(job) <= {"image", "timeout", "before_script", "script", "artifacts"}
    assert job["script"] == [s["run"] for s in github["steps"] if "run" in s]
    python = next(
        s for s in github["steps"] if s.get("uses", "").startswith("actions/setup-python")
    )
    assert job["image"] == "$SELF_CHECK_IMAGE"
    assert ci["variables"]["SELF_CHECK_IMAGE"] == f"python:{python['with']['python-version']}"
    assert job["timeout"] == f"{github['timeout-minutes']} minutes"
    # PostgreSQL binaries for local mode's throwaway cluster, where the assignment has a database
    installs = any(
        "install" in line and "postgresql" in line for line in job.get("before_script", [])
    )
    assert installs == load(template.name).services.postgres
    script = (template / ".github" / "self-check.sh").read_text()
    out = re.search(r"^out=(\S+)$", script, re.MULTILINE)
    junit = re.search(r'--junit "([^"]+)"', script)
    assert out and junit
    artifacts = job["artifacts"]
    assert artifacts["reports"]["junit"] == junit[1].replace("$out", out[1])
    assert artifacts["paths"] == [f"{out[1]}/"]  # a folder: with a trailing "/" for expose_as
    assert artifacts["when"] == "always" and artifacts["expose_as"]


def test_gitlab_job_on_the_starter_repo(tmp_path: Path) -> None:
    """The job's lines as a GitLab runner runs them (one bash script, `set -eo pipefail`, in
    CI_PROJECT_DIR, with GitLab's variables), in a container job's setting: no Docker engine, so
    local mode. It fails the job (exit 1) and leaves the test report and the artifact behind.
    `grader` is this checkout's (the install from GRADER_REPO is the GitHub test's, same script)."""
    repo = _copy(TEMPLATE_DIR, tmp_path / "repo")
    ci, job = _gitlab_job(repo)
    shim = tmp_path / "bin" / "grader"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m grader.cli "$@"\n')
    shim.chmod(0o755)
    env = {
        **_without_github(dict(os.environ)),
        **GITLAB_ENV,
        **ci["variables"],
        "CI_PROJECT_DIR": str(repo),
        "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
    }
    env.pop("GRADER_REPO", None)
    lines = [*job.get("before_script", []), *job["script"]]
    done = subprocess.run(
        ["bash", "-c", "\n".join(["set -eo pipefail", *lines])],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no Docker engine answers: grading in local mode" in done.stderr
    artifacts = job["artifacts"]
    junit = (repo / artifacts["reports"]["junit"]).read_text()
    assert "<failure" in junit
    report = repo / artifacts["paths"][0]
    assert (report / "report.html").stat().st_size > 1000
    summary = (report / "summary.md").read_text()  # no job summary on GitLab: in the artifact
    assert summary.startswith("## fastapi-db-auth: Graded. Score ") and "### To fix" in summary
    full = _full(repo)
    assert full["runtime"] == "local"
    assert all(_items(full)[i]["not_checked"] for i in DEPLOY_ITEMS)


@pytest.mark.parametrize("host", ["github", "gitlab"])
def test_self_check_script_without_a_grader(tmp_path: Path, host: str) -> None:
    """No GRADER_REPO and no `grader` installed: the check cannot run (exit 2, the job fails on
    both hosts) and says what to set; an annotation on GitHub, a plain line on GitLab."""
    repo = _copy(TEMPLATE_DIR, tmp_path / "repo")
    tools = tmp_path / "bin"  # what the script needs before it installs anything; no `grader`
    tools.mkdir()
    (tools / "dirname").symlink_to(shutil.which("dirname") or "dirname")
    ci_env = {"CI": "true", "GITHUB_ACTIONS": "true"} if host == "github" else GITLAB_ENV
    done = subprocess.run(
        [shutil.which("bash") or "bash", ".github/self-check.sh"],
        cwd=repo,
        env={**ci_env, "PATH": str(tools), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    message = "set GRADER_REPO (a CI variable of the repository, group or organisation)"
    prefix = "::error::" if host == "github" else ""
    assert done.stderr.startswith(prefix + message), done.stderr
