"""Concurrent runs never touch each other; a run whose grader died is reaped; a sandbox lost during
a grade makes it "not graded"; a submission's image goes with its grade."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from docker import DockerClient
from docker.models.images import ImageCollection
from mini_assignment import make_submission

from grader import engine, services
from grader.batch import run_batch
from grader.core import LABEL, GraderFault, Status
from grader.pipeline import grade

pytestmark = pytest.mark.docker

# A grader stand-in: takes its lease, starts a labelled container, prints its id and lease, sleeps.
HOLDER = textwrap.dedent("""
    import sys, time
    from grader import engine
    container = engine.connect().containers.run(
        "python:3.11-slim", ["sleep", "600"], detach=True, network_mode="none",
        labels=engine.labels(sys.argv[1]))
    print(container.id, engine.lease(), flush=True)
    time.sleep(600)
""")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader.cli", *args]


def _exists(client: DockerClient, container_id: str) -> bool:
    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return False
    return True


@pytest.fixture
def holders(docker_client: DockerClient) -> Iterator[list[tuple[subprocess.Popen[str], str, str]]]:
    """The grader stand-ins a test starts with `_hold`: killed and their runs removed afterwards."""
    started: list[tuple[subprocess.Popen[str], str, str]] = []
    yield started
    for proc, run_id, _ in started:
        proc.kill()
        proc.wait()
        engine.cleanup(docker_client, run_id)


def _hold(
    holders: list[tuple[subprocess.Popen[str], str, str]],
) -> tuple[subprocess.Popen[str], str, Path]:
    run_id = f"test-lease-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, run_id], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    holders.append((proc, run_id, line[0] if line else ""))
    assert len(line) == 2, "the stand-in did not start its container"
    return proc, line[0], Path(line[1])


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup of its own: what a crash or a timeout leaves
    proc.wait()


def test_only_runs_whose_grader_is_gone_are_reaped(
    mini: Path,
    tmp_path: Path,
    docker_client: DockerClient,
    holders: list[tuple[subprocess.Popen[str], str, str]],
) -> None:
    live, live_container, _ = _hold(holders)
    dead, dead_container, dead_lease = _hold(holders)
    _kill(dead)
    done = subprocess.run(_cli("cleanup"), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert _exists(docker_client, live_container), "a live grader's run was removed"
    assert not _exists(docker_client, dead_container), "a dead grader's run was left"
    assert not dead_lease.exists(), "the dead grader's lease file was left"

    # a batch's start: the same (an empty class: nothing to grade, only the reaping)
    dead, dead_container, _ = _hold(holders)
    _kill(dead)
    (tmp_path / "empty").mkdir()
    done = subprocess.run(
        _cli(
            "batch",
            str(tmp_path / "empty"),
            "--assignment",
            str(mini),
            "--out",
            str(tmp_path / "out"),
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _exists(docker_client, live_container), "a batch's start removed a live grader's run"
    assert not _exists(docker_client, dead_container), "a batch's start left a dead grader's run"

    # once its grader dies, the live run goes too
    _kill(live)
    done = subprocess.run(_cli("cleanup"), capture_output=True, text=True, timeout=120, check=False)
    assert not _exists(docker_client, live_container)


def test_cleanup_run_forces_one_run(
    docker_client: DockerClient, holders: list[tuple[subprocess.Popen[str], str, str]]
) -> None:
    _hold(holders)
    _, container, _ = _hold(holders)
    run_id = holders[-1][1]
    done = subprocess.run(
        _cli("cleanup", "--run", run_id), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert not _exists(docker_client, container)
    assert _exists(docker_client, holders[0][2]), "--run removes that run only"


def test_runs_of_other_machines_and_older_graders_are_judged_by_their_labels(
    tmp_path: Path,
) -> None:
    """The reaper's rule on labels alone (no Docker): only an owner known to be gone is reaped."""
    me = engine.Owner.me()
    now = time.time()
    ours = engine.labels("test-verdict")  # this process: alive, its lease held
    assert engine.verdict(ours, now, me) == "alive"
    assert engine.verdict({**ours, engine.HOST: "another-machine"}, now, me) == "elsewhere"
    assert engine.verdict({**ours, engine.BOOT: "an-earlier-boot"}, now, me) == "gone"
    unheld = tmp_path / "dead.lock"
    unheld.touch()
    dead_process = f"{me.pidns}/{me.pid}/1"  # our pid, another start time: a process long gone
    assert (
        engine.verdict({**ours, engine.LEASE: str(unheld), engine.PROCESS: dead_process}, now, me)
        == "gone"
    )
    missing = str(tmp_path / "missing.lock")
    assert (
        engine.verdict({**ours, engine.LEASE: missing, engine.PROCESS: dead_process}, now, me)
        == "gone"
    )
    # a lease this namespace cannot see: the owner's process decides (alive: ours)
    assert (
        engine.verdict({**ours, engine.LEASE: missing, engine.MOUNTS: "other"}, now, me) == "alive"
    )
    assert (
        engine.verdict({**ours, engine.MOUNTS: "other", engine.PROCESS: "other/1/1"}, now, me)
        == "elsewhere"
    )
    # graders before leases labelled only the run: orphaned once older than any grade lasts
    assert engine.verdict({}, now - 60, me) == "alive"
    assert engine.verdict({}, now - engine.LEGACY_GRACE - 60, me) == "gone"


SLOW_APP = """
import json, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/hello":
            time.sleep(3)  # the grade is in its checks for a while
        data = json.dumps({"status": "ok"} if self.path == "/health" else {"greeting": "hello"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""


def _slow_grade(mini: Path, tmp_path: Path, run_id: str, **env: str) -> subprocess.Popen[str]:
    """`grader grade` of a submission whose GET /hello is slow, in the background."""
    sub = make_submission(tmp_path / "slow")
    (sub / "app.py").write_text(SLOW_APP)
    out = tmp_path / "o"
    return subprocess.Popen(
        _cli("grade", str(sub), "--assignment", str(mini), "--out", str(out), "--run-id", run_id),
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def _wait_for_checks(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if "running checks" in line:
            return


@pytest.mark.parametrize("action", ["remove", "stop", "restart"])
def test_sandbox_lost_mid_grade_is_not_graded(
    action: str, mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    """Someone else removes, stops or restarts the app while the checks run: not graded, exit 2,
    never a score from whatever answered (a restarted app would even have scored 100)."""
    run_id = f"test-lost-{uuid.uuid4().hex[:8]}"
    proc = _slow_grade(mini, tmp_path, run_id)
    assert proc.stderr is not None
    _wait_for_checks(proc)
    (app,) = docker_client.containers.list(filters={"label": f"{LABEL}={run_id}"})
    time.sleep(0.5)  # GET /hello is under way
    getattr(app, action)(**({"force": True} if action == "remove" else {"timeout": 1}))
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 2, err
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["extra_data"]["status"] == "not_graded" and "score" not in data
    verb = {"remove": "removed", "stop": "stopped", "restart": "restarted"}[action]
    assert (
        f"the app's container was {verb} by something other than the grader"
        in data["extra_data"]["reason"]
    )
    assert not engine.leftovers(docker_client, runs={run_id})


class _Relay:
    """A unix socket relayed to the engine's; `drop()` cuts every connection open now, as an
    engine that stops or restarts does (new connections work again); `stop()` also refuses new
    ones, as an engine that is down does."""

    def __init__(self, path: Path) -> None:
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen()
        self.open: list[tuple[socket.socket, socket.socket, bytes]] = []  # + the first request
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(near,), daemon=True).start()

    def _connect(self, near: socket.socket) -> None:
        first = near.recv(65536)
        far = socket.socket(socket.AF_UNIX)
        far.connect("/var/run/docker.sock")
        far.sendall(first)
        self.open.append((near, far, first))
        for a, b in ((near, far), (far, near)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def drop(self, keep: bytes | None = None) -> None:
        """Cut every connection but those whose first request contains `keep`."""
        for near, far, first in self.open:
            if keep is None or keep not in first:
                for sock in (near, far):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def stop(self, keep: bytes | None = None) -> None:
        self.server.shutdown(socket.SHUT_RDWR)  # wakes accept() (a close alone would not) and
        self.server.close()  # refuses new connections
        self.drop(keep)


def test_engine_restart_during_a_grade_is_a_loss(tmp_path: Path) -> None:
    relay = _Relay(tmp_path / "engine.sock")
    client = DockerClient(base_url=f"unix://{tmp_path / 'engine.sock'}")
    watch = engine.Watch()
    watch.start(client, f"test-watch-{uuid.uuid4().hex[:8]}")
    time.sleep(0.3)
    assert watch.check() == ""
    relay.drop()
    deadline = time.monotonic() + 10
    while not watch.check() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert watch.check() == "the Docker engine stopped or restarted during the grade"
    with pytest.raises(Exception, match="sandbox was lost"):
        watch.verify()
    watch.close()
    relay.server.close()


def test_an_engine_that_stops_answering_is_a_loss(
    tmp_path: Path, docker_client: DockerClient
) -> None:
    """The engine refuses every call while the event stream still looks open (it has not noticed
    yet): the watch reports the loss instead of raising the HTTP client's error, and the run's
    cleanup on the way out says what it could not remove instead of raising."""
    relay = _Relay(tmp_path / "engine.sock")
    client = DockerClient(base_url=f"unix://{tmp_path / 'engine.sock'}")
    run_id = f"test-watch-{uuid.uuid4().hex[:8]}"
    app = docker_client.containers.run(
        "python:3.11-slim",
        ["sleep", "120"],
        detach=True,
        network_mode="none",
        labels=engine.labels(run_id),
    )
    watch = engine.Watch()
    try:
        watch.start(client, run_id)
        watch.container(client.containers.get(app.id), "the app")
        assert watch.check() == ""
        relay.stop(keep=b"/events")  # the event stream stays open
        assert watch.check() == "the Docker engine failed during the grade (ConnectionError)"
        with pytest.raises(GraderFault, match="sandbox was lost"):
            watch.verify()
        cleaned = engine.cleanup(client, run_id)
        assert cleaned.removed == [] and cleaned.failed == [
            f"run {run_id}: the Docker engine did not answer (ConnectionError)"
        ]
    finally:
        watch.close()
        engine.cleanup(docker_client, run_id)
    assert not engine.leftovers(docker_client, runs={run_id})


def test_an_engine_restart_during_a_grade_is_not_graded(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    """`grader grade` talks to the engine through a relay that goes down while the checks run:
    "not graded", exit 2, no traceback — the way out (stopping the app and Postgres, removing
    the run) meets the same dead engine and must not hide the first fault."""
    relay = _Relay(tmp_path / "engine.sock")
    run_id = f"test-engine-{uuid.uuid4().hex[:8]}"
    proc = _slow_grade(mini, tmp_path, run_id, DOCKER_HOST=f"unix://{tmp_path / 'engine.sock'}")
    assert proc.stderr is not None
    try:
        _wait_for_checks(proc)
        relay.stop()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 2, err
    finally:
        proc.kill()
        engine.cleanup(docker_client, run_id)
    assert "Traceback" not in err, err
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["extra_data"]["status"] == "not_graded" and "score" not in data
    assert "the Docker engine" in data["extra_data"]["reason"], data["extra_data"]["reason"]
    assert not engine.leftovers(docker_client, runs={run_id})


def test_cleanup_says_what_it_could_not_remove(tmp_path: Path, docker_client: DockerClient) -> None:
    """A run's image that another run's container still uses stays: reported as not removed
    (by `grader cleanup --run` too, exit 2), never as removed."""
    run_id, other = (f"test-clean-{uuid.uuid4().hex[:8]}" for _ in range(2))
    tag = f"{engine.SUBMISSION_IMAGE}:{run_id}"
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nLABEL purpose=test\n")
    docker_client.images.build(
        path=str(tmp_path), tag=tag, labels=engine.labels(run_id), rm=True, forcerm=True
    )
    try:
        docker_client.containers.run(
            tag, ["sleep", "120"], detach=True, network_mode="none", labels=engine.labels(other)
        )
        cleaned = engine.cleanup(docker_client, run_id)
        assert cleaned.removed == [] and len(cleaned.failed) == 1, cleaned
        assert cleaned.failed[0].startswith(f"image {tag}: 409"), cleaned
        done = subprocess.run(
            _cli("cleanup", "--run", run_id),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2 and "could not remove 1 object(s)" in done.stderr, done.stderr
        assert "removed 0 object(s)" in done.stderr
    finally:
        engine.cleanup(docker_client, other)
        engine.cleanup(docker_client, run_id)
    assert not engine.leftovers(docker_client, runs={run_id, other})


def test_the_submission_image_goes_with_its_grade(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    result = grade(submission_path=make_submission(tmp_path / "good"), assignment=mini)
    assert result.status is Status.GRADED and result.score == 100
    assert not docker_client.images.list(filters={"label": f"{LABEL}={result.run_id}"})
    assert docker_client.images.list(name="python:3.11-slim"), "the base image stays"


def test_a_full_disk_refuses_to_build(
    mini: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "MIN_FREE_BYTES", 10**18)
    result = grade(submission_path=make_submission(tmp_path / "good"), assignment=mini)
    assert result.status is Status.NOT_GRADED
    assert "a build needs" in result.reason


def test_a_batch_reaps_the_child_it_had_to_kill(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    make_submission(
        tmp_path / "class" / "slow", cmd='["sleep", "3600"]'
    )  # never healthy: 8 s start
    latest = run_batch(
        source=tmp_path / "class", assignment=str(mini), out=tmp_path / "out", retries=0, timeout=5
    )
    entry = latest["slow"]
    assert entry["status"] == "not_graded" and "longer than 5 s" in entry["reason"]
    assert not engine.leftovers(docker_client, runs={entry["run_id"]})


def test_a_batch_says_why_it_grades_again(mini: Path, tmp_path: Path) -> None:
    """A grade not graded is tried again; the journal keeps the last attempt only, so the batch
    tells why it tried again."""
    # never healthy; its name carries a terminal command, which the notice must not pass on
    make_submission(tmp_path / "class" / "slow\x1b[2J", cmd='["sleep", "3600"]')
    told: list[str] = []
    latest = run_batch(
        source=tmp_path / "class",
        assignment=str(mini),
        out=tmp_path / "out",
        retries=1,
        timeout=5,
        notice=told.append,
    )
    assert latest["slow\x1b[2J"]["status"] == "not_graded"
    assert len((tmp_path / "out" / "journal.jsonl").read_text().splitlines()) == 1
    assert len(told) == 1 and told[0].startswith("slow\\x1b[2J: not graded ("), told
    assert "longer than 5 s" in told[0] and told[0].endswith("; grading again"), told


def test_a_grader_fault_after_the_build_keeps_its_log_and_timings(
    mini: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not graded, but the report still says how far the run came: the build's log and time."""

    def no_database(*args: object, **kwargs: object) -> None:
        raise GraderFault("Postgres did not start (test)")

    monkeypatch.setattr(services, "start", no_database)
    result = grade(submission_path=make_submission(tmp_path / "good"), assignment=mini)
    assert result.status is Status.NOT_GRADED and "Postgres did not start" in result.reason
    assert result.timings["build"] > 0 and result.build_log, (result.timings, result.build_log)


def test_listing_runs_survives_an_image_removed_meanwhile(
    tmp_path: Path, docker_client: DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another grade may remove its image between the engine's list and a look-up of each image:
    the listing reads the list's own rows (docker's `images.list` looked each up, and one
    ImageNotFound failed a whole reaping)."""
    run_id = f"test-gone-{uuid.uuid4().hex[:8]}"
    tag = f"{engine.SUBMISSION_IMAGE}:{run_id}"
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nLABEL purpose=test\n")
    docker_client.images.build(
        path=str(tmp_path), tag=tag, labels=engine.labels(run_id), rm=True, forcerm=True
    )
    try:

        def removed_meanwhile(*_: Any, **__: Any) -> None:
            raise docker.errors.ImageNotFound("removed by another grade")

        with monkeypatch.context() as patch:
            patch.setattr(ImageCollection, "get", removed_meanwhile)  # each look-up fails
            found = engine.runs(docker_client)
        assert found[run_id].names == [f"image {tag}"]
    finally:
        engine.cleanup(docker_client, run_id)
    assert not engine.leftovers(docker_client, runs={run_id})
