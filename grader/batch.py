"""Grade a whole class: parallel, resumable, nothing lost.

Each submission is graded by its own `grader grade` process (a crash or a hostile submission cannot
take the batch down; pytest and Schemathesis are not thread-safe anyway). Every finished grade is
recorded in `journal.jsonl`, keyed by student, content hash, assignment version and seed, with an
fsync; a batch started again skips what the journal holds and redoes the rest. `grades.csv` and
`index.html` are rebuilt from the journal (the last line per student wins: no duplicate rows).
Grades made with an earlier version of the assignment are stale: a batch grades nothing beside
them unless told to regrade them (grader.regrade, which also says what the regrade changed).
A grader fault is retried and, if it persists, recorded as "not graded" — never as a 0.
At its start a batch reaps the runs of graders that died (never those of a grade running beside
it, see grader.engine), and it removes each child's run when the child ends — a child killed at
its time limit cannot clean up after itself. Each student has a folder of their own
(`folder_names`): two names that make the same safe folder name get a hash of the exact name.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from docker import DockerClient

from grader import assignment as assignments
from grader import config, engine, late, reference, services
from grader import regrade as regrades
from grader.core import GraderFault, Status, csv_text, one_line, write_atomic
from grader.output import changes, full, gradescope, html, index
from grader.submission import tree_hash
from grader.zygote import Child, Zygote, die_with_parent

if TYPE_CHECKING:
    from grader.cluster import Tls

ARCHIVES = (".zip", ".tar.gz", ".tgz", ".tar")
RESULT_FILES = (gradescope.NAME, full.NAME, html.NAME)  # what one `grader grade` writes
FINAL = {"graded", "rejected", "build_failed", "start_failed"}


@dataclass(frozen=True)
class Submission:
    student: str
    source: str  # path or git URL
    ref: str | None = None
    # the roster's `deadline` (an extension) and `submitted_at`: ISO 8601 with an offset
    deadline: str | None = None
    submitted_at: str | None = None

    def content_hash(self) -> str:
        path = Path(self.source)
        if path.is_dir() and self.ref is None:
            return tree_hash(path)[:16]
        if path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        done = subprocess.run(
            ["git", "ls-remote", self.source, self.ref or "HEAD"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        head = (
            done.stdout.split()[0]
            if done.returncode == 0 and done.stdout.strip()
            else self.ref or "?"
        )
        return f"git-{head[:16]}"


def discover(source: Path) -> list[Submission]:
    """A folder of submissions (folders or archives), or a CSV roster `student,path_or_url[,ref]`;
    a roster with a header row (`student,path,…`) may add the columns `ref`, `deadline` (the
    student's own: an extension) and `submitted_at` (ISO 8601 times with an offset)."""
    if source.is_file() and source.suffix == ".csv":
        subs = []
        columns: dict[str, int] = {"ref": 2}  # without a header: student, source, ref
        with source.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            for row in reader:
                if not row or not row[0].strip() or row[0].startswith("#"):
                    continue
                if row[0].strip().lower() == "student":
                    columns = _roster_columns(row)
                    continue
                cells = {n: (row[i].strip() if i < len(row) else "") for n, i in columns.items()}
                for name in ("deadline", "submitted_at"):
                    if cells.get(name):
                        try:
                            late.parse_time(cells[name])
                        except ValueError as exc:
                            raise GraderFault(
                                f"{source}, line {reader.line_num}, {name}: {exc}"
                            ) from None
                where = row[1].strip()
                if not where.startswith(("http://", "https://", "git@", "ssh://", "file://")):
                    where = str((source.parent / where).resolve())
                subs.append(
                    Submission(
                        row[0].strip(),
                        where,
                        cells["ref"] or None,
                        cells.get("deadline") or None,
                        cells.get("submitted_at") or None,
                    )
                )
        return subs
    if not source.is_dir():
        raise GraderFault(f"{source}: not a folder of submissions or a .csv roster")
    subs = []
    for entry in sorted(source.iterdir()):
        if entry.name.startswith("."):
            continue
        name = entry.name
        for ext in ARCHIVES:
            if name.endswith(ext):
                name = name[: -len(ext)]
                break
        else:
            if not entry.is_dir():
                continue
        subs.append(Submission(name, str(entry.absolute())))  # the journal is read from anywhere
    return subs


def _roster_columns(header: list[str]) -> dict[str, int]:
    """Where a roster's header puts `ref`, `deadline` and `submitted_at` (the first two columns
    are the student and the source, whatever their names); an unnamed third column is the ref."""
    names = [h.strip().lower() for h in header]
    columns = {n: i for i, n in enumerate(names) if n in {"ref", "deadline", "submitted_at"}}
    if "ref" not in columns and len(names) > 2 and names[2] not in columns:
        columns["ref"] = 2
    columns.setdefault("ref", len(names))  # no ref column: never a ref
    return columns


# the batch's files beside the folders (and `grader similarity`'s)
OWN_FILES = {
    "index.html",
    "grades.csv",
    "journal.jsonl",
    changes.NAME,
    "similarity.html",
    "similarity.csv",
}


def _safe_name(student: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in student)
    return safe.strip(".")[:100] or "student"


def folder_names(students: list[str]) -> dict[str, str]:
    """Each student's folder, never another's: the name made safe for a path, plus a short hash of
    the exact name when that changed it (`O'Brien` and `O Brien` are both `O_Brien`), when two
    folders differ only in case (one folder on a case-insensitive disk), or when it would be one
    of the batch's own files."""
    safe = {s: _safe_name(s) for s in students}
    count = Counter(f.casefold() for f in safe.values())
    folders = {
        s: f
        if f == s and count[f.casefold()] == 1 and f.casefold() not in OWN_FILES
        else f"{f}-{hashlib.sha256(s.encode()).hexdigest()[:8]}"
        for s, f in safe.items()
    }
    if len({f.casefold() for f in folders.values()}) != len(folders):
        raise GraderFault("two students' names give the same report folder: rename one")
    return folders


class Journal:
    """Append-only JSON lines, fsynced; a torn last line (killed mid-write) is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.history: list[dict[str, Any]] = []  # every line, in order: earlier grades too
        self._last: dict[str, dict[str, Any]] = {}  # by student
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                self._note(entry)

    def _note(self, entry: dict[str, Any]) -> None:
        self.history.append(entry)
        self._last[entry["student"]] = entry

    def done(self, key: str, student: str, out: Path) -> bool:
        """The student's latest grade is this key's, final, and its result is there: a student
        back to an earlier submission (A, B, then A again) is graded again, since the folder
        holds B's result."""
        entry = self._last.get(student)
        return bool(
            entry
            and entry["key"] == key
            and entry["status"] in FINAL
            and (out / full.NAME).is_file()
        )

    def add(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._note(entry)

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last line per student."""
        return dict(self._last)


def _grade_one(
    sub: Submission,
    out: Path,
    assignment: str,
    seed: int,
    timeout: float,
    extra: list[str],
    client: DockerClient | None,
    spares: Spares | None = None,
    stop: Callable[[], bool] | None = None,
    zygote: Zygote | None = None,
) -> dict[str, Any]:
    """Grade `sub` into `out` with a `grader grade` child (forked by `zygote` if given). `stop`,
    asked every second: whether the grade is no longer wanted (a Dask task whose batch is gone):
    the child is interrupted (it removes its run) and the result is "not graded"."""
    # a spare's run id (the child takes over the network and Postgres started for it), else a new
    # one: either way the keeper knows it
    run_id = spares.take() if spares else uuid.uuid4().hex[:12]
    args = [
        "grade",
        sub.source,
        "--assignment",
        assignment,
        "--out",
        str(out),
        "--seed",
        str(seed),
        "--run-id",
        run_id,
        *extra,
    ]
    if sub.ref:
        args += ["--ref", sub.ref]
    if sub.submitted_at or sub.deadline:
        args += ["--times-from", "roster"]
        args += ["--submitted-at", sub.submitted_at] if sub.submitted_at else []
        args += ["--due", sub.deadline] if sub.deadline else []
    for name in RESULT_FILES:  # an earlier grade's files must never stand in for this one's
        (out / name).unlink(missing_ok=True)
    begin = time.monotonic()
    try:
        code, err = _wait_child(args, timeout, stop, zygote)
    finally:
        if client is not None:  # the child is gone: whatever its run left (killed: everything) goes
            engine.cleanup(client, run_id)  # never raises: what it cannot remove, a reaper will
        if spares is not None:
            spares.finished(run_id)
    seconds = round(time.monotonic() - begin, 1)
    try:
        result = full.read(out / full.NAME)
        status, reason = str(result.status), result.reason
        score = None if result.status is Status.NOT_GRADED else result.score  # never a score
        max_score = sum(i.max_points for i in result.items) or None
        penalty = result.late.penalty if result.late and score is not None else None
    except (OSError, ValueError, KeyError, TypeError):
        status, reason, score, max_score, penalty = (
            "not_graded",
            (err.strip().splitlines() or ["no result"])[-1],
            None,
            None,
            None,
        )
    if code != 0 and status in FINAL:  # a fault (2), a crash or a signal: never a score
        status = "not_graded"
        if code != 2:
            reason = (
                f"the grader exited with {code}: " + (err.strip().splitlines() or ["no output"])[-1]
            )
    return {
        "status": status,
        "reason": reason,
        "score": score,
        "max_score": max_score,
        # its own column in grades.csv and the index: `score` has it taken off already
        "late_penalty": None if status == "not_graded" else penalty,
        "seconds": seconds,
        "run_id": run_id,
    }


STOP_GRACE = 30.0  # seconds an interrupted child may take to remove its run


def _wait_child(
    args: list[str], timeout: float, stop: Callable[[], bool] | None, zygote: Zygote | None
) -> tuple[int, str]:
    """Run `grader <args>` (a `python -m grader.cli` child, or a fork of `zygote`) to its end,
    its time limit (killed) or `stop` (interrupted): its exit code and the end of its stderr."""
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as out:
        if zygote is not None:
            child: Child | subprocess.Popen[bytes] = zygote.spawn(
                args, stdout=out.fileno(), stderr=err.fileno()
            )
        else:
            child = subprocess.Popen(
                [sys.executable, "-m", "grader.cli", *args],
                stdout=out,
                stderr=err,
                preexec_fn=die_with_parent,
            )
        code, why = _wait(child, timeout, stop)
        err.seek(max(0, err.seek(0, os.SEEK_END) - ERR_TAIL))
        text = err.read().decode("utf-8", "replace")
    return code, why or text


ERR_TAIL = 65536  # bytes of a child's stderr kept: its last line is the reason of a crash


def _wait(
    child: Child | subprocess.Popen[bytes], timeout: float, stop: Callable[[], bool] | None
) -> tuple[int, str]:
    """Wait for `child` (what `Popen` and `zygote.Child` share): its exit code, and why it was
    ended if it was."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return child.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic()))), ""
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() >= deadline:
            child.kill()
            child.wait()
            return 2, f"the grader took longer than {timeout:.0f} s"
        if stop is not None and stop():
            child.terminate()  # SIGTERM: the grade removes its own run on the way out
            try:
                child.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            return 2, "the grade was called off: the batch that asked for it is gone"


class Spares:
    """The batch's runs and, when `warm`, warm services for its next grades: while a child grades,
    the network and Postgres server of the next child of its slot start (services.start_spare),
    labelled with the run id that child will get, so its grade does not wait for Postgres. Each
    spare goes to one child, whose run's cleanup removes it; `close` removes the ones never handed
    out.

    If the batch dies, its children die with it (parent-death signal) and remove their own runs,
    but what the engine was still creating for a run (a build, a container, a spare's network)
    appears after that. The keeper, a process that outlives the batch and is told of every run
    (spares' and children's), removes all of them until the engine shows none for a while."""

    def __init__(
        self, client: DockerClient, slots: int, *, warm: bool = True, keep: bool = False
    ) -> None:
        # `keep`: a spare ready for every slot at all times (a Dask worker does not know its
        # queue; the spares it holds when the cluster goes idle are removed when it stops)
        self.client, self.slots, self.warm, self.keep = client, slots, warm, keep
        self.waiting = 0  # grades submitted and not started yet: each may take a spare
        self.active = 0  # grades started and not finished
        self.ready: list[tuple[str, Future[Any]]] = []
        self.lock = threading.Lock()
        self.telling = threading.Lock()  # one line at a time to the keeper
        self.pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="spare")
        self.keeper = subprocess.Popen(
            [sys.executable, "-c", "from grader.batch import _keep; _keep()"],
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a Ctrl-C to the batch's terminal is not for it
        )

    def expect(self, *, warm: bool | None = None) -> None:
        """One more grade will start. `warm`, when given: whether this grade and the next ones
        want spares (a worker's grades, whose assignment comes with each task)."""
        with self.lock:
            self.waiting += 1
            self.warm = self.warm if warm is None else warm
            self._refill()

    def take(self) -> str:
        """The run id of a grade that starts now: a ready spare's, else a new one (the grade starts
        its own services, beside its build). Starts the spares of the grades that will wait for a
        slot."""
        with self.lock:
            self.waiting -= 1
            self.active += 1
            spare = next((s for s in self.ready if s[1].done()), None)
            if spare is not None:
                self.ready.remove(spare)
            self._refill()
        if spare is not None and spare[1].exception() is None:
            return spare[0]
        if spare is not None:  # no reason not to grade: it starts its own
            engine.cleanup(self.client, spare[0])
            self.forget(spare[0])
        run_id = uuid.uuid4().hex[:12]
        self._tell(f"+{run_id}")  # before the child creates anything
        return run_id

    def finished(self, run_id: str) -> None:
        """A grade ended and its run `run_id` is removed."""
        with self.lock:
            self.active -= 1
        self.forget(run_id)

    def _refill(self) -> None:
        """A spare (at most one per slot) for each grade that will wait for a slot: those a free
        slot takes at once would not find theirs ready. Kept (`keep`): one per slot, always."""
        wanted = self.slots if self.keep else self.waiting - (self.slots - self.active)
        while self.warm and len(self.ready) < min(self.slots, wanted):
            run_id = uuid.uuid4().hex[:12]
            self._tell(f"+{run_id}")  # before the first object exists
            started = self.pool.submit(services.start_spare, self.client, run_id)
            self.ready.append((run_id, started))

    def forget(self, run_id: str) -> None:
        """Run `run_id` (a spare's or a grade's) is removed: nothing for the keeper to do."""
        self._tell(f"-{run_id}")

    def _tell(self, line: str) -> None:
        assert self.keeper.stdin is not None
        # a keeper gone (killed): the runs' owner labels still let any later reaper remove them
        with self.telling, contextlib.suppress(OSError, ValueError):
            self.keeper.stdin.write(line + "\n")
            self.keeper.stdin.flush()

    def close(self) -> None:
        """Remove the spares never handed out (a batch's end or interruption)."""
        with self.lock:
            unused, self.ready = self.ready, []
            self.waiting = 0
        self.pool.shutdown(wait=True, cancel_futures=True)
        for run_id, _ in unused:
            engine.cleanup(self.client, run_id)
            self.forget(run_id)
        with contextlib.suppress(OSError):
            assert self.keeper.stdin is not None
            self.keeper.stdin.close()
        self.keeper.wait()


KEEP_QUIET = 10.0  # seconds the engine shows nothing of the runs: what was in flight has landed
KEEP_LIMIT = 300.0  # seconds at most: a build still running then is left to a later reaping


def _keep() -> None:  # pragma: no cover - runs in the keeper process
    """The keeper of a batch's runs: remembers the runs the batch tells it of ("+id", "-id" once
    removed) and, when the batch ends (its pipe closes, also when it is killed), removes those
    still there, again and again until the engine has shown none of them for KEEP_QUIET: a
    request the batch or a dying child sent just before (a container, a network, a build's image)
    may complete after a first removal. Signals are for the batch: the keeper ends on its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    runs: set[str] = set()
    for line in sys.stdin:
        change, run_id = line[:1], line[1:].strip()
        if change == "+":
            runs.add(run_id)
        else:
            runs.discard(run_id)
    if not runs:
        return
    with contextlib.suppress(GraderFault):  # no engine: the owner labels let a later reaping act
        client = engine.connect(timeout=30)
        begin = quiet = time.monotonic()
        while time.monotonic() - quiet < KEEP_QUIET and time.monotonic() - begin < KEEP_LIMIT:
            for run_id in sorted(runs):
                reaped = engine.cleanup(client, run_id)
                if reaped.removed or reaped.failed:
                    quiet = time.monotonic()
            time.sleep(1)


def _engine() -> DockerClient | None:
    """The engine, its orphaned runs reaped; None without one (every grade will say so)."""
    try:
        client = engine.connect(timeout=30)
    except GraderFault:
        return None
    engine.reap_quietly(client)
    return client


class Executor(Protocol):
    """Where the grades run: `submit` starts grading `sub` into its folder `out` and returns the
    future of its entry (status, reason, score, max_score, seconds, run_id; `retry` False when
    trying again is pointless), its result files already in `out`. `close` waits for the grades
    running, or calls them off when interrupted."""

    dashboard: str | None  # where to watch the grades, if anywhere

    def submit(self, sub: Submission, key: str, out: Path) -> Future[dict[str, Any]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """`jobs` `grader grade` children at once on this machine, with warm spares (the default)."""

    dashboard: str | None = None

    def __init__(
        self,
        *,
        client: DockerClient | None,
        jobs: int,
        warm: bool,
        assignment: str,
        seed: int,
        timeout: float,
        extra: list[str],
    ) -> None:
        self.client, self.assignment, self.seed = client, assignment, seed
        self.timeout, self.extra = timeout, extra
        self.spares = Spares(client, max(1, jobs), warm=warm) if client is not None else None
        # started here, in the thread that outlives it (the parent-death signal follows a thread)
        self.zygote = Zygote()
        self.zygote.start()
        self.pool = ThreadPoolExecutor(max_workers=max(1, jobs))

    def submit(self, sub: Submission, key: str, out: Path) -> Future[dict[str, Any]]:
        if self.spares is not None:
            self.spares.expect()
        return self.pool.submit(
            _grade_one,
            sub,
            out,
            self.assignment,
            self.seed,
            self.timeout,
            self.extra,
            self.client,
            self.spares,
            zygote=self.zygote,
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.zygote.close()
        if self.spares is not None:  # after the pool: no child is left to take one
            self.spares.close()


def run_batch(
    *,
    source: Path,
    assignment: str,
    out: Path,
    jobs: int = 2,
    seed: int = 0,
    regrade: bool = False,
    retries: int = 1,
    timeout: float = 1200.0,
    extra: list[str] | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    tls: Tls | None = None,
    progress: Callable[[int, int, int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Grade every submission of `source` into `out/<student>/`; returns the latest entry per
    student. Grades made with an earlier version of the assignment (grader.regrade) are redone
    when `regrade`, else nothing is graded (StaleGrades). `executor`: "local" (`jobs` at once
    here) or "dask" (on the workers of the Dask `scheduler`, see grader.cluster). `notice` is told
    where to watch the grades, and of every grade tried again after a fault (with its reason)."""
    if executor not in {"local", "dask"}:
        raise GraderFault(f"unknown executor {executor!r}: local or dask")
    if executor == "dask" and not scheduler:
        raise GraderFault("the dask executor needs a scheduler's address (--scheduler)")
    config.configure()  # the reference may be recorded here, in this process
    spec = assignments.load(assignment)
    subs = discover(source)
    names = [s.student for s in subs]
    if len(names) != len(set(names)):
        raise GraderFault("two submissions have the same student name")
    folders = folder_names(names)
    late.check(spec, due=next((late.parse_time(s.deadline) for s in subs if s.deadline), None))
    journal = Journal(out / "journal.jsonl")
    version = spec.fingerprint  # read once: it hashes the spec's and the reference's files
    stale = regrades.stale(journal.latest(), names, version)
    if stale and not regrade:  # never old and new grades mixed in one class
        write_summaries(out, journal, spec.title, version=version)
        raise regrades.StaleGrades(stale, len(subs))
    regrades.keep_previous(out, stale)
    redo = {e["student"] for e in stale}
    todo: list[tuple[Submission, str]] = []
    for sub in subs:
        content = sub.content_hash()
        if sub.deadline or sub.submitted_at:  # an extension granted later grades again
            content += f"@{sub.deadline or ''}@{sub.submitted_at or ''}"  # "|" stays the separator
        key = "|".join([sub.student, content, version, str(seed)])
        if sub.student in redo or not journal.done(key, sub.student, out / folders[sub.student]):
            todo.append((sub, key))
    done = len(subs) - len(todo)
    failed = 0
    with contextlib.ExitStack() as stack:
        pool: Executor
        if executor == "dask":
            from grader import cluster

            assert scheduler is not None
            pool = cluster.DaskExecutor(
                scheduler=scheduler,
                assignment=assignment,
                spec=spec,
                seed=seed,
                timeout=timeout,
                extra=extra or [],
                tls=tls,
            )
        else:
            # only runs whose grader is gone: never a grade running beside this batch
            client = _engine()
            if todo and reference.needed(spec):  # recorded alone, before any student's app starts
                reference.traces(spec, seed)
            pool = LocalExecutor(
                client=client,
                jobs=jobs,
                warm=spec.services.postgres,
                assignment=str(spec.dir),
                seed=seed,
                timeout=timeout,
                extra=extra or [],
            )
        stack.callback(pool.close)
        if notice and pool.dashboard:
            notice(f"Dask dashboard: {pool.dashboard}")
        if progress:
            progress(done, failed, len(todo), len(subs))
        attempts: dict[str, int] = {}
        seen: dict[Path, index.Seen] = {}  # the reports the index has read
        running: dict[Future[dict[str, Any]], tuple[Submission, str]] = {}

        def submit(sub: Submission, key: str) -> None:
            attempts[key] = attempts.get(key, 0) + 1
            running[pool.submit(sub, key, out / folders[sub.student])] = (sub, key)

        for sub, key in todo:
            submit(sub, key)
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                sub, key = running.pop(fut)
                entry = fut.result()
                retry = entry.pop("retry", True)
                if entry["status"] == "not_graded" and retry and attempts[key] <= retries:
                    if notice:  # the journal keeps the last attempt only: say why here
                        notice(
                            one_line(
                                f"{sub.student}: not graded ({entry['reason']}); grading again"
                            )
                        )
                    submit(sub, key)  # a grader fault: try again, never a 0
                    continue
                journal.add(
                    {
                        "key": key,
                        "student": sub.student,
                        "source": sub.source,
                        "ref": sub.ref,  # what `grader similarity` prepares again
                        "report": f"{folders[sub.student]}/report.html",
                        **entry,
                        **regrades.detail(out / folders[sub.student], entry, version),
                    }
                )
                done += 1
                failed += entry["status"] != "graded"
                write_summaries(out, journal, spec.title, seen, version=version)
                if progress:
                    progress(done, failed, len(subs) - done, len(subs))
    write_summaries(out, journal, spec.title, seen, version=version)
    return journal.latest()


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def write_summaries(
    out: Path,
    journal: Journal,
    title: str,
    cache: dict[Path, index.Seen] | None = None,
    *,
    version: str | None = None,
) -> None:
    """grades.csv and index.html from the journal; changes.csv once a regrade happened. `cache`:
    the reports already read, kept by the caller between calls; `version`: the assignment's
    fingerprint, grades made with another are marked stale."""
    latest = sorted(journal.latest().values(), key=lambda e: e["student"])
    rows = [["student", "score", "max_score", "late_penalty", "status", "report"]]
    rows += [
        [
            e["student"],
            _num(e["score"]),
            _num(e["max_score"]),
            _num(e.get("late_penalty")),  # journals written before late work have none
            e["status"],
            e["report"],
        ]
        for e in latest
    ]
    write_atomic(out / "grades.csv", csv_text(rows))
    regrade = regrades.compare(journal.history, out, version)
    if regrade.compared:
        write_atomic(out / changes.NAME, changes.render(regrade.changes))
    write_atomic(out / index.NAME, index.render(title, latest, out, regrade, cache))
