"""The reference's own tests run against a REAL PostgreSQL (never SQLite).

    TEST_DATABASE_URL=postgresql://USER:PASSWORD@HOST:PORT/DB pytest

The database is wiped: the tests run `alembic downgrade base` then `alembic upgrade head` on it.
"""

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
SECRET_KEY = "test-" + secrets.token_hex(32)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TEST_DATABASE_URL:
        return
    skip = pytest.mark.skip(
        reason="TEST_DATABASE_URL is not set: these tests need a real, disposable PostgreSQL "
        "database (postgresql://USER:PASSWORD@HOST:PORT/DB); it will be wiped"
    )
    for item in items:
        item.add_marker(skip)


def alembic(*args: str, database_url: str = TEST_DATABASE_URL) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, check=True)


@pytest.fixture(scope="session")
def migrated() -> None:
    alembic("downgrade", "base")
    alembic("upgrade", "head")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_app(env: dict[str, str], port: int, log: IO[bytes] | int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> httpx.Response:
    """The first answer from `url`; fails if the app exits or does not answer in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=10)
        except httpx.TransportError:
            if process.poll() is not None:
                pytest.fail(f"the app exited with code {process.returncode}")
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not answer within {timeout} s")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def client(migrated: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The app, served by uvicorn as in production, and an HTTP client for it."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("app") / "uvicorn.log"
    with log_path.open("wb") as log:
        process = start_app(
            {
                "DATABASE_URL": TEST_DATABASE_URL,
                "SECRET_KEY": SECRET_KEY,
                "ACCESS_TOKEN_EXPIRE_MINUTES": "30",
            },
            port,
            log,
        )
        try:
            health = wait_for(f"http://127.0.0.1:{port}/health", process)
            assert health.status_code == 200, health.text
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                yield http
        finally:
            process.terminate()
            process.wait(timeout=15)


class User:
    def __init__(self, client: httpx.Client, email: str, password: str, data: dict[str, Any]):
        self.client = client
        self.email = email
        self.password = password
        self.id: int = data["id"]
        self.data = data
        self._token: str | None = None

    @property
    def token(self) -> str:
        if self._token is None:
            response = self.client.post(
                "/token", data={"username": self.email, "password": self.password}
            )
            assert response.status_code == 200, response.text
            self._token = response.json()["access_token"]
        return self._token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def make_user(client: httpx.Client) -> Any:
    def make(email: str | None = None, password: str = "correct horse battery") -> User:
        email = email or unique_email()
        response = client.post("/users/", json={"email": email, "password": password})
        assert response.status_code == 201, response.text
        return User(client, email, password, response.json())

    return make


@pytest.fixture
def user(make_user: Any) -> User:
    return make_user()


@pytest.fixture
def other(make_user: Any) -> User:
    return make_user()
