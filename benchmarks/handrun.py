"""Issue 14's side-by-side: one submission graded by `grader grade` against what an instructor
does by hand with plain tools, in one run, reported as a ratio.

    python benchmarks/handrun.py [--assignment fastapi-db-auth] [--submission PATH] \\
        [--tree GRADER_TREE] [--repeat 3] [--seed 0] [--results FILE]

By hand, each step timed: `docker build` (cached: one untimed build first), `docker network
create`, `docker run` Postgres (the local postgres:15) and wait until it accepts connections,
`docker run` the app with the env of the assignment's `runtime.env` (${postgres_url} and
${random_<name>} filled in) and wait for its health path, a plain `schemathesis run` of the spec
(the assignment's max examples, seed, checks and hooks), a probe of a few requests, then removing
the containers and the network. The grader: `PYTHONPATH=<tree> python -m grader.cli grade`, its
wall time (one untimed grade first as well). The two alternate, the order flipping every
repetition; medians and the ratio grader/hand are printed (and written with --results).

Only local images are used (no pull). Everything created carries the label
`api-grader.bench=<random>` and exactly that is removed at the end, also on Ctrl-C or SIGTERM.
The app reaches Postgres over the private network; this script reaches the app on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_class import ROOT, commit, finish, interrupt_on_sigterm, machine

from grader import assignment as assignments

RUN_ID = secrets.token_hex(6)
LABEL = f"api-grader.bench={RUN_ID}"
TAG = f"api-grader-bench-{RUN_ID}:hand"
DEADLINE = 90.0  # seconds any wait may take


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def wait(ready: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not ready():
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: not ready after {DEADLINE:.0f} s")
        time.sleep(0.1)


def fill_env(env: dict[str, str], postgres_url: str) -> dict[str, str]:
    """The runtime contract's env: ${postgres_url}, and ${random_<name>} a fresh value per name."""
    values = {"postgres_url": postgres_url}

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key.startswith("random_"):
            values.setdefault(key, secrets.token_urlsafe(24))
        return values[key]

    return {name: re.sub(r"\$\{(\w+)\}", fill, value) for name, value in env.items()}


def probe_db_auth(client: httpx.Client) -> None:
    """What an instructor tries first: register, log in, create an item."""
    email, password = f"probe-{secrets.token_hex(4)}@example.com", "probe-password-1"
    user = client.post("/users/", json={"email": email, "password": password})
    user.raise_for_status()
    token = client.post("/token", data={"username": email, "password": password})
    token.raise_for_status()
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    item = client.post(f"/users/{user.json()['id']}/items/", json={"title": "probe"}, headers=auth)
    item.raise_for_status()
    client.get("/items/").raise_for_status()


PROBES: dict[str, Callable[[httpx.Client], None]] = {"fastapi-db-auth": probe_db_auth}


def by_hand(spec: Any, submission: Path, seed: int, n: int, work: Path) -> dict[str, float]:
    """One hand-run; each step's seconds and the total."""
    times: dict[str, float] = {}
    mark = time.monotonic()

    def step(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        times[name] = now - mark
        mark = now

    name = f"api-grader-bench-{RUN_ID}-{n}"
    docker("build", "-q", "--label", LABEL, "-t", TAG, str(submission))
    step("build")
    docker("network", "create", "--label", LABEL, name)
    step("network")
    postgres_url = ""
    if spec.services.postgres:
        password = secrets.token_hex(12)
        docker(
            "run", "-d", "--label", LABEL, "--name", f"{name}-db", "--network", name,
            "--network-alias", "db", "-e", "POSTGRES_USER=app", "-e", "POSTGRES_DB=app",
            "-e", f"POSTGRES_PASSWORD={password}", "postgres:15",
        )  # fmt: skip
        check = ["docker", "exec", f"{name}-db", "pg_isready", "-h", "127.0.0.1", "-U", "app"]
        wait(lambda: subprocess.run(check, capture_output=True).returncode == 0, "Postgres")
        postgres_url = f"postgresql://app:{password}@db:5432/app"
        step("postgres_ready")
    env = fill_env(spec.runtime.env, postgres_url)
    port = spec.runtime.port
    docker(
        "run", "-d", "--label", LABEL, "--name", f"{name}-app", "--network", name,
        "-p", f"127.0.0.1::{port}", *[f"-e{k}={v}" for k, v in env.items()], TAG,
    )  # fmt: skip
    published = docker("port", f"{name}-app", f"{port}/tcp").splitlines()[0].rsplit(":", 1)[1]
    url = f"http://127.0.0.1:{published}"

    def healthy() -> bool:
        try:
            return httpx.get(url + spec.runtime.health_path, timeout=2).is_success
        except httpx.HTTPError:
            return False

    wait(healthy, "the app")
    step("app_ready")
    checks = sorted(
        {c for item in spec.items if item.check == "schemathesis" for c in item.options["checks"]}
    )
    command = ["schemathesis", "run", str(spec.spec_path), "--url", url, "--seed", str(seed)]
    command += ["--max-examples", str(spec.fuzz.max_examples), "--checks", ",".join(checks)]
    if not spec.fuzz.stateful:
        command += ["--phases", "examples,coverage,fuzzing"]
    fuzz_env = {**os.environ, "FUZZ_SEED": str(seed), "NO_COLOR": "1"}
    if spec.fuzz.hooks:
        fuzz_env["SCHEMATHESIS_HOOKS"] = str(spec.dir / spec.fuzz.hooks)
    done = subprocess.run(command, env=fuzz_env, cwd=work, capture_output=True, text=True)
    if n == 0:  # show once that it really ran and what it reported: its summary
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        start = max((i for i, line in enumerate(lines) if "SUMMARY" in line), default=0)
        print(f"  schemathesis exit {done.returncode}:", *lines[start:][:25], sep="\n    ")
    if done.returncode not in (0, 1):  # 1: it found failures, still a complete run
        raise RuntimeError(f"schemathesis failed (exit {done.returncode}): {done.stderr[-800:]}")
    step("schemathesis")
    with httpx.Client(base_url=url, timeout=10) as client:
        PROBES.get(spec.id, lambda c: c.get(spec.runtime.health_path).raise_for_status())(client)
    step("probe")
    docker("rm", "-f", "-v", f"{name}-app", *([f"{name}-db"] if postgres_url else []))
    docker("network", "rm", name)
    step("cleanup")
    times["total"] = sum(times.values())
    return times


def with_grader(tree: Path, spec_id: str, submission: Path, seed: int, out: Path) -> dict[str, Any]:
    """One `grader grade`: its wall time, the grade's own phase timings and score."""
    command = [sys.executable, "-m", "grader.cli", "grade", str(submission), "-a", spec_id]
    command += ["--out", str(out), "--seed", str(seed)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out.mkdir()
    start = time.monotonic()
    with open(out / "grade.log", "w") as log:
        code = finish(subprocess.Popen(command, env=env, cwd=tree, stdout=log, stderr=log))
    wall = time.monotonic() - start
    full = out / "full.json"
    if not full.is_file():
        raise RuntimeError(f"grader grade wrote no full.json (exit {code})")
    data = json.loads(full.read_text())
    return {"wall": wall, "timings": data["timings"], "score": data.get("score")}


def remove_labelled() -> None:
    """Exactly what this run created: its containers, networks and image."""
    for kind, listing in (
        ("container", ["ps", "-aq"]),
        ("network", ["network", "ls", "-q"]),
        ("image", ["images", "-q"]),
    ):
        ids = docker(*listing, "--filter", f"label={LABEL}").split()
        if ids:
            extra = ["-f", "-v"] if kind == "container" else ["-f"] if kind == "image" else []
            subprocess.run(["docker", kind, "rm", *extra, *sorted(set(ids))], capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="fastapi-db-auth")
    parser.add_argument("--submission", type=Path, default=None)
    parser.add_argument("--tree", type=Path, default=ROOT, help="grader source tree to time")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    spec = assignments.load(args.assignment)
    submission = (args.submission or ROOT / "reference_solution" / spec.id).resolve()
    tree = args.tree.resolve()
    interrupt_on_sigterm()
    header = [
        f"# {' '.join(shlex.quote(a) for a in sys.argv)}",
        f"# {machine()} (at the start); grader {tree} at {commit(tree)}",
        f"# {submission} as {spec.id}, seed {args.seed}; label {LABEL}",
        "# grader and hand-run alternate, the order flipping every repetition; "
        "one untimed run of each first (warm build cache)",
    ]
    print("\n".join(header), flush=True)
    hand: list[dict[str, float]] = []
    graded: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="handrun-") as tmp:
        work = Path(tmp)

        def run_grader(n: int) -> dict[str, Any]:
            return with_grader(tree, spec.id, submission, args.seed, work / f"grade-{n}")

        def run_hand(n: int) -> dict[str, float]:
            return by_hand(spec, submission, args.seed, n, work)

        try:
            warm = run_grader(0), run_hand(0)
            print(f"warm-up: grader {warm[0]['wall']:.1f} s, hand {warm[1]['total']:.1f} s")
            for n in range(1, args.repeat + 1):
                for kind in ("grader", "hand") if n % 2 else ("hand", "grader"):
                    if kind == "grader":
                        graded.append(run_grader(n))
                        seconds = graded[-1]["wall"]
                    else:
                        hand.append(run_hand(n))
                        seconds = hand[-1]["total"]
                    print(f"repetition {n}/{args.repeat} {kind:6} {seconds:6.1f} s", flush=True)
        except KeyboardInterrupt:
            print("interrupted: removing what this run created", file=sys.stderr)
            return 130
        finally:
            remove_labelled()
    body = [f"medians of {args.repeat} runs (s)", "  by hand:"]
    body += [f"    {k:16}{statistics.median(r[k] for r in hand):7.2f}" for k in hand[0]]
    body.append(f"  grader grade (score {graded[0]['score']}), its own phases:")
    phases = [k for k in graded[0]["timings"] if not k.startswith("check:")]
    phases += sorted(k for k in graded[0]["timings"] if k.startswith("check:"))
    for k in phases:
        values = [g["timings"][k] for g in graded if k in g["timings"]]
        body.append(f"    {k:22}{statistics.median(values):7.2f}")
    g_wall = statistics.median(g["wall"] for g in graded)
    h_wall = statistics.median(r["total"] for r in hand)
    body.append(f"    {'command wall time':22}{g_wall:7.2f}")
    body.append(
        f"grader {g_wall:.1f} s vs by hand {h_wall:.1f} s: ratio grader/hand {g_wall / h_wall:.2f}"
    )
    body.append(f"# {machine()} (at the end)")
    print("\n".join(body))
    if args.results:
        args.results.write_text("\n".join(header + body) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
