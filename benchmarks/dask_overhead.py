"""The Dask executor against the local one, side by side on one machine and one class: two
`grader worker`s of one slot each against `grader batch --jobs 2`, alternating.

    python benchmarks/dask_overhead.py --assignment fastapi-basics --limit 8 --repeat 1 \
        --results benchmarks/RESULTS-dask_overhead.txt

Reported: wall time and submissions per hour of each executor; the median grade (the `grader
grade` child's seconds, from the journal) of each; the overhead per grade, (dask wall - local
wall) * 2 / submissions; the dispatch gap on a busy worker (from one grade's end to the next one's
start, from the workers' logs: what the scheduler and the client add between grades); and the
bytes a grade moves (the submission sent, the result files returned) — the figures behind
ARCHITECTURE.md's estimate for a large class.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from bench_class import commit, finish, machine, run_batch, write_class  # noqa: E402

from grader.batch import RESULT_FILES, discover  # noqa: E402
from grader.cluster import pack  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(log: Path, text: str) -> None:
    end = time.monotonic() + 120
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > end:
            raise SystemExit(f"{log}: no {text!r} after 120 s")
        time.sleep(0.2)


def _stamp(line: str) -> float:
    when = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return when.timestamp()


def _gaps(logs: list[Path]) -> list[float]:
    """Seconds from each grade's end to the same worker's next grade's start."""
    gaps = []
    for log in logs:
        end = None
        for line in log.read_text(errors="replace").splitlines():
            if "distributed.worker.grade - INFO - graded " in line:
                end = _stamp(line)
            elif "distributed.worker.grade - INFO - grading " in line and end is not None:
                gaps.append(_stamp(line) - end)
                end = None
    return gaps


def _grades(out: Path) -> list[float]:
    return [
        float(json.loads(line)["seconds"])
        for line in (out / "journal.jsonl").read_text().splitlines()
        if line.strip()
    ]


def _dask_batch(class_dir: Path, assignment: str, out: Path) -> tuple[float, list[Path]]:
    """A scheduler and two one-slot workers of this tree, then the batch; its wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    address = f"tcp://127.0.0.1:{_port()}"
    procs: list[subprocess.Popen[bytes]] = []
    logs = [out.with_name(f"{out.name}-{name}.log") for name in ("scheduler", "w1", "w2")]
    grader = [sys.executable, "-m", "grader.cli"]
    try:
        port = address.rpartition(":")[2]
        argv = [*grader, "scheduler", "--host", "127.0.0.1", "--port", port]
        argv += ["--dashboard-address", f"127.0.0.1:{_port()}"]
        with logs[0].open("wb") as fh:
            procs.append(subprocess.Popen(argv, stdout=fh, stderr=fh, env=env, cwd=ROOT))
        _wait(logs[0], "Scheduler at:")
        for name, log in zip(("w1", "w2"), logs[1:], strict=True):
            argv = [*grader, "worker", "--scheduler", address, "--slots", "1", "--name", name]
            with log.open("wb") as fh:
                procs.append(subprocess.Popen(argv, stdout=fh, stderr=fh, env=env, cwd=ROOT))
            _wait(log, "Registered to:")
        argv = [*grader, "batch", str(class_dir), "--assignment", assignment, "--out", str(out)]
        argv += ["--executor", "dask", "--scheduler", address]
        start = time.monotonic()
        with out.with_name(out.name + ".log").open("w") as sink:
            finish(subprocess.Popen(argv, env=env, cwd=ROOT, stdout=sink, stderr=sink))
        return time.monotonic() - start, logs[1:]
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="fastapi-basics")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dask-overhead-"))
    class_dir = work / "class"
    names = write_class(args.assignment, class_dir, limit=args.limit)
    walls: dict[str, list[float]] = {"local": [], "dask": []}
    grades: dict[str, list[float]] = {"local": [], "dask": []}
    gaps: list[float] = []
    for i in range(args.repeat):
        out = work / f"local-{i}"
        walls["local"].append(run_batch(ROOT, class_dir, args.assignment, out, jobs=2, seed=0))
        grades["local"] += _grades(out)
        out = work / f"dask-{i}"
        wall, logs = _dask_batch(class_dir, args.assignment, out)
        walls["dask"].append(wall)
        grades["dask"] += _grades(out)
        gaps += _gaps(logs)
    sent = [len(pack(sub)[1]) for sub in discover(class_dir)]
    returned = [
        sum(
            (work / "dask-0" / n / f).stat().st_size
            for f in RESULT_FILES
            if (work / "dask-0" / n / f).is_file()
        )
        for n in names
    ]
    n = len(names)
    local, dask = statistics.median(walls["local"]), statistics.median(walls["dask"])
    lines = [
        f"dask_overhead.py: {args.assignment}, {n} submissions, {args.repeat} run(s) each, "
        f"commit {commit(ROOT)}",
        machine(),
        f"local --jobs 2:            wall {local:.1f} s, {3600 * n / local:.0f} per hour, "
        f"median grade {statistics.median(grades['local']):.1f} s",
        f"dask 2 workers x 1 slot:   wall {dask:.1f} s, {3600 * n / dask:.0f} per hour, "
        f"median grade {statistics.median(grades['dask']):.1f} s",
        f"overhead per grade (wall difference x 2 / submissions): {(dask - local) * 2 / n:+.2f} s",
        f"dispatch gap on a busy worker (end of a grade -> start of the next): median "
        f"{statistics.median(gaps) if gaps else float('nan'):.3f} s over {len(gaps)}",
        f"bytes per grade: sent median {statistics.median(sent) / 1024:.0f} KiB "
        f"(max {max(sent) / 1024:.0f}), returned median {statistics.median(returned) / 1024:.0f} KiB "
        f"(max {max(returned) / 1024:.0f})",
        f"outputs: {work}",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.results:
        args.results.write_text(text)


if __name__ == "__main__":
    main()
