"""`grader batch` on a Dask cluster: the batch is the client, each grade one task on a worker.

A worker is a machine with a Docker engine, the base images and the same grader and assignments,
running `grader worker` (a `dask worker` with one `docker` resource per slot: it never runs more
grades than its slots). A task is one whole grade: the submission travels as bytes (an archive as
it is; a folder as a tar, unpacked there into a folder; a git URL as itself) with its SHA-256,
which the worker checks; the worker runs the same `grader grade` child as the local executor
(batch._grade_one: its time limit, its run's cleanup) into a temporary folder and sends back the
result files' text. The
client writes them into `DIR/<student>/` and appends the journal line: it is the journal's only
writer, and a batch started again submits only what the journal lacks.

A task's key is its journal key and attempt, so one grade never runs twice at once (a second
client asking for it shares the first one's task). Every task carries the client's `versions`
(the assignment's fingerprint, its reference solution's hash, the grader's own): a worker whose
copy differs refuses the task (not graded, with the reason). A worker that dies mid-grade (SIGKILL, machine lost) has its task rescheduled by the
scheduler at once; its grade child gets its parent-death signal and removes its run, and the
worker's keeper (batch.Spares) removes what was still being created; `grader worker` reaps the
runs of dead owners when it starts. A grade that kills `allowed-failures` + 1 workers ends "not
graded" (KilledWorker). A client that dies releases its tasks: the workers call off their grades
(`_called_off`) within a second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from docker import DockerClient

from grader import assignment as assignments
from grader import config, engine, reference
from grader.assignment import Assignment
from grader.batch import ARCHIVES, FINAL, RESULT_FILES, Spares, Submission, _grade_one
from grader.core import GraderFault, terminal_safe, write_atomic
from grader.output import full
from grader.submission import SKIP_DIRS, Limits, is_git_url, tree_hash
from grader.zygote import Zygote

FOLDER = "submission"  # the name a folder travels as (a tar of it)
GIT = "git"  # the name a git URL travels as (its URL and ref)
SPECS_ENV = "API_GRADER_WORKER_SPECS"  # `grader worker --specs`: where it finds assignments by id
ALLOWED_FAILURES = 2  # workers a grade may kill before it is given up (KilledWorker)
REFILL = 2.0  # seconds between two looks at the cluster's free slots (workers come and go)
logger = logging.getLogger("distributed.worker.grade")  # the worker's own log, printed as is


@dataclass(frozen=True)
class Tls:
    """Mutual TLS to the scheduler (certificates in PEM)."""

    ca_file: Path
    cert: Path
    key: Path


def _not_graded(reason: str, *, retry: bool = True) -> dict[str, Any]:
    return {
        "status": "not_graded",
        "reason": reason,
        "score": None,
        "max_score": None,
        "seconds": 0.0,
        "run_id": None,
        "retry": retry,
    }


# -- the submission as bytes ---------------------------------------------------------------------


def pack(sub: Submission, limits: Limits | None = None) -> tuple[str, bytes]:
    """The name and bytes `sub` travels as: an archive as it is (`submission.<its extension>`), a
    folder as a tar (FOLDER) of what the grade reads (files, folders and links as links;
    SKIP_DIRS left out), a git URL as its URL and ref (GIT: the worker's grade clones it, as
    `grader grade` does). GraderFault when it cannot travel."""
    if is_git_url(sub.source):
        return GIT, json.dumps({"url": sub.source, "ref": sub.ref}).encode()
    path, limits = Path(sub.source), limits or Limits()
    if sub.ref is not None:
        raise GraderFault(
            "a local git repository with a ref cannot travel to a Dask worker: give its URL, "
            "or an archive or a folder of the ref checked out"
        )
    if not path.exists():
        raise GraderFault(f"submission not found: {sub.source}")
    if path.is_file():
        if path.stat().st_size > limits.max_bytes:
            raise GraderFault(f"{path.name} is larger than {limits.max_bytes // 2**20} MB")
        name = next((e for e in ARCHIVES if path.name.endswith(e)), ".zip")
        return f"submission{name}", path.read_bytes()
    buf, size = io.BytesIO(), 0
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for top, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in [*dirs, *sorted(files)]:
                full_path = Path(top, name)
                info = tar.gettarinfo(full_path, str(full_path.relative_to(path)))
                if info is None:  # a socket: nothing a grade could read
                    continue
                if info.islnk():  # a second name of a file already packed: its own copy, as
                    # the local grade reads it (a hard link entry would be dropped below)
                    info.type, info.linkname, info.size = (
                        tarfile.REGTYPE,
                        "",
                        full_path.stat().st_size,
                    )
                size += info.size
                if size > limits.max_bytes:
                    raise GraderFault(f"the folder holds more than {limits.max_bytes // 2**20} MB")
                if info.isreg():
                    with full_path.open("rb") as fh:
                        tar.addfile(info, fh)
                elif info.isdir() or info.issym():  # a link as its text
                    tar.addfile(info)
    return FOLDER, buf.getvalue()


def unpack(name: str, data: bytes, dest: Path) -> Path:
    """On the worker: the submission as the grade takes it, under `dest`. A folder is unpacked
    into one (Python's "data" filter: nothing outside it, no devices, no owners but the grader)
    and graded as a folder, as on the batch's machine — the same build context, so the same
    build cache. What that filter refuses (a link out of the folder) is left to the grade, as
    the tar, which it refuses with the reason as it would refuse the folder."""
    dest.mkdir(parents=True, exist_ok=True)
    if name == FOLDER:
        folder = dest / name
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(folder, filter="data")
            return folder
        except (tarfile.TarError, OSError):
            shutil.rmtree(folder, ignore_errors=True)
            name = f"{FOLDER}.tar"
    path = dest / name
    path.write_bytes(data)
    return path


# -- the worker's side ---------------------------------------------------------------------------

_worker_lock = threading.Lock()
_worker_engine: tuple[DockerClient, Spares] | None = None
_zygote: Zygote | None = None  # the worker's grades are forked from it (`dask_setup`)


def dask_setup(worker: Any) -> None:
    """Dask's preload hook (`grader worker` preloads this module): start the zygote the worker's
    grades are forked from, on the worker's main thread, which lives as long as the worker (a
    child's parent-death signal follows the thread that started it, and task threads may end)."""
    global _zygote
    _zygote = Zygote()
    _zygote.start()


def dask_teardown(worker: Any) -> None:
    if _zygote is not None:
        _zygote.close()


def _engine(slots: int) -> tuple[DockerClient, Spares]:
    """This worker's engine and its keeper of runs, made by the first task. Like a local batch's
    grades, the worker's take warm spares (network + Postgres started ahead, one grade each): it
    holds one per slot, whether more tasks come or not (it does not know its queue); those left
    when it stops, its keeper removes."""
    global _worker_engine
    with _worker_lock:
        if _worker_engine is None:
            config.configure()
            client = engine.connect(timeout=30)
            _worker_engine = (client, Spares(client, slots, warm=False, keep=True))
        return _worker_engine


def _assignment(task: dict[str, Any]) -> Assignment:
    specs = os.environ.get(SPECS_ENV)
    if specs:
        return assignments.load(task["spec_id"], specs_dir=Path(specs))
    return assignments.load(task["assignment"])


@functools.cache
def _grader_hash() -> str:
    """The grader's own code (the package's files, caches left out): a worker must grade with the
    same grader as the batch's machine would."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(
        p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(f"{path.relative_to(package)}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def versions(spec: Assignment) -> dict[str, str]:
    """What must be the same on the batch's machine and a worker: the assignment (its
    fingerprint), its reference solution and the grader."""
    reference_tree = tree_hash(spec.reference_dir)[:16] if spec.reference_dir else "none"
    return {
        "assignment": spec.fingerprint,
        "reference solution": reference_tree,
        "grader": _grader_hash(),
    }


def _called_off(worker: Any, key: str) -> bool:
    """Whether the scheduler no longer wants task `key` (its client is gone): the worker marks a
    running task it was told to forget "cancelled"."""
    state = worker.state.tasks.get(key)
    return state is None or state.state == "cancelled"


MAX_RESULT = 64 * 2**20  # characters of one result file: a report is a few MB at most
ENTRY: dict[str, type | tuple[type, ...]] = {
    "status": str,
    "reason": str,
    "score": (int, float, type(None)),
    "max_score": (int, float, type(None)),
    "late_penalty": (int, float, type(None)),
    "seconds": (int, float),
    "run_id": (str, type(None)),
    "timings": dict,
    "worker": str,
    "retry": bool,
}


def _checked(answer: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """A worker's answer as the client may write it: only the result files, by their own names
    (never a path), and an entry of known fields and types. A worker (or whatever answered in its
    name) is not trusted with paths in the batch's folder; ValueError otherwise."""
    files, entry = answer.get("files"), answer.get("entry")
    if not isinstance(files, dict) or not isinstance(entry, dict):
        raise ValueError("an answer without files and entry")
    if set(files) - set(RESULT_FILES) or not all(
        isinstance(v, str) and len(v) <= MAX_RESULT for v in files.values()
    ):
        raise ValueError(f"unexpected result files {sorted(map(str, files))[:5]}")
    for key, value in entry.items():
        if (
            key not in ENTRY
            or not isinstance(value, ENTRY[key])
            or isinstance(value, bool) != (ENTRY[key] is bool)
        ):
            raise ValueError(f"unexpected entry field {str(key)[:40]!r}")
    if entry.get("status") not in {*FINAL, "not_graded"}:
        raise ValueError("an unknown status")
    return files, entry


def grade_task(task: dict[str, Any]) -> dict[str, Any]:
    """One grade on this worker: {"entry": journal fields, "files": {name: text}}."""
    from distributed import get_worker

    worker = get_worker()
    key, where = task["key"], str(worker.name or worker.address)
    answer = _grade_here(task, worker, key, where)
    answer["entry"]["worker"] = where
    return answer


def _grade_here(task: dict[str, Any], worker: Any, key: str, where: str) -> dict[str, Any]:
    files: dict[str, str] = {}
    if hashlib.sha256(task["data"]).hexdigest() != task["sha256"]:
        return {
            "entry": _not_graded(f"the submission's bytes arrived damaged at {where}"),
            "files": files,
        }
    try:
        spec = _assignment(task)
        mine = versions(spec)
        differ = [what for what, version in task["versions"].items() if mine.get(what) != version]
        if differ:
            named = {"assignment": f"copy of assignment {spec.id}", "grader": "grader"}
            return {
                "entry": _not_graded(
                    f"worker {where} refused: its {' and '.join(named.get(w, w) for w in differ)} "
                    f"differs from the batch's ({', '.join(mine[w][:12] for w in differ)} there, "
                    f"{', '.join(task['versions'][w][:12] for w in differ)} here); install the "
                    "same grader and specs on every worker"
                ),
                "files": files,
            }
        client, spares = _engine(worker.state.nthreads)
        if reference.needed(spec):  # cached after the first grade; recorded alone
            reference.traces(spec, task["seed"])
    except GraderFault as exc:
        return {"entry": _not_graded(f"worker {where}: {exc}"), "files": files}
    logger.info("grading %s (%s)", terminal_safe(task["student"]), key)
    with tempfile.TemporaryDirectory(prefix="grader-task-") as tmp:
        times = {"deadline": task["deadline"], "submitted_at": task["submitted_at"]}
        if task["name"] == GIT:
            remote = json.loads(task["data"])
            sub = Submission(task["student"], remote["url"], remote["ref"], **times)
        else:
            where_in = unpack(task["name"], task["data"], Path(tmp, "in"))
            sub = Submission(task["student"], str(where_in), **times)
        out = Path(tmp, "out")
        spares.expect(warm=spec.services.postgres)
        entry = _grade_one(
            sub,
            out,
            str(spec.dir),
            task["seed"],
            task["timeout"],
            task["extra"],
            client,
            spares,
            stop=lambda: _called_off(worker, key),
            zygote=_zygote,
        )
        for name in RESULT_FILES:
            with contextlib.suppress(OSError):
                files[name] = (out / name).read_text(encoding="utf-8")
    logger.info("graded %s (%s): %s", terminal_safe(task["student"]), key, entry["status"])
    return {"entry": entry, "files": files}


# -- the client's side ---------------------------------------------------------------------------


class DaskExecutor:
    """batch.Executor on a Dask cluster (see the module's docstring)."""

    def __init__(
        self,
        *,
        scheduler: str,
        assignment: str,
        spec: Assignment,
        seed: int,
        timeout: float,
        extra: list[str],
        tls: Tls | None = None,
    ) -> None:
        from distributed import Client, Security

        security = (
            Security(
                tls_ca_file=str(tls.ca_file),
                tls_client_cert=str(tls.cert),
                tls_client_key=str(tls.key),
                require_encryption=True,
            )
            if tls
            else None
        )
        try:
            self.client = Client(scheduler, security=security, timeout=30)
        except (OSError, TimeoutError, TypeError, ValueError) as exc:  # TypeError: tls:// sans TLS
            raise GraderFault(
                f"no Dask scheduler answers at {scheduler} ({exc}); a tls:// scheduler needs "
                "--tls-ca-file, --tls-cert and --tls-key"
            ) from exc
        self.dashboard: str | None = self.client.dashboard_link
        self.common = {
            "assignment": assignment,
            "spec_id": spec.id,
            "versions": versions(spec),
            "seed": seed,
            "timeout": timeout,
            "extra": extra,
        }
        self.attempts: dict[str, int] = {}
        self.waiting: deque[tuple[Submission, str, Path, Future[dict[str, Any]]]] = deque()
        self.sent = 0  # tasks on the scheduler now
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.slots = self._slots()  # looked at again every REFILL seconds
        threading.Thread(target=self._refill, name="grade-refill", daemon=True).start()

    def submit(self, sub: Submission, key: str, out: Path) -> Future[dict[str, Any]]:
        result: Future[dict[str, Any]] = Future()
        with self.lock:
            self.waiting.append((sub, key, out, result))
        self._send()
        return result

    def _send(self) -> None:
        """Send waiting grades while the cluster has more grade slots than tasks. Dask assigns a
        task with resource restrictions to a worker as soon as it gets it (it queues only
        unrestricted tasks): a deeper queue would tie grades to a busy worker while another one
        idles, and hold every waiting submission's bytes on the scheduler."""
        while True:
            with self.lock:
                if not self.waiting or self.sent >= max(1, self.slots):
                    return
                sub, key, out, result = self.waiting.popleft()
                self.sent += 1
                attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
            try:
                name, data = pack(sub)
            except (GraderFault, OSError) as exc:
                with self.lock:
                    self.sent -= 1
                result.set_result(_not_graded(f"not sent to a worker: {exc}", retry=False))
                continue
            task = {
                **self.common,
                "key": f"grade-{key}-{attempt}",
                "student": sub.student,
                # the roster's times: the worker's grade passes them on as the local one does
                "deadline": sub.deadline,
                "submitted_at": sub.submitted_at,
                "name": name,
                "data": data,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            remote = self.client.submit(
                grade_task,
                task,
                key=task["key"],
                resources={"docker": 1},
                pure=False,
            )
            remote.add_done_callback(
                lambda fut, out=out, result=result: self._land(fut, out, result)
            )

    def _slots(self) -> int:
        """The grade slots (`docker` resources) of the workers connected now."""
        try:
            workers = self.client.scheduler_info()["workers"].values()
        except Exception:  # the scheduler is not answering now: the next look will tell
            return 0
        return sum(int(w.get("resources", {}).get("docker", 0)) for w in workers)

    def _refill(self) -> None:
        """Workers that join get grades without waiting for one to end."""
        while not self.closed.wait(REFILL):
            self.slots = self._slots()
            self._send()

    def _land(self, remote: Any, out: Path, result: Future[dict[str, Any]]) -> None:
        """A task ended: its files into `out` (full.json last: what the journal checks), then its
        entry to the batch. Runs in Dask's callback thread, one task at a time."""
        from distributed import KilledWorker

        try:
            files, entry = _checked(remote.result())
            for name in RESULT_FILES:  # an earlier grade's files must never stand in for this one's
                (out / name).unlink(missing_ok=True)
            for name in sorted(files, key=lambda n: n == full.NAME):
                write_atomic(out / name, files[name])
        except KilledWorker as exc:
            entry = _not_graded(
                f"the grade ended the worker that ran it, {exc.allowed_failures + 1} times "
                f"(last {getattr(exc.last_worker, 'address', exc.last_worker)}): too much memory, "
                "or a crash of the grader",
                retry=False,
            )
        except Exception as exc:  # the task failed or was lost: never a score
            entry = _not_graded(f"the Dask task failed: {type(exc).__name__}: {exc}")
        finally:
            remote.release()
            with self.lock:
                self.sent -= 1
        result.set_result(entry)
        self._send()

    def close(self) -> None:
        self.closed.set()
        with self.lock:
            waiting, self.waiting = list(self.waiting), deque()
        for *_, result in waiting:
            result.cancel()
        self.client.close()


# -- commands ------------------------------------------------------------------------------------


def _tls_args(tls: Tls | None) -> list[str]:
    if tls is None:
        return []
    return [
        "--tls-ca-file",
        str(tls.ca_file),
        "--tls-cert",
        str(tls.cert),
        "--tls-key",
        str(tls.key),
    ]


def start_worker(
    *,
    scheduler: str,
    slots: int,
    name: str | None = None,
    specs: Path | None = None,
    tls: Tls | None = None,
    show: Any = print,
) -> NoReturn:
    """Become a `dask worker` of `scheduler` with `slots` grades at once, after reaping the runs of
    this engine's dead graders (a worker killed earlier: never a live run)."""
    client = engine.connect(timeout=30)
    engine.reap_quietly(client)
    client.close()
    env = dict(os.environ)
    if specs is not None:
        env[SPECS_ENV] = str(specs.resolve())
    # Dask's statistical profiler samples the task threads every 10 ms: a grade's thread only
    # waits for its child, and the samples cost ~0.5 CPU-s a grade, taken from the grades beside it
    env.setdefault("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED", "False")
    argv = [
        sys.executable,
        "-m",
        "distributed.cli.dask_worker",
        scheduler,
        "--nthreads",
        str(slots),
        "--resources",
        f"docker={slots}",
        # one process: a grade's child dies with it (parent-death signal), nothing restarts it
        "--no-nanny",
        # a grade's memory is its containers' and its child's: never pause the worker for it
        "--memory-limit",
        "0",
        "--preload",
        "grader.cluster",
        *(["--name", name] if name else []),
        *_tls_args(tls),
    ]
    show(f"worker of {scheduler}: {slots} grade(s) at once")
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)


def start_scheduler(
    *,
    host: str,
    port: int,
    dashboard: str,
    tls: Tls | None = None,
    show: Any = print,
) -> NoReturn:
    """Become a `dask scheduler`; a grade may kill ALLOWED_FAILURES workers before it is given up."""
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(ALLOWED_FAILURES),
    }
    protocol = "tls" if tls else "tcp"
    argv = [
        sys.executable,
        "-m",
        "distributed.cli.dask_scheduler",
        "--host",
        host,
        "--port",
        str(port),
        "--dashboard-address",
        dashboard,
        *(["--protocol", "tls", *_tls_args(tls)] if tls else []),
    ]
    shown = socket.gethostname() if host in {"", "0.0.0.0"} else host
    address = f"{protocol}://{shown}:{port}"
    show(f"scheduler: {address} · dashboard: http://{shown}:{dashboard.rpartition(':')[2]}/status")
    show(f"start workers with: grader worker --scheduler {address} --slots N")
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)
