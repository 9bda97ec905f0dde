"""Shared fixtures: a throwaway local PostgreSQL, and the reference solution / student template of
`fastapi-db-auth` served by uvicorn on it (each on its own fresh, migrated database).
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker import DockerClient

from grader import localpg
from grader.core import Target
from grader.local import MIGRATE, LocalApp, LocalAppError

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = ROOT / "reference_solution" / "fastapi-db-auth"
TEMPLATE_DIR = ROOT / "student_template" / "fastapi-db-auth"
HEALTH_DEADLINE = 60.0  # seconds, as the assignment's runtime contract


def pytest_configure(config: pytest.Config) -> None:
    from grader.config import configure

    configure()  # the settings the grader's entry points apply (testcontainers)


def benchmark_mutants() -> Any:
    """benchmarks/mutants.py, loaded by path once (benchmarks/ is not a package)."""
    name = "benchmark_mutants"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "mutants.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def docker_client() -> DockerClient:
    """A Docker engine with the base images; missing ones fail the test (CI must run it), never skip."""
    from grader import engine
    from grader.core import GraderFault

    try:
        client = engine.connect()
    except GraderFault as exc:
        pytest.fail(f"{exc} — run `grader setup` first")
    missing = [t for t in ("python:3.11-slim", "postgres:15") if not client.images.list(name=t)]
    if missing:
        pytest.fail(f"base images {missing} are missing — run `grader setup`")
    return client


@pytest.fixture(scope="session")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny no-database assignment of tests/mini_assignment.py, written to a spec folder."""
    from mini_assignment import write_mini

    return write_mini(tmp_path_factory.mktemp("specs") / "mini")


@pytest.fixture(scope="session")
def postgres() -> Iterator[localpg.LocalPostgres]:
    if not localpg.available():  # fail, never skip: CI must run these
        pytest.fail("PostgreSQL server binaries not found: run `grader setup --for-tests`")
    with localpg.LocalPostgres() as pg:
        yield pg


def fresh_database(pg: localpg.LocalPostgres, prefix: str) -> str:
    return pg.create_database(f"{prefix}_{uuid.uuid4().hex[:10]}")


class AppProcess(LocalApp):
    """grader.local.LocalApp whose failures fail the test that needs the app."""

    def migrate(self, command: list[str] = MIGRATE) -> None:
        try:
            super().migrate(command)
        except LocalAppError as exc:
            pytest.fail(str(exc))

    def start(self) -> None:
        try:
            super().start()
        except LocalAppError as exc:
            pytest.fail(str(exc))


def _serve(
    app_dir: Path, pg: localpg.LocalPostgres, prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    if not (app_dir / "app" / "main.py").is_file():
        pytest.fail(f"{app_dir} is missing")
    database_url = fresh_database(pg, prefix)
    env = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_hex(32),
        "ACCESS_TOKEN_EXPIRE_MINUTES": "30",
    }
    logs = tmp_path_factory.mktemp(prefix)
    migrated = fresh_database(pg, f"{prefix}_migrated")  # the migrations alone, as the grader does
    AppProcess(app_dir, {**env, "DATABASE_URL": migrated}, logs / "migrate.log").migrate()
    app = AppProcess(app_dir, env, logs / "uvicorn.log")
    app.migrate()
    app.start()
    try:
        yield Target(
            base_url=app.base_url,
            env=dict(env),
            database_url=database_url,
            restart=app.restart,
            databases={"migrated": migrated},
            source=app_dir,
        )
    finally:
        app.stop()


@pytest.fixture(scope="module")
def reference_app(
    postgres: localpg.LocalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    yield from _serve(REFERENCE_DIR, postgres, "reference", tmp_path_factory)


@pytest.fixture(scope="module")
def template_app(
    postgres: localpg.LocalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    yield from _serve(TEMPLATE_DIR, postgres, "template", tmp_path_factory)
