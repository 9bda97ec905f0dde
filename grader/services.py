"""Stage 3: the services a submission runs beside — a private network and, if the assignment
asks for one, a fresh Postgres (testcontainers) reachable from the app by the alias `db`."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import docker.errors
from docker import DockerClient
from testcontainers.core.config import testcontainers_config
from testcontainers.core.network import Network

from grader.assignment import Assignment
from grader.core import GraderFault, with_database

DB_ALIAS = "db"
DEFAULT_POSTGRES_IMAGE = "postgres:15"

# Poll readiness every 0.2 s (the default is 1 s), for at most 60 s.
testcontainers_config.sleep_time = 0.2
testcontainers_config.max_tries = 300


@dataclass
class Services:
    network: Network
    postgres: Any = None  # testcontainers PostgresContainer
    # ${...} values for the app's env: what the app sees (inside the network)
    values: dict[str, str] = field(default_factory=dict)
    grader_database_url: str | None = None  # the same database, from the grader's side

    def create_database(self, name: str) -> tuple[str, str]:
        """A second, empty database on the same server: (URL for apps, URL for the grader)."""
        import psycopg

        assert self.grader_database_url and "postgres_url" in self.values
        with psycopg.connect(self.grader_database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        app_url, grader_url = self.values["postgres_url"], self.grader_database_url
        return with_database(app_url, name), with_database(grader_url, name)

    def stop(self) -> None:
        if self.postgres is not None:
            with contextlib.suppress(docker.errors.DockerException):
                self.postgres.stop()
        with contextlib.suppress(docker.errors.DockerException, AssertionError):
            self.network.remove()


def start(client: DockerClient, assignment: Assignment, *, labels: dict[str, str],
          postgres_image: str = DEFAULT_POSTGRES_IMAGE, internal: bool = True) -> Services:
    """`internal`: the network has no route out (the app reaches only its Postgres and the grader,
    which talks to containers by their IP on the bridge). Off for engines whose container IPs the
    grader cannot reach (Docker Desktop): then ports are published on 127.0.0.1."""
    from testcontainers.community.postgres import PostgresContainer

    network = Network(docker_network_kw={"labels": labels, "driver": "bridge", "internal": internal})
    try:
        network.create()
    except docker.errors.DockerException as exc:
        raise GraderFault(f"cannot create a Docker network: {exc}") from exc
    services = Services(network=network, values=assignment.runtime.randoms())
    if not assignment.services.postgres:
        return services
    password = secrets.token_urlsafe(16)
    pg = PostgresContainer(image=postgres_image, username="grader", password=password,
                           dbname="app", driver=None)
    pg.with_network(network).with_network_aliases(DB_ALIAS).with_kwargs(labels=labels)
    # A throwaway database: durability buys nothing here, and skipping fsync makes initdb,
    # migrations and every insert faster (both the official image and ours honour these).
    pg.with_env("POSTGRES_INITDB_ARGS", "--no-sync")
    pg.with_command("postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
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
    services.values["postgres_url"] = f"postgresql://grader:{password}@{DB_ALIAS}:5432/app"
    if internal:
        ip = container_ip(pg.get_wrapped_container(), network.name)
        services.grader_database_url = f"postgresql://grader:{password}@{ip}:5432/app"
    else:
        services.grader_database_url = pg.get_connection_url(driver=None)
    return services


def container_ip(container: Any, network: str) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])
