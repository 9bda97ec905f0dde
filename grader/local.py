"""An app run as a local process instead of a container (tests, benchmarks, and the basis of a
Docker-free local mode): migrate, serve on a free port, wait for health, restart on the same port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

from grader.core import free_port
from grader.run import wait_healthy

MIGRATE = [sys.executable, "-m", "alembic", "upgrade", "head"]
SERVE = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "{port}"]


class LocalAppError(Exception):
    """The app did not migrate or become healthy; the message carries its log tail."""


class LocalApp:
    def __init__(self, app_dir: Path, env: dict[str, str], log_path: Path, *,
                 serve: list[str] = SERVE, health_path: str = "/health", deadline: float = 60.0) -> None:
        self.app_dir, self.env, self.log_path = app_dir, env, log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.serve = [part.replace("{port}", str(self.port)) for part in serve]
        self.health_path, self.deadline = health_path, deadline
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        env.pop("PYTHONPATH", None)  # the app imports its own packages only
        return env

    def migrate(self, command: list[str] = MIGRATE) -> None:
        done = subprocess.run(command, cwd=self.app_dir, env=self._env(), capture_output=True,
                              text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise LocalAppError(f"{' '.join(command[-3:])} failed in {self.app_dir}:\n{done.stderr[-3000:]}")

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.serve, cwd=self.app_dir, env=self._env(),
                                        stdout=self._log, stderr=subprocess.STDOUT)
        reason = wait_healthy(self.base_url + self.health_path, self.deadline, alive=self._alive)
        if reason:
            raise LocalAppError(f"{self.app_dir.name}: {reason}\n{self.log_tail()}")

    def _alive(self) -> str | None:
        assert self.process is not None
        code = self.process.poll()
        return None if code is None else f"the app exited with code {code} before answering"

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
