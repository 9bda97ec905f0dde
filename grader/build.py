"""Stage 2: build the student's image from their Dockerfile, with a time limit and a capped log.

RUN steps run on the grader's build network, not Docker's default bridge: routed out like the
default bridge (package registries answer through the machine's network path), but an `agr…`
bridge, so the firewall (grader/firewall.py) keeps them away from the grading host's services."""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import requests
from docker import APIClient, DockerClient
from docker.utils import kwargs_from_env

from grader import firewall
from grader.core import GraderFault

LOG_LINES = 400  # build log lines kept (the report shows the tail)
BUILD_NETWORK = "api-grader-build"
BUILD_BRIDGE = firewall.bridge_name("build")
# not grader.core.LABEL: the network belongs to no run, so no run's cleanup removes it
BUILD_NETWORK_LABEL = "api-grader.build-network"


@dataclass
class BuildResult:
    ok: bool
    image: str | None
    log: str
    seconds: float
    reason: str = ""


class _CancellableAPI(APIClient):  # type: ignore[misc]
    """An APIClient that keeps the streaming build response, so a timeout can close it.

    Closing the connection makes the engine cancel the build (and kill its running step).
    """

    response: requests.Response | None = None

    def _stream_helper(self, response: requests.Response, decode: bool = False) -> Any:
        self.response = response
        return super()._stream_helper(response, decode=decode)


def build_image(client: DockerClient, context: Path, *, tag: str, labels: dict[str, str],
                timeout: float = 600.0, no_cache: bool = False) -> BuildResult:
    network = build_network(client)
    # Same engine as `client` (both come from the environment: DOCKER_HOST, TLS settings).
    api = _CancellableAPI(**kwargs_from_env(), version=client.api.api_version,
                          timeout=max(60, int(timeout) + 30))
    lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
    state: dict[str, Any] = {"image": None, "error": None, "fault": None}
    start = time.monotonic()

    def consume() -> None:
        try:
            stream = api.build(path=str(context), tag=tag, labels=labels, rm=True, forcerm=True,
                               pull=False, decode=True, nocache=no_cache, network_mode=network)
            for chunk in stream:
                if "stream" in chunk:
                    lines.extend(str(chunk["stream"]).rstrip("\n").splitlines())
                if "error" in chunk:
                    state["error"] = str(chunk["error"]).strip()
                    lines.append(state["error"])
                if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                    state["image"] = chunk["aux"]["ID"]
        except docker.errors.APIError as exc:  # e.g. Dockerfile parse errors
            state["error"] = exc.explanation or str(exc)
            lines.append(str(state["error"]))
        except (requests.RequestException, docker.errors.DockerException, OSError) as exc:
            state["fault"] = exc
        except Exception as exc:
            state["fault"] = exc

    worker = threading.Thread(target=consume, name="docker-build", daemon=True)
    worker.start()
    worker.join(timeout)
    timed_out = worker.is_alive()
    if timed_out:
        _hang_up(api.response)
        worker.join(30)
    api.close()
    seconds = time.monotonic() - start
    log = "\n".join(lines)
    if timed_out:
        return BuildResult(False, None, log, seconds, f"the build took longer than {timeout:.0f} s")
    if state["error"]:
        return BuildResult(False, None, log, seconds, f"docker build failed: {_last(state['error'])}")
    if state["fault"] is not None:
        raise GraderFault(f"lost the Docker engine during the build: {state['fault']}")
    if not state["image"]:
        try:
            state["image"] = client.images.get(tag).id
        except docker.errors.ImageNotFound:
            return BuildResult(False, None, log, seconds, "docker build produced no image")
    return BuildResult(True, tag, log, seconds)


def build_network(client: DockerClient) -> str:
    """The network every build's RUN steps use, created on first use and shared by builds. Its
    containers cannot reach each other (no inter-container traffic), so neither can two builds."""
    try:
        try:
            network = client.networks.get(BUILD_NETWORK)
        except docker.errors.NotFound:
            options = {firewall.BRIDGE_OPTION: BUILD_BRIDGE,
                       "com.docker.network.bridge.enable_icc": "false"}
            try:
                network = client.networks.create(BUILD_NETWORK, driver="bridge", options=options,
                                                 labels={BUILD_NETWORK_LABEL: "1"},
                                                 check_duplicate=True)
            except docker.errors.APIError:  # another grade created it meanwhile
                network = client.networks.get(BUILD_NETWORK)
    except docker.errors.DockerException as exc:
        raise GraderFault(f"cannot create the build network {BUILD_NETWORK}: {exc}") from exc
    if (network.attrs.get("Options") or {}).get(firewall.BRIDGE_OPTION) != BUILD_BRIDGE:
        raise GraderFault(f"the Docker network {BUILD_NETWORK} is not the grader's (its bridge "
                          f"is not {BUILD_BRIDGE}): remove it, the next build recreates it")
    return BUILD_NETWORK


def _hang_up(response: requests.Response | None) -> None:
    """Shut the build connection's socket down: that wakes the blocked reader (a plain close() from
    another thread does not) and makes the engine cancel the build."""
    if response is None:
        return
    conn = getattr(response.raw, "_connection", None) or getattr(response.raw, "_fp", None)
    sock = getattr(conn, "sock", None)
    if sock is None:
        fp = getattr(getattr(response.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _last(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else text[:300]
