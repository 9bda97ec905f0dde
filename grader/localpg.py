"""A throwaway local PostgreSQL cluster: for the test suite and for the grader's local mode.

    with LocalPostgres() as pg:
        url = pg.create_database("app")   # postgresql://postgres@127.0.0.1:PORT/app

It runs the server binaries of the machine (`/usr/lib/postgresql/*/bin`, or PATH) in a temporary
directory, listening on a free port of 127.0.0.1 (and a Unix socket inside that directory),
with `trust` authentication and the superuser `postgres`. PostgreSQL refuses to run as root:
as root the cluster runs as an unprivileged user (`postgres` when it exists, else `nobody`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from grader.core import GraderFault, free_port

SUPERUSER = "postgres"
START_TIMEOUT = 60.0  # seconds
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")


def find_bin_dir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres (the newest major version first)."""
    candidates: list[Path] = []
    env_dir = os.environ.get("PG_BIN_DIR")
    if env_dir:
        candidates.append(Path(env_dir))

    def major(path: Path) -> int:
        version = path.parent.name.split(".")[0]
        return int(version) if version.isdigit() else 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)  # /usr/local/bin/pg_ctl may be a symlink
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in _SERVER_TOOLS):
            return directory
    return None


def available() -> bool:
    return find_bin_dir() is not None


class LocalPostgres:
    """A PostgreSQL cluster in a temporary directory, stopped and deleted by `stop()`."""

    def __init__(self, *, start_timeout: float = START_TIMEOUT, run_as: str | None = None) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise GraderFault(
                "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and PATH); "
                "install Debian's `postgresql` package, or name a server with --database-url"
            )
        self.bin_dir: Path = bin_dir
        self.start_timeout = start_timeout
        self.port: int = 0
        self._uid: int | None = None
        self._gid: int | None = None
        if os.geteuid() == 0:
            user = run_as or _unprivileged_user()
            entry = pwd.getpwnam(user)
            self._uid, self._gid = entry.pw_uid, entry.pw_gid
        self.base_dir: Path = Path(tempfile.mkdtemp(prefix="api-grader-pg-"))
        self.data_dir: Path = self.base_dir / "data"
        self.socket_dir: Path = self.base_dir
        self.log_file: Path = self.base_dir / "postgres.log"
        self._running = False
        try:
            if self._uid is not None and self._gid is not None:
                os.chown(self.base_dir, self._uid, self._gid)
            self._initdb()
            self._start()
        except BaseException:
            self.stop()
            raise

    # --- public API -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The superuser's URL to the `postgres` maintenance database."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self._run(
            [
                str(self.bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-T",
                "template0",
                "-E",
                "UTF8",
                name,
            ],
            what=f"createdb {name}",
        )
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self._run(
            [
                str(self.bin_dir / "dropdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "--if-exists",
                "--force",
                name,
            ],
            what=f"dropdb {name}",
        )

    def stop(self) -> None:
        """Stop the server (if it runs) and delete its directory. Safe to call twice."""
        if self._running:
            with contextlib.suppress(GraderFault, OSError, subprocess.SubprocessError):
                self._run(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "stop",
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "immediate",
                        "-w",
                        "-t",
                        "30",
                    ],
                    what="pg_ctl stop",
                )
            self._running = False
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def __enter__(self) -> LocalPostgres:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- internals --------------------------------------------------------------------------

    def _run(self, args: Sequence[str], *, what: str, timeout: float = 120.0) -> str:
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "PGCONNECT_TIMEOUT": "5"}
        env.pop("PGPASSWORD", None)
        try:
            completed = subprocess.run(
                list(args),
                cwd=self.base_dir,  # the unprivileged user must be able to enter its cwd
                env=env,
                user=self._uid,
                group=self._gid,
                extra_groups=[] if self._uid is not None else None,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GraderFault(f"{what}: timed out after {timeout:.0f} s") from exc
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).strip()[-2000:]
            raise GraderFault(f"{what} failed (exit {completed.returncode}): {output}")
        return completed.stdout

    def _initdb(self) -> None:
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth=trust",
                "--no-sync",
            ],
            what="initdb",
        )

    def _start(self) -> None:
        last_error: GraderFault | None = None
        for _ in range(5):  # the free port may be taken between choosing it and binding it
            self.port = free_port()
            options = " ".join(
                [
                    f"-p {self.port}",
                    "-c listen_addresses=127.0.0.1",
                    f"-c unix_socket_directories='{self.socket_dir}'",
                    "-c fsync=off",  # throwaway data: durability buys nothing here
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=200",
                ]
            )
            try:
                self._run(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "start",
                        "-D",
                        str(self.data_dir),
                        "-l",
                        str(self.log_file),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        str(int(self.start_timeout)),
                    ],
                    what="pg_ctl start",
                    timeout=self.start_timeout + 10,
                )
            except GraderFault as exc:
                last_error = exc
                if "already in use" in self.log_tail() or "could not bind" in self.log_tail():
                    self.log_file.unlink(missing_ok=True)
                    continue
                raise GraderFault(f"{exc}\n{self.log_tail()}") from exc
            self._running = True
            self._wait_ready()
            return
        raise GraderFault(f"PostgreSQL could not bind a port: {last_error}")

    def _wait_ready(self) -> None:
        """`pg_ctl -w` already waited; confirm over TCP, as clients will connect, with a deadline."""
        pg_isready = self.bin_dir / "pg_isready"
        if not os.access(pg_isready, os.X_OK):
            found = shutil.which("pg_isready")
            if found is None:
                return
            pg_isready = Path(found)
        deadline = time.monotonic() + self.start_timeout
        while True:
            completed = subprocess.run(
                [
                    str(pg_isready),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    SUPERUSER,
                    "-d",
                    "postgres",
                    "-t",
                    "2",
                ],
                capture_output=True,
                check=False,
            )
            if completed.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise GraderFault(
                    f"PostgreSQL not ready after {self.start_timeout:.0f} s\n{self.log_tail()}"
                )
            time.sleep(0.1)  # a poll interval, not a fixed wait


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise GraderFault("running as root and neither user `postgres` nor `nobody` exists")
