"""Stage 4: start the app container with the assignment's env contract and wait until healthy.

The wait is explicit: poll the health path until it answers 2xx, the container exits, or the
deadline passes — whichever comes first. An app that answered HTTP all along but never 2xx on the
health path keeps running (`Started.answered`): the checks run anyway, only the start item fails.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker.errors
import httpx
import requests
from docker import DockerClient
from docker.models.containers import Container
from docker.types import LogConfig

from grader import appclient, logtext
from grader.assignment import Runtime
from grader.core import GraderFault, Guard, Target, free_port
from grader.engine import ENGINE_ERRORS, tail


@dataclass(frozen=True)
class Limits:
    memory: str = "512m"
    cpus: float = 1.0
    pids: int = 256
    # the CPU weight when containers want more than the machine has (the engine's default 1024);
    # never a cap: an idle machine gives a low weight as much as a high one
    weight: int = 1024


@dataclass
class App:
    container: Container
    base_url: str
    runtime: Runtime
    network: str
    local_address: str | None = None  # what the grader's sockets bind to (see Target)
    healthy: bool = True  # False: its health check never passed, any HTTP answer counts as up

    def logs(self, lines: int = 60, chars: int = 8000) -> str:
        """The end of the app's output: at most `lines` lines and `chars` characters."""
        try:
            raw = self.container.logs(tail=max(lines, 200))
        except docker.errors.DockerException:
            return ""
        return tail(raw.decode("utf-8", "replace"), lines, chars)

    def restart(self) -> None:
        """Restart the container and wait until it is healthy again. A published port stays; an IP
        on the network may change (the engine re-allocates it), so `base_url` is read again."""
        self.container.restart(timeout=5)
        self.base_url = _base_url(self.container, self.runtime.port, self.network)
        health = wait_health(
            self.base_url + self.runtime.health_path,
            self.runtime.start_deadline,
            alive=lambda: _alive(self.container),
            local_address=self.local_address,
            any_answer=not self.healthy,
        )
        if health.reason:
            raise AssertionError(f"after a restart: {health.reason}")

    def target(self, env: dict[str, str], database_url: str | None) -> Target:
        """The app as the checks see it; its base_url follows restarts."""
        target = Target(
            base_url=self.base_url,
            env=env,
            database_url=database_url,
            local_address=self.local_address,
        )

        def restart() -> None:
            self.restart()
            target.base_url = self.base_url

        target.restart = restart
        target.processes = self.processes
        return target

    def processes(self) -> list[str]:
        """Command lines of the processes in the container, as the engine's `top` sees them."""
        try:
            top = self.container.top()
        except docker.errors.DockerException:
            return []
        column = top["Titles"].index("CMD") if "CMD" in top["Titles"] else -1
        return [str(row[column]) for row in top["Processes"]]

    def stop(self) -> None:
        with contextlib.suppress(*ENGINE_ERRORS):  # on the way out: the run's cleanup retries
            self.container.remove(force=True, v=True)


@dataclass
class Started:
    app: App | None
    seconds: float
    reason: str = ""  # why it is not healthy, with the decisive line of its log
    log: str = ""
    # not healthy, but its port answered HTTP (any status) and it still runs: `app` is usable
    answered: bool = False


def expand_env(runtime: Runtime, values: dict[str, str]) -> dict[str, str]:
    """Fill `${name}` placeholders of the runtime contract's env from the services' values."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise GraderFault(f"the assignment's env needs ${{{key}}}, which no service provides")
        return values[key]

    return {name: re.sub(r"\$\{(\w+)\}", fill, value) for name, value in runtime.env.items()}


NOBODY = "65534:65534"


def sandbox(limits: Limits, user: str | None) -> dict[str, object]:
    """Container settings every student container (and its Postgres) gets."""
    return dict(
        mem_limit=limits.memory,
        memswap_limit=limits.memory,
        nano_cpus=int(limits.cpus * 1e9),
        cpu_shares=limits.weight,
        pids_limit=limits.pids,
        security_opt=["no-new-privileges"],
        cap_drop=["ALL"],
        init=True,
        log_config=LogConfig(type="json-file", config={"max-size": "5m", "max-file": "1"}),
        **({"user": user} if user else {}),
    )


def _root_image(client: DockerClient, image: str) -> bool:
    user = (client.images.get(image).attrs.get("Config") or {}).get("User") or ""
    return user in {"", "root", "0", "0:0"}


def start_app(
    client: DockerClient,
    image: str,
    *,
    runtime: Runtime,
    env: dict[str, str],
    network: str,
    labels: dict[str, str],
    limits: Limits = Limits(),
    name: str | None = None,
    publish: bool = False,
    cancel: threading.Event | None = None,
) -> Started:
    """Start the app and wait until healthy. `publish`: reach it through a port on 127.0.0.1
    instead of its IP on `network`. `cancel`: once set, stop waiting (the app is left running,
    not healthy, for the caller to stop).

    An image that would run as root runs as nobody instead; if the app then exits before answering
    (it needed root, e.g. to write next to its code), it is started once more as the image says."""
    begin = time.monotonic()
    # a fixed host port: it must survive restarts (an ephemeral one is re-drawn)
    ports = {f"{runtime.port}/tcp": ("127.0.0.1", free_port())} if publish else {}
    user = NOBODY if _root_image(client, image) else None
    while True:
        try:
            container = client.containers.run(
                image,
                detach=True,
                name=name,
                environment=env,
                labels=labels,
                network=network,
                ports=ports,
                **sandbox(limits, user),
            )
        except docker.errors.APIError as exc:
            if exc.is_client_error():
                return Started(
                    None,
                    time.monotonic() - begin,
                    f"the container could not start: {exc.explanation}",
                )
            raise GraderFault(f"Docker could not start the app container: {exc}") from exc
        base_url = _base_url(container, runtime.port, network)
        app = App(
            container=container,
            base_url=base_url,
            runtime=runtime,
            network=network,
            local_address=_gateway(container, network, base_url),
        )
        health = wait_health(
            app.base_url + runtime.health_path,
            runtime.start_deadline,
            alive=functools.partial(_alive, container, cancel),
            local_address=app.local_address,
        )
        if user is not None and "exited" in health.reason:
            app.stop()
            user = None  # it may need root: one more try, as the image says
            continue
        seconds = time.monotonic() - begin
        if not health.reason:
            return Started(app, seconds)
        answered = health.status is not None and not health.stopped
        app.healthy = False
        # a long traceback's first line is further back than the log tail shown
        reason = with_log_line(
            health.reason, app.logs(lines=1000, chars=200_000), answered=answered
        )
        return Started(app, seconds, reason, app.logs(), answered)


def with_log_line(reason: str, log: str, *, answered: bool = False) -> str:
    """`reason` and the line of the app's log that says why: the last exception of a traceback,
    else (an app that never answered) the log's last line — e.g. "Uvicorn running on
    http://127.0.0.1:8000" says why nothing answered on 0.0.0.0. An app that answered gets only
    a traceback quoted: its last line is most likely a request it logged."""
    line = logtext.exception_line(log) or ("" if answered else logtext.last_line(log))
    if not line or line in reason:
        return reason
    return (
        f"{reason}; the log ends with: {line}"
        if line == logtext.last_line(log)
        else f"{reason}; the last error in the log: {line}"
    )


def run_once(
    client: DockerClient,
    image: str,
    *,
    command: list[str],
    env: dict[str, str],
    network: str,
    labels: dict[str, str],
    timeout: float = 120.0,
    limits: Limits = Limits(),
) -> tuple[int | None, str]:
    """Run exactly `command` in the image to completion: (exit code or None on timeout, log tail).
    The image's ENTRYPOINT is replaced by the command's program (an entrypoint that ignored its
    arguments would run instead of the command). As nobody when the image would run as root, and
    once more as the image says if that fails."""
    users = [NOBODY, None] if _root_image(client, image) else [None]
    for user in users:
        # the program as the entrypoint: unlike an empty one, no engine reads it as "the image's"
        container = client.containers.run(
            image,
            entrypoint=command[:1],
            command=command[1:],
            detach=True,
            environment=env,
            labels=labels,
            network=network,
            **sandbox(limits, user),
        )
        try:
            try:
                code: int | None = int(container.wait(timeout=timeout)["StatusCode"])
            except requests.exceptions.RequestException:  # the wait timed out
                code = None
            output = tail(container.logs(tail=100).decode("utf-8", "replace"))
        finally:
            container.remove(force=True, v=True)
        if code == 0:
            break
    return code, output


def _base_url(container: Container, port: int, network: str) -> str:
    """The published port on 127.0.0.1 if there is one, else the container's IP on `network`
    (stable across restarts)."""
    container.reload()
    bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
    if bindings:
        return f"http://127.0.0.1:{bindings[0]['HostPort']}"
    ip = (container.attrs["NetworkSettings"]["Networks"].get(network) or {}).get("IPAddress")
    return f"http://{ip}:{port}" if ip else "http://127.0.0.1:1"  # not running: the wait says why


def _gateway(container: Container, network: str, base_url: str) -> str | None:
    """The gateway of `network` (an address of this host's bridge to it) when the app is reached
    by its IP there; None when by a port published on 127.0.0.1."""
    if base_url.startswith("http://127.0.0.1:"):
        return None
    return (container.attrs["NetworkSettings"]["Networks"].get(network) or {}).get(
        "Gateway"
    ) or None


def _alive(container: Container, cancel: threading.Event | None = None) -> str | None:
    """None while running (and waited for); otherwise why it stopped."""
    if cancel is not None and cancel.is_set():
        return "no longer waited for"
    try:
        container.reload()
    except docker.errors.NotFound:
        return "the container disappeared"
    state = container.attrs["State"]
    if state["Status"] in {"created", "running", "restarting"}:
        return None
    if state.get("OOMKilled"):
        return "the app was killed: out of memory"
    return f"the app exited with code {state.get('ExitCode')} before answering"


@dataclass(frozen=True)
class Health:
    reason: str = ""  # "" when healthy
    status: int | None = None  # the last HTTP status the health path answered; None: never answered
    stopped: bool = False  # the app stopped (exited, was killed) before it was healthy


def wait_healthy(
    url: str, deadline: float, *, alive: Callable[[], str | None], local_address: str | None = None
) -> str:
    """`wait_health`'s reason: "" when healthy."""
    return wait_health(url, deadline, alive=alive, local_address=local_address).reason


def wait_health(
    url: str,
    deadline: float,
    *,
    alive: Callable[[], str | None],
    local_address: str | None = None,
    any_answer: bool = False,
) -> Health:
    """Poll `url` until it answers 2xx (`any_answer`: any HTTP status), the app stops or `deadline`
    seconds pass. Each poll may take 3 s in all and read 2 MB (grader.appclient); `local_address`
    as Target's."""
    end = time.monotonic() + deadline
    interval, last, status = 0.1, "no answer yet", None
    what = f"GET {httpx.URL(url).path or '/'}"
    with appclient.client(
        Guard(strikes=0, origin=url), local_address, timeout=httpx.Timeout(3.0, connect=1.0)
    ) as http:
        while True:
            try:
                response = http.get(url)
                if response.is_success or any_answer:
                    return Health(status=response.status_code)
                status = response.status_code
                last = f"{what} answered {status}, never 2xx"
            except appclient.NoAnswer as exc:
                last = str(exc)
            except httpx.HTTPError as exc:
                last = f"no answer ({type(exc).__name__})"
            gone = alive()
            if gone:
                return Health(gone, status, stopped=True)
            if time.monotonic() >= end:
                return Health(f"not healthy within {deadline:g} s: {last}", status)
            time.sleep(min(interval, max(0.0, end - time.monotonic())))
            # a poll costs a refused connection and a look at the container: the wait it saves
            # (an app healthy just after a long pause) is on every grade's critical path
            interval = min(interval * 1.5, 0.25)
