"""Grading speed: `grader grade` (cold and warm) against the same work done by hand, in one run.

By hand = what an instructor would script without the grader: `docker build`, a network,
`docker run` Postgres and wait, `docker run` the app and wait for /health, `schemathesis run`
on the assignment's spec (same seed, example budget, checks and auth hooks), and `pytest` on the
contract tests. Each variant runs --runs times (default 3); medians and ratios are printed.

    python benchmarks/bench_grade.py [--runs 3] [--submission PATH] [--no-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import assignment as assignments  # noqa: E402
from grader.pipeline import grade  # noqa: E402

LABEL = "api-grader.bench=1"


def sh(
    *cmd: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=check)


def wait_until(fn, deadline: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if fn():
            return
        time.sleep(0.2)
    raise TimeoutError


def by_hand(submission: Path, spec_id: str, seed: int, *, cold: bool) -> dict[str, float]:
    spec = assignments.load(spec_id)
    tag = f"bench-hand:{uuid.uuid4().hex[:8]}"
    net = f"bench-{uuid.uuid4().hex[:8]}"
    pw = secrets.token_hex(8)
    t: dict[str, float] = {}
    start = time.monotonic()
    try:
        sh("docker", "build", "-q", *(["--no-cache"] if cold else []), "-t", tag, str(submission))
        t["build"] = time.monotonic() - start
        sh("docker", "network", "create", "--label", LABEL, net)
        sh(
            "docker",
            "run",
            "-d",
            "--label",
            LABEL,
            "--name",
            f"{net}-db",
            "--network",
            net,
            "--network-alias",
            "db",
            "-e",
            "POSTGRES_USER=grader",
            "-e",
            f"POSTGRES_PASSWORD={pw}",
            "-e",
            "POSTGRES_DB=app",
            "-p",
            "127.0.0.1::5432",
            "postgres:15",
        )
        wait_until(
            lambda: (
                sh(
                    "docker",
                    "exec",
                    f"{net}-db",
                    "sh",
                    "-c",
                    f"PGPASSWORD={pw} psql -h 127.0.0.1 -U grader -d app -c 'select 1'",
                    check=False,
                ).returncode
                == 0
            )
        )
        t["database_ready"] = time.monotonic() - start - t["build"]
        secret = secrets.token_urlsafe(32)
        sh(
            "docker",
            "run",
            "-d",
            "--label",
            LABEL,
            "--name",
            f"{net}-app",
            "--network",
            net,
            "-e",
            f"DATABASE_URL=postgresql://grader:{pw}@db:5432/app",
            "-e",
            f"SECRET_KEY={secret}",
            "-e",
            "ACCESS_TOKEN_EXPIRE_MINUTES=30",
            "-p",
            "127.0.0.1::8000",
            tag,
        )
        port = (
            sh("docker", "port", f"{net}-app", "8000/tcp")
            .stdout.strip()
            .splitlines()[0]
            .rsplit(":", 1)[1]
        )
        db_port = (
            sh("docker", "port", f"{net}-db", "5432/tcp")
            .stdout.strip()
            .splitlines()[0]
            .rsplit(":", 1)[1]
        )
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(url + spec.runtime.health_path, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        mark = time.monotonic()
        wait_until(healthy)
        t["app_ready"] = time.monotonic() - mark
        mark = time.monotonic()
        checks = sorted(
            {
                c
                for i in spec.items
                if i.check == "schemathesis"
                for c in i.options.get("checks", [])
            }
        )
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "fuzz_hooks",
            "FUZZ_SEED": str(seed),
            "PYTHONPATH": str(spec.dir),
        }
        sh(
            "schemathesis",
            "run",
            str(spec.spec_path),
            "--url",
            url,
            "--seed",
            str(seed),
            "--max-examples",
            str(spec.fuzz.max_examples),
            "--generation-deterministic",
            "--checks",
            ",".join(checks),
            "--no-color",
            env=env,
            check=False,
        )
        t["schemathesis"] = time.monotonic() - mark
        mark = time.monotonic()
        sh(
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
            str(spec.tests_dir),
            "-p",
            "grader.checks.contract",
            "--app-url",
            url,
            "--app-env",
            f"SECRET_KEY={secret}",
            "--app-env",
            "ACCESS_TOKEN_EXPIRE_MINUTES=30",
            "--db-url",
            f"postgresql://grader:{pw}@127.0.0.1:{db_port}/app",
            check=False,
        )
        t["pytest"] = time.monotonic() - mark
    finally:
        for name in (f"{net}-app", f"{net}-db"):
            sh("docker", "rm", "-f", "-v", name, check=False)
        sh("docker", "network", "rm", net, check=False)
        sh("docker", "rmi", "-f", tag, check=False)
    t["total"] = time.monotonic() - start
    return t


def with_grader(submission: Path, spec_id: str, seed: int, *, cold: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:  # cold: no layer cache, as for a first grade
        result = grade(
            submission_path=submission, assignment=spec_id, out=Path(out), seed=seed, no_cache=cold
        )
    if result.score != result.max_score:
        print(f"  note: scored {result.score}/{result.max_score} ({result.reason})")
    return dict(result.timings)


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r.get(key, 0.0) for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--assignment", default="fastapi-db-auth")
    parser.add_argument("--submission", type=Path, default=None)
    parser.add_argument("--no-cold", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw timings here")
    args = parser.parse_args()
    spec_id = args.assignment
    submission = args.submission or ROOT / "reference_solution" / spec_id
    if shutil.which("schemathesis") is None:
        sys.exit("schemathesis CLI not found")
    variants = {
        "grader warm": lambda: with_grader(submission, spec_id, 0, cold=False),
        "by hand warm": lambda: by_hand(submission, spec_id, 0, cold=False),
    }
    if not args.no_cold:
        variants = {
            "grader cold": lambda: with_grader(submission, spec_id, 0, cold=True),
            "by hand cold": lambda: by_hand(submission, spec_id, 0, cold=True),
            **variants,
        }
    with_grader(submission, spec_id, 0, cold=False)  # prime the warm cache once
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for i in range(args.runs):  # interleaved, so machine noise hits every variant alike
        for name, fn in variants.items():
            runs[name].append(fn())
            print(
                f"run {i + 1}/{args.runs} {name:<13} {runs[name][-1]['total']:6.1f} s", flush=True
            )
    print(f"\nmedians of {args.runs} runs (seconds), {os.cpu_count()} cores")
    keys = ["build", "database_ready", "app_ready", "checks", "schemathesis", "pytest", "total"]
    print(f"{'variant':<14}" + "".join(f"{k:>15}" for k in keys))
    for name, rs in runs.items():
        print(f"{name:<14}" + "".join(f"{median(rs, k):>15.1f}" for k in keys))
    for kind in ("warm", "cold"):
        if f"grader {kind}" in runs:
            g, h = median(runs[f"grader {kind}"], "total"), median(runs[f"by hand {kind}"], "total")
            print(f"{kind}: grader {g:.1f} s vs by hand {h:.1f} s -> ratio {g / h:.2f}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
