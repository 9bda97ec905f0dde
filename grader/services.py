"""Stage 3: the services a submission runs beside — a private network and, if the assignment
asks for one, a fresh Postgres (testcontainers) reachable from the app by the alias `db`.

Postgres runs in the app's sandbox (limits, no capabilities) and the app never gets its superuser:
each database (the app's, and each one `Services.create_database` adds) belongs to a role of its
own that can log in to that database alone. The superuser only creates roles and databases; the
grader reads a database as its owner, so a student's views, triggers and functions never run with
more rights than the student's role."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import docker.errors
from docker import DockerClient
from docker.models.networks import Network as DockerNetwork
from testcontainers.core.network import Network

from grader import engine, firewall
from grader.assignment import Assignment
from grader.core import LABEL, GraderFault
from grader.engine import ENGINE_ERRORS
from grader.run import Limits, sandbox

DB_ALIAS = "db"
DEFAULT_POSTGRES_IMAGE = "postgres:15"
SUPERUSER = "grader"
# The server writes only to memory (tmpfs), never to the engine's disk: a student's role that
# inserts without end fills its own tmpfs ("No space left on device": its statement fails) and
# nothing else. The WAL has a tmpfs of its own, so full tables never stop the server itself.
DATA_DIR = "/pg/data"
WAL_DIR = "/pg/wal"
POSTGRES_TMPFS = {
    # Sticky and open to all (like /tmp): the image's postgres user makes its own 0700 directory
    # inside, whatever its uid (100 in ours, 999 in the official image). Paths no image has: on
    # a directory of the image, the engine gives the tmpfs that directory's mode instead.
    DATA_DIR: "size=512m,mode=1777",
    WAL_DIR: "size=160m,mode=1777",  # max_wal_size below, with room for a checkpoint's lag
    "/var/run/postgresql": "size=8m,mode=1777",  # the socket and its lock file
    "/tmp": "size=16m,mode=1777",  # the entrypoint's password file
}
# tmpfs pages count against the container's memory: the tmpfs sizes above plus a server process
# per connection, the shared buffers, and what a student's queries ask for (any role may raise
# its own work_mem) all stay inside these.
POSTGRES_LIMITS = Limits(memory="1792m", cpus=1.0, pids=256)
CONNECTION_LIMIT = 50  # per database role: room for an app's pools, not for every server slot
# Only a superuser may change these. A throwaway database: durability buys nothing here, and
# skipping fsync makes initdb, migrations and every insert faster (the official image and ours
# both pass the command's `-c` to the server).
POSTGRES_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "64MB",
    "min_wal_size": "32MB",  # a checkpoint well before the WAL's tmpfs fills
    "temp_file_limit": "256MB",  # per process: sorts and hashes that spill fail instead
}


@dataclass
class Services:
    network: Network | DockerNetwork  # a spare's is the engine's own model
    postgres: Any = None  # testcontainers PostgresContainer, or a spare's (`_Adopted`)
    # ${...} values for the app's env: what the app sees (inside the network)
    values: dict[str, str] = field(default_factory=dict)
    # the app's database from the grader's side, as the app's own role (its owner)
    grader_database_url: str | None = None
    # the superuser on the server's `postgres` database, from the grader's side: only to create
    # roles and databases, never to read what a student made
    admin_url: str | None = None

    def create_database(self, name: str) -> tuple[str, str]:
        """A new empty database on the same server, owned by a new role of its own (which the
        app's role cannot log in as): (URL for apps inside the network, URL for the grader)."""
        assert self.admin_url is not None
        role, password = own_database(self.admin_url, name)
        server = urlsplit(self.admin_url).netloc.rpartition("@")[2]
        return _url(role, password, f"{DB_ALIAS}:5432", name), _url(role, password, server, name)

    def for_app(self, assignment: Assignment) -> Services:
        """The app's `${...}` values and, on a server, its own database: these services made the
        run's (a failure stops them)."""
        self.values = assignment.runtime.randoms()
        if self.admin_url is None:
            return self
        try:
            app_url, self.grader_database_url = self.create_database("app")
        except GraderFault:
            self.stop()
            raise
        self.values["postgres_url"] = app_url
        return self

    def stop(self) -> None:
        """On the way out of a grade: never raises (the run's cleanup and the reaper retry)."""
        if self.postgres is not None:
            with contextlib.suppress(*ENGINE_ERRORS):
                self.postgres.stop()
        with contextlib.suppress(*ENGINE_ERRORS, AssertionError):
            self.network.remove()


def start(
    client: DockerClient,
    assignment: Assignment,
    *,
    labels: dict[str, str],
    postgres_image: str = DEFAULT_POSTGRES_IMAGE,
    internal: bool = True,
) -> Services:
    """`internal`: the network has no route out (the app reaches only its Postgres and the grader,
    which talks to containers by their IP on the bridge). Off for engines whose container IPs the
    grader cannot reach (Docker Desktop): then ports are published on 127.0.0.1."""
    server = start_server(
        client,
        labels=labels,
        postgres=assignment.services.postgres,
        postgres_image=postgres_image,
        internal=internal,
    )
    return server.for_app(assignment)


def start_server(
    client: DockerClient,
    *,
    labels: dict[str, str],
    postgres: bool = True,
    postgres_image: str = DEFAULT_POSTGRES_IMAGE,
    internal: bool = True,
) -> Services:
    """The network and, if `postgres`, a ready Postgres server with no database of the app's yet
    (`Services.for_app` adds it): what `start` and a batch's spare (`start_spare`) share."""
    # an `agr…` bridge: the firewall keeps whatever arrives on it away from the host's services
    network = Network(
        docker_network_kw={
            "labels": labels,
            "driver": "bridge",
            "internal": internal,
            "options": {firewall.BRIDGE_OPTION: firewall.bridge_name()},
        }
    )
    try:
        network.create()
    except docker.errors.DockerException as exc:
        raise GraderFault(f"cannot create a Docker network: {exc}") from exc
    services = Services(network=network)
    if not postgres:
        return services
    password = secrets.token_hex(24)
    pg = _postgres(image=postgres_image, password=password, network=network.name, internal=internal)
    # The app's sandbox, as the image's `postgres` user: run as root, the entrypoint would need
    # CHOWN, FOWNER, SETUID and SETGID to hand the data directory over and drop to that user; it
    # makes its directories in the tmpfs mounts itself, so the server starts with no capability
    # at all. A read-only root: nothing of a run is ever written to the engine's disk.
    pg.with_network(network).with_network_aliases(DB_ALIAS).with_kwargs(
        labels=labels, read_only=True, **sandbox(POSTGRES_LIMITS, "postgres")
    )
    pg.tmpfs.update(POSTGRES_TMPFS)  # with_tmpfs_mount takes a size, not a mode
    pg.with_env("PGDATA", f"{DATA_DIR}/pgdata")
    pg.with_env("POSTGRES_INITDB_ARGS", f"--no-sync --waldir={WAL_DIR}/pg_wal")
    pg.with_command(" ".join(["postgres", *(f"-c {k}={v}" for k, v in POSTGRES_SETTINGS.items())]))
    services.postgres = pg
    try:
        client.images.get(postgres_image)
    except docker.errors.ImageNotFound:
        services.stop()
        raise GraderFault(
            f"the Postgres image {postgres_image!r} is not available locally; "
            "`grader images build-offline` builds one without a registry"
        ) from None
    try:
        pg.start()
    except Exception as exc:
        services.stop()
        raise GraderFault(f"Postgres did not start: {exc}") from exc
    services.admin_url = pg.admin_url()
    return services


READY_POLL = 0.1  # seconds between two attempts to log in to a starting Postgres
READY_LIMIT = 60.0  # seconds a Postgres may take to start


def _postgres(*, image: str, password: str, network: str, internal: bool) -> Any:
    """A testcontainers Postgres, ready when the grader can log in to it as it will (psycopg, from
    here, every 0.1 s) rather than when `docker exec psql` in the container can: each exec is a
    process started by the engine, ~0.1 CPU-s a poll on the cores the grades share."""
    import psycopg
    from testcontainers.community.postgres import PostgresContainer

    class Postgres(PostgresContainer):  # type: ignore[misc]
        def admin_url(self) -> str:
            if internal:
                server = f"{container_ip(self.get_wrapped_container(), network)}:5432"
            else:
                server = f"{self.get_container_host_ip()}:{self.get_exposed_port(5432)}"
            return _url(SUPERUSER, password, server, "postgres")

        def _connect(self) -> None:  # what testcontainers waits for once the container started
            deadline, url = time.monotonic() + READY_LIMIT, self.admin_url()
            while True:
                try:
                    with psycopg.connect(url, connect_timeout=5):
                        return
                except psycopg.OperationalError as exc:
                    self.get_wrapped_container().reload()
                    if self.get_wrapped_container().status != "running":
                        raise RuntimeError(f"Postgres stopped while starting: {exc}") from exc
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"Postgres not ready in {READY_LIMIT:g} s: {exc}"
                        ) from exc
                time.sleep(READY_POLL)

    return Postgres(
        image=image, username=SUPERUSER, password=password, dbname="postgres", driver=None
    )


# -- a batch's spares ------------------------------------------------------------------------------
# A batch starts the network and Postgres server of its next child's run ahead of time, labelled
# with that child's run id (and this label: the Postgres image it runs) but owned by the batch. The
# child, given the run id, takes them over (`adopt`); the run's cleanup removes them with the rest
# of the run, and the batch removes the spares it never handed out.
SPARE = f"{LABEL}.spare"


def start_spare(
    client: DockerClient, run_id: str, *, postgres_image: str = DEFAULT_POSTGRES_IMAGE
) -> Services:
    """A ready server on an internal network, for the grade that will run as `run_id`."""
    labels = {**engine.labels(run_id), SPARE: postgres_image}
    return start_server(client, labels=labels, postgres_image=postgres_image)


def adopt(
    client: DockerClient,
    assignment: Assignment,
    run_id: str,
    *,
    postgres_image: str = DEFAULT_POSTGRES_IMAGE,
    internal: bool = True,
) -> Services | None:
    """The spare a batch started for run `run_id`, with the app's database added; None when there
    is none that fits (then the grade starts its own)."""
    if not (internal and assignment.services.postgres):
        return None
    selector = {"label": [f"{LABEL}={run_id}", f"{SPARE}={postgres_image}"]}
    servers = client.containers.list(filters=selector)  # running ones only
    networks = client.networks.list(filters=selector)
    if len(servers) != 1 or len(networks) != 1 or not networks[0].attrs.get("Internal"):
        return None
    server, network = servers[0], networks[0]
    env = dict(e.partition("=")[::2] for e in server.attrs["Config"]["Env"] or [])
    address = f"{container_ip(server, network.name)}:5432"
    spare = Services(
        network=network,
        postgres=_Adopted(server),
        admin_url=_url(SUPERUSER, env.get("POSTGRES_PASSWORD", ""), address, "postgres"),
    )
    return spare.for_app(assignment)


@dataclass
class _Adopted:
    """A spare's Postgres container, with what a grade asks of a testcontainers one."""

    container: Any

    def get_wrapped_container(self) -> Any:
        return self.container

    def stop(self) -> None:
        self.container.remove(force=True, v=True)


# Two sessions that change one catalog row at once (each REVOKE below rewrites the rows of
# `postgres` and `template1`) make Postgres fail one with "tuple concurrently updated": a grade
# creates its databases from several threads (the twin's, the migrations-alone run's).
_CATALOG = threading.Lock()


def own_database(admin_url: str, name: str) -> tuple[str, str]:
    """Create the database `name` and a new role that owns it and can do nothing else: log in, at
    most CONNECTION_LIMIT times at once, to this database alone — where it may create tables,
    migrate, add trusted extensions. `admin_url`: a superuser on the same (throwaway) server.
    Returns (role, password); a failure is a grader fault (the grader's own server)."""
    import psycopg
    from psycopg import sql

    role, password = f"{name}_{secrets.token_hex(6)}", secrets.token_hex(24)
    who, db = sql.Identifier(role), sql.Identifier(name)
    statements = [
        sql.SQL(
            "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            "NOBYPASSRLS CONNECTION LIMIT {}"
        ).format(who, password, CONNECTION_LIMIT),
        # The owner may create in the schema `public`: Postgres 15 gives it to the database's
        # owner (pg_database_owner), older servers let every role create there.
        sql.SQL("CREATE DATABASE {} OWNER {}").format(db, who),
        # CONNECT and TEMPORARY belong to PUBLIC on every new database: keep them for the owner
        # alone here, and for nobody on the server's own databases.
        sql.SQL("REVOKE ALL ON DATABASE {}, postgres, template1 FROM PUBLIC").format(db),
    ]
    try:
        with _CATALOG, psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            for statement in statements:
                conn.execute(statement)
    except psycopg.Error as exc:
        raise GraderFault(f"cannot create the database {name!r}: {exc}") from exc
    return role, password


def _url(user: str, password: str, server: str, database: str) -> str:
    """Names and passwords made here are plain [a-z0-9_]: nothing to quote."""
    return f"postgresql://{user}:{password}@{server}/{database}"


def container_ip(container: Any, network: str) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])
