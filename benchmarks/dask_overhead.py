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
import resource
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

import psutil  # noqa: E402  (a dependency of distributed)
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


def _around(out: Path) -> list[float]:
    """Per grade, the child's wall seconds minus the grade's own total (full.json): the process
    start, imports and writing the reports around the grade."""
    found = []
    for line in (out / "journal.jsonl").read_text().splitlines():
        entry = json.loads(line) if line.strip() else {}
        full = out / str(entry.get("student", "")) / "full.json"
        if full.is_file():
            total = json.loads(full.read_text()).get("timings", {}).get("total")
            if isinstance(total, (int, float)):
                found.append(float(entry["seconds"]) - total)
    return found


def _span(logs: list[Path]) -> tuple[float, float]:
    """When the workers started their first grade and ended their last one (epoch seconds)."""
    starts, ends = [], []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if "distributed.worker.grade - INFO - grading " in line:
                starts.append(_stamp(line))
            elif "distributed.worker.grade - INFO - graded " in line:
                ends.append(_stamp(line))
    return min(starts), max(ends)


def _own_cpu(proc: subprocess.Popen[bytes]) -> float:
    times = psutil.Process(proc.pid).cpu_times()
    return float(times.user + times.system)


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _dask_batch(
    class_dir: Path, assignment: str, out: Path, cpu: dict[str, list[float]]
) -> tuple[float, list[Path], tuple[float, float]]:
    """A scheduler and two one-slot workers of this tree, then the batch: its wall seconds, the
    workers' logs, and the seconds from the batch's start to the first grade and from the last
    grade to the batch's end. `cpu` gets the CPU seconds of the client, the scheduler and the
    workers themselves (not their grades): what Dask takes from the grades on a shared machine."""
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
        base = [_own_cpu(proc) for proc in procs]  # their start-up is not the batch's
        start, began, before = time.monotonic(), time.time(), _children_cpu()
        with out.with_name(out.name + ".log").open("w") as sink:
            finish(subprocess.Popen(argv, env=env, cwd=ROOT, stdout=sink, stderr=sink))
        wall, ended = time.monotonic() - start, time.time()
        cpu["client"].append(_children_cpu() - before)
        for name, proc, was in zip(("scheduler", "workers", "workers"), procs, base, strict=True):
            cpu[name].append(_own_cpu(proc) - was)
        first, last = _span(logs[1:])
        return wall, logs[1:], (first - began, ended - last)
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
    around: dict[str, list[float]] = {"local": [], "dask": []}
    gaps: list[float] = []
    edges: list[tuple[float, float]] = []
    cpu: dict[str, list[float]] = {"client": [], "scheduler": [], "workers": []}
    for i in range(args.repeat):
        out = work / f"local-{i}"
        walls["local"].append(run_batch(ROOT, class_dir, args.assignment, out, jobs=2, seed=0))
        grades["local"] += _grades(out)
        around["local"] += _around(out)
        out = work / f"dask-{i}"
        wall, logs, edge = _dask_batch(class_dir, args.assignment, out, cpu)
        edges.append(edge)
        walls["dask"].append(wall)
        grades["dask"] += _grades(out)
        around["dask"] += _around(out)
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
        f"median grade difference (dask - local child seconds): "
        f"{statistics.median(grades['dask']) - statistics.median(grades['local']):+.2f} s",
        f"around the grade (child seconds - grade total), median: local "
        f"{statistics.median(around['local']):.2f} s, dask {statistics.median(around['dask']):.2f} s",
        f"dask batch start -> first grade: median {statistics.median(e[0] for e in edges):.2f} s; "
        f"last grade -> batch end: median {statistics.median(e[1] for e in edges):.2f} s "
        f"(once per batch, not per grade)",
        f"CPU seconds per batch of Dask's own processes (median): client "
        f"{statistics.median(cpu['client']):.1f}, scheduler {statistics.median(cpu['scheduler']):.1f}, "
        f"two workers {2 * statistics.median(cpu['workers']):.1f} (not their grades)",
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
