"""A security hole costs its rubric item, not a sliver of it: each one-bug mutant of the benchmark
whose bug is a hole (any password accepted, a key in the code instead of the environment's, token
signatures or expiry not checked, a password or its hash answered or stored weakly, another user's
items writable) scores 0 on the item whose critical test catches it, and on no other item through a
critical test; mutants whose bug is no hole (a missing header, another algorithm, a long expiry) are
never zeroed; the correct variants keep full marks on every item.

Fast local mode, as tests/test_mutants.py: each app is served by uvicorn from this machine's Python
(fastapi-db-auth on a throwaway local Postgres), only the contract suite runs. What is zeroed
depends on the critical tests alone, so most fastapi-db-auth mutants run only those; the issue's
examples and the variants run the whole suite.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from conftest import benchmark_mutants

from grader import assignment as assignments
from grader import localpg
from grader.checks.contract import run_suite
from grader.core import ItemScore, Target
from grader.local import LocalApp, LocalAppError
from grader.score import score_items

mutants_mod = benchmark_mutants()

# mutant -> the items its hole must zero (through a critical test)
DB_AUTH_HOLES = {
    "hash-leaked": {"users-create"},
    "token-ignores-password": {"token"},
    "secret-hardcoded": {"token"},
    "token-without-exp": {"token"},
    "basic-ignores-password": {"basic-auth"},
    "alg-none-accepted": {"forged-jwt"},
    "token-never-expires": {"forged-jwt"},
    "plaintext-passwords": {"db-passwords"},
    "sha512-hexdigest": {"db-passwords"},
    "sha256-static-salt": {"db-passwords"},
    "argon2-look-alike-base64": {"db-passwords"},
    "argon2-look-alike-sha256": {"db-passwords"},
    "argon2-trivial-cost": {"db-passwords"},
    "bcrypt-trivial-cost": {"db-passwords"},
    "create-item-no-ownership": {"items-ownership"},
    "patch-no-ownership": {"items-ownership"},
    "delete-no-ownership": {"items-ownership"},
}
# wrong, but no hole: they lose a share of their items, never a whole item through a critical test
DB_AUTH_NO_HOLE = [
    "bearer-401-without-www-authenticate",
    "token-401-without-www-authenticate",
    "token-hs512",
    "token-expiry-ignored",
]
# the whole suite: the item loses its full points however many of its other tests pass
WHOLE_SUITE = {"basic-ignores-password", "secret-hardcoded", "alg-none-accepted", "hash-leaked"}
BASICS_HOLES = {
    "password-echoed": {"form"},
    "token-hardcoded": {"protected"},
    "password-not-checked": {"basic-auth-rejects"},
}
BASICS_NO_HOLE = ["no-www-authenticate", "missing-header-400"]


def _by_name(assignment: str) -> dict[str, Any]:
    return {m.name: m for m in mutants_mod.load(assignment)}


DB_AUTH = _by_name("fastapi-db-auth")
BASICS = _by_name("fastapi-basics")


def _check(name: str, kind: str, items: list[ItemScore], holes: dict[str, set[str]]) -> None:
    zeroed = {i.id for i in items if i.zeroed_by}
    scores = {i.id: f"{i.points:g}/{i.max_points:g}" for i in items if i.points < i.max_points}
    why = "\n".join(f"  [{i.id}] {i.zeroed_by}" for i in items if i.zeroed_by)
    if kind == "variant":
        assert not scores, f"{name} is correct but lost points: {scores}\n{why}"
        return
    expected = holes.get(name, set())
    assert zeroed == expected, (
        f"{name}: zeroed {sorted(zeroed)}, expected {sorted(expected)}:\n{why}"
    )
    for item in items:
        if item.id in expected:
            assert item.points == 0 and item.zeroed_by, item


def test_every_hole_and_control_is_a_benchmark_mutant() -> None:
    for names, known in (
        ([*DB_AUTH_HOLES, *DB_AUTH_NO_HOLE], DB_AUTH),
        ([*BASICS_HOLES, *BASICS_NO_HOLE], BASICS),
    ):
        assert set(names) <= {n for n, m in known.items() if m.kind == "mutant"}, set(names) - set(
            known
        )


@pytest.mark.postgres
@pytest.mark.parametrize(
    "name",
    [*DB_AUTH_HOLES, *DB_AUTH_NO_HOLE, *(n for n, m in DB_AUTH.items() if m.kind == "variant")],
)
def test_db_auth_holes_cost_their_item(
    name: str, postgres: localpg.LocalPostgres, tmp_path: Path
) -> None:
    mutant = DB_AUTH[name]
    whole = name in WHOLE_SUITE or mutant.kind == "variant"
    result = mutants_mod.run_local(
        mutant, postgres, tmp_path, markers=None if whole else "critical"
    )
    assert result.error is None, f"{name} did not start: {result.error}"
    _check(name, mutant.kind, result.items, DB_AUTH_HOLES)


def _basics_items(mutant: Any, tmp_path: Path) -> list[ItemScore]:
    """The contract items' scores of a fastapi-basics mutant served by uvicorn (no database)."""
    spec = assignments.load("fastapi-basics")
    app_dir = mutants_mod.materialize(mutant, tmp_path / "app")
    env = {name: secrets.token_hex(12) for name in spec.runtime.env}
    app = LocalApp(app_dir, env, tmp_path / "uvicorn.log", health_path=spec.runtime.health_path)
    try:
        app.start()
    except LocalAppError as exc:
        pytest.fail(f"{mutant.name} did not start: {exc}")
    try:
        outcomes = run_suite(
            spec.tests_dir, Target(base_url=app.base_url, env=env, source=app_dir)
        ).outcomes
    finally:
        app.stop()
    return score_items([i for i in spec.items if i.check == "contract"], outcomes)


@pytest.mark.parametrize(
    "name", [*BASICS_HOLES, *BASICS_NO_HOLE, *(n for n, m in BASICS.items() if m.kind == "variant")]
)
def test_basics_holes_cost_their_item(name: str, tmp_path: Path) -> None:
    mutant = BASICS[name]
    _check(name, mutant.kind, _basics_items(mutant, tmp_path), BASICS_HOLES)
