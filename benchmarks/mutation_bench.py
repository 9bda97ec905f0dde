"""Mutation benchmark: does the grader catch real student bugs, and leave correct work alone?

For every mutant and correct variant of the reference (specs/<assignment>/mutants/):
  * the full grader (`grade()`, Docker, same seed) — killed when the score drops, and whether the
    category the bug belongs to lost points;
  * a plain `schemathesis run` with default settings against the same spec and the same app
    (no auth hooks, no contract tests) — killed when it exits 1.
Then the same submission is graded 5 times with the same seed (reproducibility).

    python benchmarks/mutation_bench.py [--only NAME ...] [--no-plain] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mutants import Mutant, load, materialize  # noqa: E402

from grader import assignment as assignments  # noqa: E402
from grader.assignment import Assignment  # noqa: E402
from grader.pipeline import grade  # noqa: E402

LABEL = "api-grader.bench=1"


def sh(*cmd: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


def plain_schemathesis(app_dir: Path, spec: Assignment) -> tuple[bool, str]:
    """docker build + run (beside Postgres when the assignment has one), then
    `schemathesis run SPEC --url URL` with its defaults."""
    from grader.run import expand_env

    tag, net, pw = (
        f"bench-plain:{uuid.uuid4().hex[:8]}",
        f"bench-{uuid.uuid4().hex[:8]}",
        secrets.token_hex(8),
    )
    values = spec.runtime.randoms()
    try:
        sh("docker", "build", "-q", "-t", tag, str(app_dir))
        sh("docker", "network", "create", "--label", LABEL, net)
        if spec.services.postgres:
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
                "POSTGRES_USER=u",
                "-e",
                f"POSTGRES_PASSWORD={pw}",
                "-e",
                "POSTGRES_DB=app",
                "postgres:15",
            )
            end = time.monotonic() + 60
            while sh(
                "docker",
                "exec",
                f"{net}-db",
                "sh",
                "-c",
                f"PGPASSWORD={pw} psql -h 127.0.0.1 -U u -d app -c 'select 1'",
                check=False,
            ).returncode:
                if time.monotonic() > end:
                    return False, "postgres did not start"
                time.sleep(0.3)
            values["postgres_url"] = f"postgresql://u:{pw}@db:5432/app"
        env = [
            arg
            for name, value in expand_env(spec.runtime, values).items()
            for arg in ("-e", f"{name}={value}")
        ]
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
            *env,
            "-p",
            f"127.0.0.1::{spec.runtime.port}",
            tag,
        )
        port = (
            sh("docker", "port", f"{net}-app", f"{spec.runtime.port}/tcp")
            .stdout.split()[0]
            .rsplit(":", 1)[1]
        )
        url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + spec.runtime.health_path, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                return False, "app did not start"
            time.sleep(0.3)
        done = sh(
            "schemathesis",
            "run",
            str(spec.spec_path),
            "--url",
            url,
            "--no-color",
            check=False,
            timeout=1200,
        )
        return done.returncode == 1, done.stdout[-300:]
    finally:
        for name in (f"{net}-app", f"{net}-db"):
            sh("docker", "rm", "-f", "-v", name, check=False)
        sh("docker", "network", "rm", net, check=False)
        sh("docker", "rmi", "-f", tag, check=False)


def from_batch(
    out: Path, plain: bool, spec: Assignment
) -> tuple[list[dict[str, object]], list[float]]:
    """Rows from a `grader batch` over benchmarks/make_class.py's class (no grading again)."""
    by_name = {m.name: m for m in load(spec.id)}
    journal = {}
    for line in (out / "journal.jsonl").read_text().splitlines():
        entry = json.loads(line)
        journal[entry["student"]] = entry
    rows, repeats = [], []
    for student, entry in sorted(journal.items()):
        kind, _, name = student.partition("-")
        if kind.startswith("repeat"):
            repeats.append(entry["score"])
            continue
        if kind not in {"mutant", "variant"}:
            continue
        data = json.loads((out / student / "results.json").read_text())
        cats = data["extra_data"]["categories"]
        lost = {
            c["id"]: round(c["max_points"] - c["points"], 2)
            for c in cats
            if c["points"] < c["max_points"]
        }
        m = by_name[name]
        row = {
            "name": name,
            "kind": m.kind,
            "category": m.category,
            "score": entry["score"],
            "status": entry["status"],
            "lost": lost,
            "seconds": entry["seconds"],
            "killed": (entry["score"] or 0) < 100,
            "in_category": bool(m.category and m.category in lost),
        }
        row["source"] = entry["source"]
        rows.append(row)
    if plain:  # two at a time; the reference too: what does plain Schemathesis say of correct work?
        ref = journal.get("reference")
        if ref:
            rows.append(
                {
                    "name": "reference",
                    "kind": "reference",
                    "category": None,
                    "score": ref["score"],
                    "source": ref["source"],
                    "killed": False,
                    "in_category": False,
                    "lost": {},
                }
            )
        from concurrent.futures import ThreadPoolExecutor

        def one(row: dict[str, object]) -> None:
            row["plain_killed"], row["plain_tail"] = plain_schemathesis(
                Path(str(row["source"])), spec
            )
            print(
                f"{row['name']:32} plain={'KILLED' if row['plain_killed'] else 'survived'}",
                flush=True,
            )

        ordered = sorted(rows, key=lambda r: r["kind"] == "mutant")  # reference and variants first
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(one, ordered))
    return rows, repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assignment", default="fastapi-db-auth")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--no-plain", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--from-batch",
        type=Path,
        default=None,
        help="read the grades of a `grader batch` over make_class.py's class",
    )
    args = parser.parse_args()
    spec = assignments.load(args.assignment)
    if args.from_batch:
        rows, repeat_scores = from_batch(args.from_batch, not args.no_plain, spec)
        report(rows, repeat_scores, "repeat", args)
        return
    mutants: list[Mutant] = [
        m for m in load(args.assignment) if not args.only or m.name in args.only
    ]
    rows: list[dict[str, object]] = []
    if (
        not args.no_plain and spec.reference_dir is not None
    ):  # what plain Schemathesis says of correct work
        killed, tail = plain_schemathesis(spec.reference_dir, spec)
        rows.append(
            {
                "name": "reference",
                "kind": "reference",
                "category": None,
                "score": 100.0,
                "killed": False,
                "in_category": False,
                "lost": {},
                "plain_killed": killed,
                "plain_tail": tail,
            }
        )
        print(f"reference plain={'KILLED' if killed else 'survived'}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for m in mutants:
            app_dir = materialize(m, Path(tmp) / m.name)
            begin = time.monotonic()
            result = grade(
                submission_path=app_dir,
                assignment=spec.id,
                seed=args.seed,
                out=Path(tmp) / "reports" / m.name,
            )
            lost = {
                c.id: round(c.max_points - c.points, 2)
                for c in result.categories
                if c.points < c.max_points
            }
            row = {
                "name": m.name,
                "kind": m.kind,
                "category": m.category,
                "score": result.score,
                "status": str(result.status),
                "lost": lost,
                "seconds": round(time.monotonic() - begin, 1),
                "killed": result.score < result.max_score,
                "in_category": bool(m.category and m.category in lost),
            }
            if not args.no_plain:
                row["plain_killed"], row["plain_tail"] = plain_schemathesis(app_dir, spec)
            rows.append(row)
            plain = (
                "" if args.no_plain else f" plain={'KILLED' if row['plain_killed'] else 'survived'}"
            )
            print(
                f"{m.kind:7} {m.name:32} score {result.score:6.2f} lost {lost}{plain}", flush=True
            )
        repeat_scores = []
        if args.repeat:
            target = next((m for m in mutants if m.kind == "mutant"), mutants[0])
            app_dir = Path(tmp) / target.name
            for _ in range(args.repeat):
                repeat_scores.append(
                    grade(submission_path=app_dir, assignment=spec.id, seed=args.seed).score
                )
    report(rows, repeat_scores, target.name if repeat_scores else "", args)


def report(
    rows: list[dict[str, object]],
    repeat_scores: list[float],
    repeated: str,
    args: argparse.Namespace,
) -> None:
    muts = [r for r in rows if r["kind"] == "mutant"]
    variants = [r for r in rows if r["kind"] == "variant"]
    print("\n== mutants ==")
    print(f"{'mutant':32} {'category':11} {'grader':>8} {'in cat.':>8} {'plain st':>9}")
    for r in muts:
        plain = "-" if args.no_plain else ("killed" if r["plain_killed"] else "survived")
        print(
            f"{r['name']:32} {r['category']:11} {'killed' if r['killed'] else 'SURVIVED':>8} "
            f"{'yes' if r['in_category'] else 'NO':>8} {plain:>9}"
        )
    killed = sum(r["killed"] for r in muts)
    in_cat = sum(r["in_category"] for r in muts)
    print(
        f"\ngrader: {killed}/{len(muts)} mutants killed, {in_cat}/{len(muts)} in their own category"
    )
    if not args.no_plain:
        print(
            f"plain schemathesis run (defaults): {sum(r['plain_killed'] for r in muts)}/{len(muts)} killed"
        )
    for r in variants:
        print(f"correct variant {r['name']}: {r['score']}/100  (lost {r['lost'] or 'nothing'})")
    for r in rows:
        if r["kind"] != "mutant" and "plain_killed" in r:
            print(
                f"plain schemathesis on correct {r['kind']} {r['name']}: "
                f"{'FLAGGED (exit 1)' if r['plain_killed'] else 'clean'}"
            )
    if repeat_scores:
        print(
            f"same seed x{len(repeat_scores)} ({repeated}): scores {repeat_scores} -> "
            f"{'identical' if len(set(repeat_scores)) == 1 else 'DIFFERENT'}"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "repeat": repeat_scores}, indent=2))


if __name__ == "__main__":
    main()
