"""Postgres starts beside the build, and a batch's next grades take warm spares: each spare goes to
one grade, and nothing of a run, a spare or a batch (finished or killed) is left behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from docker import DockerClient
from mini_assignment import make_submission, write_mini

from grader import engine
from grader.core import LABEL, Status
from grader.engine import LEASE, PROCESS, leftovers
from grader.pipeline import grade
from grader.services import SPARE

pytestmark = pytest.mark.docker

MIGRATE = 'print("nothing to migrate")\n'
SLOW_BUILD = "RUN sleep 4\n"  # longer than a Postgres start, even on a busy engine


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini assignment with a Postgres (and a migrate command the submissions bring)."""
    return write_mini(tmp_path_factory.mktemp("specs") / "mini-db", migrate='["python", "m.py"]')


def _submission(root: Path, *, extra: str = "") -> Path:
    # a file of its own before the RUN steps: no build of another submission is reused
    files = {"m.py": MIGRATE, "who.txt": f"{root.name} {uuid.uuid4().hex}\n"}
    sub = make_submission(root, files=files)
    dockerfile = (sub / "Dockerfile").read_text()
    (sub / "Dockerfile").write_text(
        dockerfile.replace("WORKDIR /srv\n", f"WORKDIR /srv\nCOPY who.txt ./\n{extra}")
    )
    return sub


@contextmanager
def _events(client: DockerClient) -> Iterator[list[dict[str, Any]]]:
    """The engine's container and image events while the block runs, followed as they come (the
    engine keeps only its last few hundred events: a busy engine has dropped them by the end)."""
    seen: list[dict[str, Any]] = []
    stream = client.events(decode=True, filters={"type": ["container", "image"]})

    def follow() -> None:
        with contextlib.suppress(Exception):  # the stream closed below
            seen.extend(stream)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        time.sleep(1)  # the block's last events, on their way
        stream.close()
        reader.join(timeout=10)


def _postgres(events: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    """The `action` events of grader-labelled Postgres containers, their labels as attributes."""
    return [
        e
        for e in events
        if e.get("Type") == "container"
        and e.get("Action") == action
        and e["Actor"]["Attributes"].get("image") == "postgres:15"
        and LABEL in e["Actor"]["Attributes"]
    ]


def test_postgres_starts_before_the_build_ends(
    spec: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    run_id = uuid.uuid4().hex[:12]
    sub = _submission(tmp_path / "slow", extra=SLOW_BUILD)
    with _events(docker_client) as events:
        result = grade(submission_path=sub, assignment=spec, out=tmp_path / "out", run_id=run_id)
    assert result.status is Status.GRADED and result.score == 100, result.reason
    started = [e for e in _postgres(events, "start") if e["Actor"]["Attributes"][LABEL] == run_id]
    tagged = [
        e
        for e in events
        if e.get("Type") == "image"
        and e.get("Action") == "tag"
        and e["Actor"]["Attributes"].get("name", "").endswith(f"-{run_id}")
    ]
    assert len(started) == 1 and len(tagged) == 1, (started, tagged)
    assert started[0]["timeNano"] < tagged[0]["timeNano"], "Postgres waited for the build"
    # the wait after the build, not the server's own start: part of it was hidden by the build
    assert result.timings["database_ready"] <= result.timings["services_start"]
    assert not leftovers(docker_client, runs={run_id})


def test_a_failed_build_removes_the_postgres_started_beside_it(
    spec: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    run_id = uuid.uuid4().hex[:12]
    sub = _submission(tmp_path / "broken", extra="RUN sleep 3 && exit 3\n")
    with _events(docker_client) as events:
        result = grade(submission_path=sub, assignment=spec, out=tmp_path / "out", run_id=run_id)
    assert result.status is Status.BUILD_FAILED, result.reason
    assert [e["Actor"]["Attributes"][LABEL] for e in _postgres(events, "start")].count(run_id) == 1
    assert not leftovers(docker_client, runs={run_id})


def test_a_failed_build_is_the_students_even_when_postgres_fails_too(
    spec: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    missing = "api-grader-test-no-such-postgres:0"
    sub = _submission(tmp_path / "broken", extra="RUN exit 3\n")
    result = grade(
        submission_path=sub, assignment=spec, out=tmp_path / "out", postgres_image=missing
    )
    assert result.status is Status.BUILD_FAILED, result.reason
    assert not leftovers(docker_client, runs={result.run_id})

    fine = _submission(tmp_path / "fine")
    result = grade(
        submission_path=fine, assignment=spec, out=tmp_path / "out2", postgres_image=missing
    )
    assert result.status is Status.NOT_GRADED and missing in result.reason, result.reason
    assert not leftovers(docker_client, runs={result.run_id})


def _batch(source: Path, spec: Path, out: Path, jobs: int) -> list[str]:
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(source), "--assignment", str(spec)]
    return [*cmd, "--out", str(out), "--jobs", str(jobs)]


def _journal(out: Path) -> list[dict[str, Any]]:
    lines = (out / "journal.jsonl").read_text().splitlines() if out.is_dir() else []
    return [json.loads(line) for line in lines if line.strip()]


def _own_cache(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Leases in a folder of this test's: its runs are told apart from other grades'."""
    cache = tmp_path / "cache"
    return {**os.environ, "API_GRADER_CACHE": str(cache)}, cache / "runs"


def test_each_spare_serves_one_grade_and_none_is_left(
    spec: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    source, out = tmp_path / "class", tmp_path / "out"
    for student in ("ann", "ben", "cid", "dot"):
        _submission(source / student, extra=SLOW_BUILD)
    env, leases = _own_cache(tmp_path)
    with _events(docker_client) as events:
        proc = subprocess.Popen(_batch(source, spec, out, 2), env=env, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    journal = _journal(out)
    assert sorted(e["student"] for e in journal) == ["ann", "ben", "cid", "dot"]
    assert all(e["status"] == "graded" and e["score"] == 100 for e in journal), journal
    graded = {str(e["run_id"]) for e in journal}
    created = [e["Actor"]["Attributes"] for e in _postgres(events, "create")]
    ours = [a for a in created if a[LABEL] in graded or f"/{proc.pid}/" in a[PROCESS]]
    by_batch = {a[LABEL] for a in created if f"/{proc.pid}/" in a[PROCESS]}
    per_run = [a[LABEL] for a in ours]
    assert all(per_run.count(run) == 1 for run in graded), "one Postgres per grade"
    # the first two grades start their own; the two after them take the batch's spares
    assert len(by_batch & graded) >= 2, (by_batch, graded)
    assert len(per_run) == len(set(per_run)), "a spare went to two grades"
    assert not leftovers(docker_client, lease_dir=leases)
    assert not leftovers(docker_client, runs=graded | by_batch)


@pytest.mark.parametrize("moment", ["spare", "build"])
def test_a_killed_batch_leaves_no_spare_behind(
    spec: Path, tmp_path: Path, docker_client: DockerClient, moment: str
) -> None:
    """Killed once a spare waits for a grade, or while a child's build runs (its own Postgres is
    up beside it): nothing is left, also of what the engine was still creating then (the image)."""
    source, out = tmp_path / "class", tmp_path / "out"
    for student in ("ann", "ben", "cid"):
        _submission(source / student, extra=SLOW_BUILD)
    env, leases = _own_cache(tmp_path)
    proc = subprocess.Popen(
        _batch(source, spec, out, 1), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    run = ""
    deadline = time.monotonic() + 300
    while not run and time.monotonic() < deadline:
        graded = {str(e["run_id"]) for e in _journal(out)}
        for c in docker_client.containers.list(filters={"label": LABEL}):
            by_batch = f"/{proc.pid}/" in c.labels[PROCESS]
            ours = Path(c.labels[LEASE]).parent == leases and c.labels[LABEL] not in graded
            if ours and (by_batch and SPARE in c.labels if moment == "spare" else not by_batch):
                run = c.labels[LABEL]
        time.sleep(0.05)
    assert run, f"no {moment} to kill the batch at"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    end = time.monotonic() + 60  # its keeper and its children remove what it left
    while leftovers(docker_client, lease_dir=leases) and time.monotonic() < end:
        time.sleep(0.5)
    assert not leftovers(docker_client, lease_dir=leases)
    time.sleep(8)  # longer than the build's RUN step: a build in flight has ended by now
    assert not leftovers(docker_client, lease_dir=leases)
    assert not leftovers(docker_client, runs={run})


def test_a_run_with_two_owners_is_reaped_once_both_are_gone(
    tmp_path: Path, docker_client: DockerClient
) -> None:
    """A spare's objects name the batch, its grade's the child: the run lives while either does."""
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    alive = engine.labels(run_id)
    pidns = alive[PROCESS].split("/")[0]
    gone = {**alive, LEASE: str(tmp_path / "gone.lock"), PROCESS: f"{pidns}/4194304/1"}
    # a container (listed first) of an owner that is gone, a network of one alive (this test)
    docker_client.containers.create("postgres:15", labels=gone, network_disabled=True)
    network = docker_client.networks.create(f"agr-test-{run_id}", labels=alive, internal=True)
    try:
        engine.reap_orphans(docker_client)
        assert len(leftovers(docker_client, runs={run_id})) == 2, "reaped while an owner lives"
        network.remove()
        engine.reap_orphans(docker_client)
        assert not leftovers(docker_client, runs={run_id})
    finally:
        engine.cleanup(docker_client, run_id)
