"""Shared fixtures: a throwaway local PostgreSQL, and the reference solution / student template of
`fastapi-db-auth` served by uvicorn on it (each on its own fresh, migrated database).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from docker import DockerClient

from grader import localpg
from grader.core import Target

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = ROOT / "reference_solution" / "fastapi-db-auth"
TEMPLATE_DIR = ROOT / "student_template" / "fastapi-db-auth"
HEALTH_DEADLINE = 60.0  # seconds, as the assignment's runtime contract


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppProcess:
    """`python -m uvicorn app.main:app` in an app folder, restartable on the same port."""

    def __init__(self, app_dir: Path, env: dict[str, str], log_path: Path) -> None:
        self.app_dir = app_dir
        self.env = env
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def migrate(self) -> None:
        completed = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=self.app_dir, env={**os.environ, **self.env},
            capture_output=True, text=True, timeout=120, check=False,
        )
        if completed.returncode != 0:
            pytest.fail(f"alembic upgrade head failed in {self.app_dir}:\n{completed.stderr[-3000:]}")

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app",
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.app_dir, env={**os.environ, **self.env},
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = HEALTH_DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"{self.app_dir.name} exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                response = httpx.get(f"{self.base_url}/health", timeout=5)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return
                last = f"status {response.status_code}: {response.text[:200]}"
            time.sleep(0.1)  # poll interval
        pytest.fail(f"{self.app_dir} not healthy within {timeout:.0f} s ({last}):\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


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
        yield Target(base_url=app.base_url, env=dict(env), database_url=database_url,
                     restart=app.restart, databases={"migrated": migrated})
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
