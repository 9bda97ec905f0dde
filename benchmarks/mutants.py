"""Mutation benchmark: realistic wrong submissions (mutants) and correct ones written differently
(variants), made from an assignment's reference solution.

`specs/<assignment>/mutants/mutants.yaml` lists them (loaded and materialized by grader/variants.py):
a mutant is one student mistake, written as exact text replacements on a copy of the reference,
with the rubric category it must cost points in; a variant overlays whole files (and/or edits) and
must keep full marks.

    python benchmarks/mutants.py --list                 # what is there
    python benchmarks/mutants.py --local [NAME ...]     # serve each on a throwaway local Postgres
                                                        # and run the contract suite (no Docker)
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from grader.assignment import SPECS_DIR  # noqa: E402
from grader.variants import (  # noqa: E402
    Edit,
    Mutant,
    MutantError,
    apply_edit,
    changed_files,
    materialize,
)
from grader.variants import load as load_file  # noqa: E402

__all__ = ["Edit", "Mutant", "MutantError", "apply_edit", "changed_files", "load", "materialize"]

DEFAULT_ASSIGNMENT = "fastapi-db-auth"


def mutants_file(assignment: str) -> Path:
    return SPECS_DIR / assignment / "mutants" / "mutants.yaml"


def load(assignment: str = DEFAULT_ASSIGNMENT) -> list[Mutant]:
    """Every mutant, then every variant, of `specs/<assignment>/mutants/mutants.yaml`."""
    path = mutants_file(assignment)
    if not path.is_file():
        raise MutantError(f"no mutants for {assignment!r}: {path} does not exist")
    return load_file(path)


# --------------------------------------------------------------------------------- local mode
@dataclass
class LocalResult:
    mutant: Mutant
    seconds: float
    error: str | None = None  # did not migrate/start
    failed: list[Any] = field(default_factory=list)  # failing contract Outcomes
    total: int = 0
    lost: dict[str, float] = field(default_factory=dict)  # category -> points lost
    items: list[Any] = field(default_factory=list)  # the contract items' ItemScores

    @property
    def killed(self) -> bool:
        return self.error is not None or bool(self.failed)

    @property
    def expected_hit(self) -> bool:
        if self.mutant.kind == "variant":
            return not self.killed
        return self.error is not None or (self.mutant.category in self.lost)


def run_local(mutant: Mutant, pg: Any, workdir: Path, *, markers: str | None = None) -> LocalResult:
    """Serve `mutant` on `pg` and run the contract suite (only the tests `markers` selects, e.g.
    "critical", when given)."""
    from grader import assignment as assignments
    from grader.checks.contract import run_suite
    from grader.core import Target
    from grader.local import LocalApp, LocalAppError
    from grader.score import categories, score_items

    a = assignments.load(DEFAULT_ASSIGNMENT)
    started = time.monotonic()
    app_dir = materialize(mutant, workdir / mutant.name / "app")
    database_url = pg.create_database(f"mut_{uuid.uuid4().hex[:12]}")
    migrated = pg.create_database(f"mut_{uuid.uuid4().hex[:12]}")
    env = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_hex(32),
        "ACCESS_TOKEN_EXPIRE_MINUTES": "30",
    }
    app = LocalApp(app_dir, env, workdir / mutant.name / "uvicorn.log")
    try:
        # as the grader does: the migrations alone on an empty database (a failure there shows as
        # missing tables, as in Docker), then on the app's
        with contextlib.suppress(LocalAppError):
            LocalApp(
                app_dir, {**env, "DATABASE_URL": migrated}, workdir / mutant.name / "migrate.log"
            ).migrate()
        try:
            app.migrate()
            app.start()
        except LocalAppError as exc:  # did not migrate or start: killed
            return LocalResult(mutant, time.monotonic() - started, error=str(exc))
        target = Target(
            base_url=app.base_url,
            env=dict(env),
            database_url=database_url,
            restart=app.restart,
            databases={"migrated": migrated},
            source=app_dir,
        )
        run = run_suite(a.tests_dir, target, markers=markers)
        outcomes = run.outcomes
    finally:
        app.stop()
    items = score_items([i for i in a.items if i.check == "contract"], outcomes)
    scored = categories(a, items)
    lost = {c.id: round(c.max_points - c.points, 2) for c in scored if c.points < c.max_points}
    failed = [o for o in outcomes if not o.passed]
    return LocalResult(
        mutant,
        time.monotonic() - started,
        failed=failed,
        total=len(outcomes),
        lost=lost,
        items=items,
    )


def _print_result(r: LocalResult, verbose: bool) -> None:
    m = r.mutant
    if m.kind == "variant":
        verdict = "FULL MARKS" if not r.killed else "LOSES POINTS"
        print(
            f"{m.name:38} variant   {verdict:12} {r.seconds:5.0f}s  "
            f"{len(r.failed)}/{r.total} failed  lost={r.lost or '-'}",
            flush=True,
        )
    else:
        killed = "yes" if r.killed else "NO"
        hit = "yes" if r.expected_hit else "NO"
        print(
            f"{m.name:38} {m.category:9} killed={killed:3} expected-category-lost={hit:3} "
            f"{r.seconds:5.0f}s  {len(r.failed)}/{r.total} failed  lost={r.lost or '-'}",
            flush=True,
        )
    if r.error:
        print(f"    did not start: {r.error.splitlines()[0] if r.error else ''}")
    if verbose or m.kind == "variant":
        for o in r.failed:
            last = o.message.strip().splitlines()[-1] if o.message else ""
            print(f"    - [{o.item}] {o.name}: {last[:200]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="only these mutants/variants")
    parser.add_argument("--assignment", default=DEFAULT_ASSIGNMENT)
    parser.add_argument("--list", action="store_true", help="list mutants and variants")
    parser.add_argument(
        "--local",
        action="store_true",
        help="serve each on a local Postgres with uvicorn and run the contract suite",
    )
    parser.add_argument("--keep", type=Path, help="materialize into this folder and keep it")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show failing tests of mutants too"
    )
    args = parser.parse_args(argv)

    mutants = load(args.assignment)
    if args.names:
        unknown = set(args.names) - {m.name for m in mutants}
        if unknown:
            parser.error(f"unknown names: {sorted(unknown)}")
        mutants = [m for m in mutants if m.name in args.names]
    if args.list or not args.local:
        for m in mutants:
            print(f"{m.name:38} {m.kind:8} {m.category or '-':10} {m.bug}")
        return 0
    if args.assignment != DEFAULT_ASSIGNMENT:
        parser.error("--local knows how to serve fastapi-db-auth only")

    from grader import localpg

    results: list[LocalResult] = []
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="mutants-"))
    try:
        with localpg.LocalPostgres() as pg:
            for m in mutants:
                results.append(run_local(m, pg, workdir))
                _print_result(results[-1], args.verbose)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    mut = [r for r in results if r.mutant.kind == "mutant"]
    var = [r for r in results if r.mutant.kind == "variant"]
    print()
    print(
        f"mutants killed by the contract suite: {sum(r.killed for r in mut)}/{len(mut)}; "
        f"losing points in their own category: {sum(r.expected_hit for r in mut)}/{len(mut)}"
    )
    survivors = [r.mutant.name for r in mut if not r.killed]
    if survivors:
        print(f"not killed: {', '.join(survivors)}")
    wrong_cat = [r.mutant.name for r in mut if r.killed and not r.expected_hit]
    if wrong_cat:
        print(f"killed but not in their category: {', '.join(wrong_cat)}")
    if var:
        print(f"variants with full contract marks: {sum(not r.killed for r in var)}/{len(var)}")
    return 0 if all(not r.killed for r in var) else 1


if __name__ == "__main__":
    sys.exit(main())
