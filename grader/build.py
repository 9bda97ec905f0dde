"""Stage 2: build the student's image from their Dockerfile, with a time limit and a capped log.

RUN steps run on the grader's build network, not Docker's default bridge: routed out like the
default bridge (package registries answer through the machine's network path), but an `agr…`
bridge, so the firewall (grader/firewall.py) keeps them away from the grading host's services."""

from __future__ import annotations

import collections
import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import requests
from docker import APIClient, DockerClient
from docker.utils import kwargs_from_env

from grader import firewall, logtext
from grader.core import GraderFault

LOG_LINES = 400  # build log lines kept (the report shows the tail)
BUILD_NETWORK = "api-grader-build"
# fixed, not from bridge_name(): a test that patches that to leave its app unshielded must not
# rename the build network's bridge when it happens to import this module first
BUILD_BRIDGE = f"{firewall.BRIDGE_PREFIX}-build"
# not grader.core.LABEL: the network belongs to no run, so no run's cleanup removes it
BUILD_NETWORK_LABEL = "api-grader.build-network"
GRADER_IMAGES = "api-grader"  # the grader's own repositories (submissions, references, rootfs)
# the classic builder's "Step 3/9 : RUN pip install …" (its count includes the grader's labels)
STEP = re.compile(r"^Step (\d+)/\d+ : (.*)$")
# the engine's answer when a FROM image is neither here nor pullable: no registry, no such image
PULL_FAILED = re.compile(
    r"pull access denied|manifest unknown|manifest for .* not found|repository does not exist|"
    r"no such host|dial tcp|lookup .*: |i/o timeout|connection refused|server misbehaving|"
    r"TLS handshake timeout|request canceled|Temporary failure in name resolution|"
    r"context deadline exceeded|unauthorized|toomanyrequests|No such image",
    re.I,
)
# a line that states an error: pip's "ERROR: …", "Error: pg_config executable not found.", apt's
# "E: Unable to locate package …", git's "fatal: …"
ERROR_LINE = re.compile(r"^(?:error|fatal|e)\s*:\s*\S", re.I)
# pip's summaries of an error it printed above: never the decisive line while a specific one exists
GENERIC_ERROR = re.compile(
    r"^error: [a-z0-9-]+$|failed building wheel|could not build wheels|"
    r"failed to build|command errored out|subprocess-exited-with-error",
    re.I,
)


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


def build_image(
    client: DockerClient,
    context: Path,
    *,
    tag: str,
    labels: dict[str, str],
    timeout: float = 600.0,
    no_cache: bool = False,
) -> BuildResult:
    network = build_network(client)
    # Same engine as `client` (both come from the environment: DOCKER_HOST, TLS settings).
    api = _CancellableAPI(
        **kwargs_from_env(), version=client.api.api_version, timeout=max(60, int(timeout) + 30)
    )
    lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
    step_output: collections.deque[str] = collections.deque(maxlen=LOG_LINES)  # the last step's
    state: dict[str, Any] = {"image": None, "error": None, "fault": None, "step": None}
    start = time.monotonic()

    def consume() -> None:
        try:
            stream = api.build(
                path=str(context),
                tag=tag,
                labels=labels,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                nocache=no_cache,
                network_mode=network,
            )
            for chunk in stream:
                if "stream" in chunk:
                    for line in str(chunk["stream"]).rstrip("\n").splitlines():
                        lines.append(line)
                        if STEP.match(line):
                            state["step"] = line
                            step_output.clear()
                        elif not line.startswith((" ---> ", "Removing intermediate container")):
                            step_output.append(line)
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
        reason = failure(
            str(state["error"]),
            state["step"],
            "\n".join(step_output),
            missing_bases(client, context),
            lambda: available_bases(client),
        )
        return BuildResult(False, None, log, seconds, reason)
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
            options = {
                firewall.BRIDGE_OPTION: BUILD_BRIDGE,
                "com.docker.network.bridge.enable_icc": "false",
            }
            try:
                network = client.networks.create(
                    BUILD_NETWORK,
                    driver="bridge",
                    options=options,
                    labels={BUILD_NETWORK_LABEL: "1"},
                    check_duplicate=True,
                )
            except docker.errors.APIError:  # another grade created it meanwhile
                network = client.networks.get(BUILD_NETWORK)
    except docker.errors.DockerException as exc:
        raise GraderFault(f"cannot create the build network {BUILD_NETWORK}: {exc}") from exc
    if (network.attrs.get("Options") or {}).get(firewall.BRIDGE_OPTION) != BUILD_BRIDGE:
        raise GraderFault(
            f"the Docker network {BUILD_NETWORK} is not the grader's (its bridge "
            f"is not {BUILD_BRIDGE}): remove it, the next build recreates it"
        )
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


def failure(
    error: str,
    step: str | None,
    output: str,
    missing: list[str],
    available: Callable[[], list[str]],
) -> str:
    """Why a build failed, in one line: a base image this machine does not have (`missing`: those
    the Dockerfile names literally), named with the ones it has (`available`); else the failing
    step (`step`: the builder's "Step N/M : …" line), its exit code and the line of its output
    that says why."""
    match = STEP.match(step or "")
    number, instruction = match.groups() if match else ("", "")
    keyword = instruction.split(" ", 1)[0].upper()
    if PULL_FAILED.search(error) and (keyword == "FROM" or (not number and missing)):
        # the failing FROM as the builder printed it, else as the Dockerfile names it (the one the
        # error names first: "pull access denied for python" leaves the tag out), else the error's
        pulled = _pulled_image(error)
        named = [
            _from_image(instruction) if keyword == "FROM" else "",
            *(m for m in missing if pulled and m.startswith(pulled)),
            *missing,
            pulled,
        ]
        image = next((n for n in named if n and "$" not in n), "")
        if image:
            bases = available()
            listed = ", ".join(bases[:12]) + (
                f" and {len(bases) - 12} more" if len(bases) > 12 else ""
            )
            return (
                f"docker build failed: the base image `{image}` is not available on the grading "
                f"machine; base images it has: {listed or 'none'}"
            )
    if not number:
        return f"docker build failed: {_last(error)}"
    where = f"step {number} `{_cut(instruction, 200)}`"
    code = re.search(r"returned a non-zero code: (\d+)|exit code: (\d+)", error)
    if code:
        return (
            f"docker build failed: {where} exited with code {code.group(1) or code.group(2)}: "
            f"{error_line(output) or _last(error)}"
        )
    return f"docker build failed: {where}: {_last(error)}"


def error_line(output: str) -> str:
    """The line of a failed step's output that says why: the last specific error line (pip's
    "ERROR: No matching distribution found for …", "Error: pg_config executable not found.", apt's
    "E: Unable to locate package …"), else the exception of a Python traceback, else the last line."""
    lines = [line.strip() for line in logtext.plain(output).splitlines() if line.strip()]
    stated = [line for line in lines if ERROR_LINE.match(line)]
    specific = [line for line in stated if not GENERIC_ERROR.search(line)]
    line = (
        (specific or stated or [""])[-1]
        or logtext.exception_line(output)
        or logtext.last_line(output)
    )
    return _cut(line, logtext.LINE_CAP)


def dockerfile_bases(text: str) -> list[str] | None:
    """The images the Dockerfile's FROM lines name (not `scratch`, not an earlier stage), with the
    global ARGs' defaults substituted; None when a FROM depends on a value only the build knows."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    bases: list[str] = []
    seen_from = False
    for raw in re.sub(r"\\\r?\n", " ", text).splitlines():
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].upper()
        if keyword == "ARG" and not seen_from and len(words) > 1:  # before the first FROM: global
            name, _, value = words[1].partition("=")
            args[name] = value.strip("\"'")
        elif keyword == "FROM":
            seen_from = True
            image = re.sub(
                r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)",
                lambda m: args.get(m.group(1) or m.group(3)) or m.group(2) or "",
                _from_image(raw),
            )
            if not image or "$" in image:
                return None
            if image.lower() != "scratch" and image.lower() not in stages:
                bases.append(image)
            if len(words) >= 4 and words[-2].lower() == "as":
                stages.add(words[-1].lower())
    return bases


def missing_bases(client: DockerClient, context: Path) -> list[str]:
    """The base images the submission's Dockerfile names literally that this engine does not have."""
    try:
        bases = dockerfile_bases(
            (context / "Dockerfile").read_text(encoding="utf-8", errors="replace")
        )
    except OSError:
        return []
    missing = []
    for image in bases or []:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
        except docker.errors.APIError:  # e.g. an invalid reference: the build's error says it
            continue
    return missing


def available_bases(client: DockerClient) -> list[str]:
    """The image tags this engine has that a Dockerfile can start FROM: all but the grader's own."""
    try:
        images = client.images.list()
    except docker.errors.DockerException:
        return []
    return sorted(
        {tag for image in images for tag in image.tags if not tag.startswith(GRADER_IMAGES)}
    )


def _from_image(instruction: str) -> str:
    """The image of `FROM [--platform=…] image [AS name]`."""
    words = [w for w in instruction.split()[1:] if not w.startswith("--")]
    return words[0] if words else ""


def _pulled_image(error: str) -> str:
    """The image an engine's pull error names, e.g. "manifest for python:latest not found"."""
    found = re.search(r"manifest for (\S+) not found|pull access denied for ([^\s,]+)", error)
    return (found.group(1) or found.group(2)) if found else ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _last(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else text[:300]
