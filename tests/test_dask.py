"""`grader batch --executor dask`: a real `grader scheduler` and real `grader worker` processes on
127.0.0.1, real grades through Docker; nothing mocked. Workers killed, the client killed, a
worker with another copy of the assignment."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from docker import DockerClient
from mini_assignment import make_submission, write_mini
from test_services_overlap import _events, _postgres, _submission

from grader.core import LABEL
from grader.engine import PROCESS, leftovers

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = {  # a commit needs a name, whatever the machine's git configuration
    **os.environ,
    "GIT_AUTHOR_NAME": "Judy",
    "GIT_AUTHOR_EMAIL": "judy@example.invalid",
    "GIT_COMMITTER_NAME": "Judy",
    "GIT_COMMITTER_EMAIL": "judy@example.invalid",
}
STUDENTS = ["alice", "bob", "carol", "dave", "eve", "frank", "gina", "hank", "ivan", "judy"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ready: Any, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass
class Cluster:
    """A scheduler and its workers, each a process of its own with its log in `logs`."""

    root: Path
    env: dict[str, str]
    address: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def _start(self, name: str, argv: list[str]) -> None:
        with (self.root / f"{name}.log").open("wb") as fh:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "grader.cli", *argv],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=ROOT,
            )

    def scheduler(self) -> None:
        port, board = _free_port(), _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        argv = ["scheduler", "--host", "127.0.0.1", "--port", str(port)]
        self._start("scheduler", [*argv, "--dashboard-address", f"127.0.0.1:{board}"])
        _wait("the scheduler", lambda: "Scheduler at:" in self.log("scheduler"))

    def worker(self, name: str, *extra: str) -> None:
        argv = ["worker", "--scheduler", self.address, "--slots", "1", "--name", name, *extra]
        self._start(name, argv)
        _wait(f"worker {name}", lambda: "Registered to:" in self.log(name))

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        """Workers first (each SIGTERM, then SIGKILL), then the scheduler: nothing left running."""
        for name in sorted(self.procs, key=lambda n: n == "scheduler"):
            proc = self.procs.pop(name)
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _said(self, what: str, since: dict[str, int] | None) -> Iterator[tuple[str, str]]:
        """(worker, the rest of the line) of each "grading"/"graded" line in the workers' logs
        (after the log sizes `since`)."""
        for path in sorted(self.root.glob("w*.log")):
            text = path.read_text(errors="replace")[(since or {}).get(path.stem, 0) :]
            for line in text.splitlines():
                if f"distributed.worker.grade - INFO - {what} " in line:
                    yield path.stem, line.split(f"{what} ", 1)[1]

    def grading(self, since: dict[str, int] | None = None) -> list[tuple[str, str]]:
        """(worker, student) of every grade the workers started."""
        return [(worker, rest.split(" ")[0]) for worker, rest in self._said("grading", since)]

    def graded(self, since: dict[str, int] | None = None) -> list[tuple[str, int, str]]:
        """(student, attempt, status) of every grade the workers ended."""
        ended = []
        for _, rest in self._said("graded", since):
            student, rest = rest.split(" ", 1)
            key, _, status = rest.partition("): ")
            ended.append((student, int(key.rsplit("-", 1)[1]), status.strip()))
        return ended

    def sizes(self) -> dict[str, int]:
        return {p.stem: len(p.read_text(errors="replace")) for p in self.root.glob("w*.log")}


@contextlib.contextmanager
def _cluster(root: Path, cache: Path) -> Iterator[Cluster]:
    root.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "API_GRADER_CACHE": str(cache)}
    cluster = Cluster(root, env)
    try:
        cluster.scheduler()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The graders' cache of this module: their leases tell its runs from any other grade's."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, cache: Path, docker_client: DockerClient
) -> Iterator[Cluster]:
    with _cluster(tmp_path_factory.mktemp("cluster") / "procs", cache) as running:
        running.worker("w1")
        running.worker("w2")
        yield running


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A roster of ten submissions: folders, a zip, a tar.gz and a git URL; passing, failing, not
    building, not starting, rejected."""
    root = tmp_path_factory.mktemp("class")
    make_submission(root / "alice")
    make_submission(root / "bob", mode="wrong")
    make_submission(root / "carol", dockerfile_extra="RUN exit 3\n")
    make_submission(root / "dave", mode="no-health")
    archives = {"eve": ".zip", "frank": ".zip", "hank": ".tar.gz"}
    with zipfile.ZipFile(root / "eve.zip", "w") as zf:
        zf.writestr("Dockerfile", "FROM python:3.11-slim\n")
        zf.writestr("../escape.txt", "x")
    frank = make_submission(root.parent / "frank-src")
    with zipfile.ZipFile(root / "frank.zip", "w") as zf:
        for path in frank.iterdir():
            zf.write(path, path.name)
    make_submission(root / "gina", mode="needs-root")
    hank = make_submission(root.parent / "hank-src", mode="wrong")
    with tarfile.open(root / "hank.tar.gz", "w:gz") as tf:
        tf.add(hank, "hank")
    make_submission(root / "ivan")
    judy = make_submission(root.parent / "judy-src", mode="wrong")  # a git repository by URL
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "hw"]):
        subprocess.run(["git", *args], cwd=judy, check=True, env=GIT_ENV)
    roster = root.parent / "roster.csv"
    lines = [f"{s},{root.name}/{s}" for s in STUDENTS if (root / s).is_dir()]
    lines += [f"{s},{root.name}/{s}{ext}" for s, ext in archives.items()]
    lines += [f"judy,file://{judy},main"]
    lines[0] += f",,{LATE_BY_A_DAY}"  # alice: her time travels with her grade to the worker
    roster.write_text("student,path_or_url,ref,submitted_at\n" + "\n".join(lines) + "\n")
    return roster


LATE_BY_A_DAY = "2026-12-02T08:00:00+03:00"


@pytest.fixture(scope="module")
def late_mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini assignment with a late policy: 10 of its 100 points a day after 2026-12-01."""
    spec = write_mini(tmp_path_factory.mktemp("late-specs") / "mini")
    with (spec / "assignment.yaml").open("a") as fh:
        fh.write("late: {deadline: '2026-12-01T23:59:00+03:00', penalty_per_day: 10}\n")
    return spec


def _batch(
    source: Path, spec: Path, out: Path, scheduler: str | None, env: dict[str, str]
) -> list[str]:
    argv = [sys.executable, "-m", "grader.cli", "batch", str(source), "--assignment", str(spec)]
    argv += ["--out", str(out)]
    return argv + (
        ["--executor", "dask", "--scheduler", scheduler] if scheduler else ["--jobs", "2"]
    )


def _run(
    argv: list[str], env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=ROOT
    )


def _journal(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines() if line]


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "grades.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len({r["student"] for r in rows}), "one row per student"
    return {r["student"]: r for r in rows}


def _grade(folder: Path) -> tuple[Any, ...]:
    """What a grade is: status, score and every item's points (not paths nor timings)."""
    result = json.loads((folder / "full.json").read_text())
    items = tuple((i["id"], i["points"], i["passed"], i["not_checked"]) for i in result["items"])
    return result["status"], result["score"], items


def _no_leftovers(client: DockerClient, cache: Path) -> None:
    """None of this module's runs is left on the engine (what a dying grader was still creating
    lands a little later, and its keeper removes it then)."""
    _wait("the runs' removal", lambda: not leftovers(client, lease_dir=cache / "runs"), 90)


def test_dask_grades_equal_the_local_executors(
    cluster: Cluster,
    klass: Path,
    late_mini: Path,
    tmp_path: Path,
    cache: Path,
    docker_client: DockerClient,
) -> None:
    local, remote = tmp_path / "local", tmp_path / "dask"
    done = _run(_batch(klass, late_mini, local, None, cluster.env), cluster.env)
    assert done.returncode == 0, done.stderr[-2000:]
    before = cluster.sizes()
    done = _run(_batch(klass, late_mini, remote, cluster.address, cluster.env), cluster.env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Dask dashboard: http://127.0.0.1:" in done.stderr
    journal = _journal(remote)
    assert sorted(e["student"] for e in journal) == STUDENTS
    assert {e["worker"] for e in journal} == {"w1", "w2"}, "both workers graded"
    # each student once per attempt; a second attempt only after a first one that was not graded
    # (a fault of the grader's: the batch retries it, as the local executor does)
    ended = cluster.graded(before)
    assert sorted(s for s, attempt, _ in ended if attempt == 1) == STUDENTS, done.stderr[-1500:]
    again = [(s, attempt) for s, attempt, _ in ended if attempt > 1]
    assert len(again) == len(set(again)), "an attempt graded twice"
    assert all((s, a - 1, "not_graded") in ended for s, a in again), (ended, done.stderr[-1500:])
    for student in STUDENTS:
        assert _grade(remote / student) == _grade(local / student), student
        assert (remote / student / "report.html").is_file()
        assert (remote / student / "results.json").is_file()
    rows = _rows(remote)
    assert rows["alice"]["score"] == "90", "a day late: 10 points off, on the worker too"
    assert rows["bob"]["score"] == "75"
    assert rows["carol"]["status"] == "build_failed" and rows["eve"]["status"] == "rejected"
    assert rows["frank"]["score"] == "100" and rows["hank"]["score"] == "75"
    assert rows["judy"]["score"] == "75"
    assert _rows(local) == rows
    index = (remote / "index.html").read_text()
    assert "<td>w1</td>" in index and "<td>w2</td>" in index, "which worker graded each"
    assert "build " in index and "total " in index, "the phase timings"
    _no_leftovers(docker_client, cache)


def test_a_worker_killed_mid_grade_loses_nothing(
    cluster: Cluster,
    klass: Path,
    mini: Path,
    tmp_path: Path,
    cache: Path,
    docker_client: DockerClient,
) -> None:
    out = tmp_path / "out"
    cluster.worker("w3")  # the one to kill
    batch = subprocess.Popen(
        _batch(klass, mini, out, cluster.address, cluster.env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cluster.env,
        cwd=ROOT,
    )
    try:
        _wait("a grade on w3", lambda: "INFO - grading " in cluster.log("w3"))
        time.sleep(0.5)  # its grade child is building or starting the app now
        cluster.kill("w3")
        finished = cluster.log("w3").count("INFO - graded ")
        killed = [s for w, s in cluster.grading() if w == "w3"][finished:]
        assert killed, "w3 was killed while it graded"
        assert batch.wait(timeout=600) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            batch.kill()
    journal = _journal(out)
    assert sorted(e["student"] for e in journal) == STUDENTS, "exactly one line per student"
    assert sorted(_rows(out)) == STUDENTS
    entry = next(e for e in journal if e["student"] == killed[0])
    assert entry["worker"] in {"w1", "w2"} and entry["status"] != "not_graded", entry
    _no_leftovers(docker_client, cache)


def test_a_killed_client_resumes_and_submits_only_the_missing_grades(
    cluster: Cluster,
    klass: Path,
    mini: Path,
    tmp_path: Path,
    cache: Path,
    docker_client: DockerClient,
) -> None:
    out = tmp_path / "out"
    batch = subprocess.Popen(
        _batch(klass, mini, out, cluster.address, cluster.env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cluster.env,
        cwd=ROOT,
    )
    journal = out / "journal.jsonl"
    _wait("two grades", lambda: journal.exists() and len(_journal(out)) >= 2, 300)
    batch.send_signal(signal.SIGKILL)
    batch.wait()
    kept = {e["student"]: e for e in _journal(out)}
    assert 2 <= len(kept) < len(STUDENTS)

    def settled() -> bool:  # the grades of the dead client are called off and have ended
        logs = [cluster.log(name) for name in cluster.procs if name != "scheduler"]
        return sum(t.count("INFO - grading ") for t in logs) == sum(
            t.count("INFO - graded ") for t in logs
        )

    _wait("the dead client's grades to be called off", settled, 60)
    before = cluster.sizes()
    done = _run(_batch(klass, mini, out, cluster.address, cluster.env), cluster.env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(s for _, s in cluster.grading(before)) == sorted(set(STUDENTS) - set(kept))
    journal_entries = _journal(out)
    assert sorted(e["student"] for e in journal_entries) == STUDENTS, "nothing graded twice"
    for student, entry in kept.items():
        assert next(e for e in journal_entries if e["student"] == student) == entry
    assert sorted(_rows(out)) == STUDENTS
    _no_leftovers(docker_client, cache)


def test_a_worker_with_another_copy_of_the_assignment_refuses(
    mini: Path, tmp_path: Path, cache: Path, docker_client: DockerClient
) -> None:
    specs = tmp_path / "specs"
    shutil.copytree(mini, specs / "mini")
    tests = specs / "mini" / "tests"
    first = sorted(tests.glob("*.py"))[0]
    first.write_text(first.read_text() + "\n# changed on this worker only\n")
    make_submission(tmp_path / "class" / "alice")
    out = tmp_path / "out"
    with _cluster(tmp_path / "procs", cache) as odd:
        odd.worker("w-odd", "--specs", str(specs))
        done = _run(_batch(tmp_path / "class", mini, out, odd.address, odd.env), odd.env, 300)
    assert done.returncode == 2, done.stderr[-2000:]
    (entry,) = _journal(out)
    assert entry["status"] == "not_graded" and entry["score"] is None
    assert "w-odd refused" in entry["reason"] and "differs" in entry["reason"], entry["reason"]
    assert _rows(out)["alice"]["score"] == ""


def test_a_grade_that_keeps_killing_its_worker_ends_not_graded(
    mini: Path, tmp_path: Path, cache: Path, docker_client: DockerClient
) -> None:
    make_submission(tmp_path / "class" / "dave", mode="no-health")  # waits out its start deadline
    out = tmp_path / "out"
    with _cluster(tmp_path / "procs", cache) as lost:
        batch = subprocess.Popen(
            _batch(tmp_path / "class", mini, out, lost.address, lost.env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=lost.env,
            cwd=ROOT,
        )
        try:
            for i in range(3):  # `grader scheduler` allows a grade two dead workers
                lost.worker(f"w-lost{i}")
                _wait(
                    f"the grade on w-lost{i}",
                    lambda i=i: "INFO - grading " in lost.log(f"w-lost{i}"),
                )
                lost.kill(f"w-lost{i}")
            assert batch.wait(timeout=120) == 2
        finally:
            with contextlib.suppress(ProcessLookupError):
                batch.kill()
    (entry,) = _journal(out)
    assert entry["status"] == "not_graded" and entry["score"] is None
    assert "ended the worker that ran it, 3 times" in entry["reason"], entry["reason"]
    assert _rows(out)["dave"]["score"] == ""
    _no_leftovers(docker_client, cache)


def test_a_workers_grades_take_its_warm_spares(
    tmp_path: Path, cache: Path, docker_client: DockerClient
) -> None:
    """A worker holds a warm spare (network + Postgres) per slot, as a local batch does for its
    next grades: each grade after its first takes one, one grade per spare, and the spare it
    still holds when it stops is removed."""
    spec = write_mini(tmp_path / "specs" / "mini-db", migrate='["python", "m.py"]')
    source, out = tmp_path / "class", tmp_path / "out"
    for student in ("ann", "ben", "cid"):
        _submission(source / student)
    with _events(docker_client) as events, _cluster(tmp_path / "procs", cache) as cluster:
        cluster.worker("w-warm")
        worker = cluster.procs["w-warm"].pid
        done = _run(_batch(source, spec, out, cluster.address, cluster.env), cluster.env)
        assert done.returncode == 0, done.stderr[-2000:]
        # its grades are forked from its zygote, started with it (Dask's preload hook)
        assert any("-m grader.zygote" in cmd for cmd in _children(worker)), _children(worker)
    journal = _journal(out)
    assert sorted(e["student"] for e in journal) == ["ann", "ben", "cid"]
    assert all(e["status"] == "graded" and e["score"] == 100 for e in journal), journal
    graded = {str(e["run_id"]) for e in journal}
    created = [e["Actor"]["Attributes"] for e in _postgres(events, "create")]
    spares = {a[LABEL] for a in created if f"/{worker}/" in a[PROCESS]}
    per_run = [a[LABEL] for a in created if a[LABEL] in graded]
    assert sorted(per_run) == sorted(graded), "one Postgres per grade"
    assert len(spares & graded) == 2, "the grades after the first took the worker's spares"
    assert spares - graded, "a spare waited for a next task when the batch ended"
    _no_leftovers(docker_client, cache)


def _children(pid: int) -> list[str]:
    """The command lines of a process's children."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                raw = Path(f"/proc/{child}/cmdline").read_bytes()
                found.append(raw.replace(b"\0", b" ").decode())
    return found
