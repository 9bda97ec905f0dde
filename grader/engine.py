"""Docker engine access and label-based cleanup, shared by the stages that touch Docker."""

from __future__ import annotations

import os

import docker
import docker.errors
from docker import DockerClient

from grader.core import LABEL, GraderFault

# testcontainers' reaper image cannot be pulled without a registry; the grader removes what it
# creates itself, by label.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


def connect(timeout: int = 120) -> DockerClient:
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise GraderFault(
            f"no Docker engine answers ({exc}). Start one (e.g. `sudo dockerd &`), "
            "or use `--runtime local` to grade without Docker."
        ) from exc
    return client


def labels(run_id: str) -> dict[str, str]:
    return {LABEL: run_id}


def cleanup(client: DockerClient, run_id: str | None = None) -> list[str]:
    """Remove the grader's containers, networks and volumes (of one run, or of every run)."""
    selector = f"{LABEL}={run_id}" if run_id else LABEL
    removed: list[str] = []
    for container in client.containers.list(all=True, filters={"label": selector}):
        try:
            container.remove(force=True, v=True)
            removed.append(f"container {container.name}")
        except docker.errors.NotFound:
            pass
    for network in client.networks.list(filters={"label": selector}):
        try:
            network.remove()
            removed.append(f"network {network.name}")
        except docker.errors.NotFound:
            pass
    for volume in client.volumes.list(filters={"label": selector}):
        try:
            volume.remove(force=True)
            removed.append(f"volume {volume.name}")
        except docker.errors.NotFound:
            pass
    return removed


def leftovers(client: DockerClient) -> list[str]:
    """Names of the grader-labelled containers and networks still present."""
    return [c.name for c in client.containers.list(all=True, filters={"label": LABEL})] + [
        n.name for n in client.networks.list(filters={"label": LABEL})
    ]


def tail(text: str, lines: int = 60, chars: int = 8000) -> str:
    kept = "\n".join(text.rstrip().splitlines()[-lines:])
    return kept[-chars:]
