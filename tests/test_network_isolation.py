"""Nothing of a grade reaches the grading host (issue 11 §2). A listener the test starts on the host
counts what reaches it from a grader network (isolated or not), from a run's Postgres and from a
build's RUN step: nothing may. The controls — a plain Docker network (internal or not) and a plain
`docker build` — run the same probe and do reach it, so each test can fail."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest
from docker import DockerClient
from host_listener import PROBE, HostListener, host_addresses
from mini_assignment import make_submission

from grader import build, engine, firewall, services
from grader.assignment import load
from grader.core import GraderFault, Status

pytestmark = pytest.mark.docker

PYTHON = "python:3.11-slim"


@pytest.fixture
def listener() -> Iterator[HostListener]:
    with HostListener() as it:
        yield it


@pytest.fixture
def run_id(docker_client: DockerClient) -> Iterator[str]:
    """A run of this test's own: only its objects are removed afterwards."""
    run_id = uuid.uuid4().hex[:12]
    yield run_id
    engine.cleanup(docker_client, run_id)


def _gateway(client: DockerClient, network: str) -> str:
    return str(client.networks.get(network).attrs["IPAM"]["Config"][0]["Gateway"])


def _probe_from_network(
    client: DockerClient, network: str, run_id: str, port: int, hosts: list[str]
) -> str:
    container = client.containers.run(
        PYTHON,
        ["python", "-c", PROBE, str(port), *hosts],
        network=network,
        labels=engine.labels(run_id),
        detach=True,
    )
    try:
        container.wait(timeout=60)
        return str(container.logs().decode())
    finally:
        container.remove(force=True)


def _all_blocked(out: str, *hosts: str) -> None:
    out = " ".join(out.split())  # a build log may break a line where the engine's stream did
    for host in hosts:
        assert f"{host} blocked" in out, out
    assert "reached" not in out, out


@pytest.mark.parametrize("internal", [True, False], ids=["isolated", "published-ports"])
def test_a_grader_network_cannot_reach_the_host(
    docker_client: DockerClient, mini: Path, listener: HostListener, run_id: str, internal: bool
) -> None:
    """Its gateway, docker0's address, every address of the machine: all dropped, also on the
    routed network of `--published-ports` (the firewall, not `internal`, keeps the host out)."""
    svc = services.start(docker_client, load(mini), labels=engine.labels(run_id), internal=internal)
    try:
        # the addresses of the moment: grades beside this test add and remove bridges
        hosts = host_addresses()
        out = _probe_from_network(docker_client, svc.network.name, run_id, listener.port, hosts)
        _all_blocked(out, _gateway(docker_client, svc.network.name), *hosts)
    finally:
        svc.stop()
    assert listener.peers == []


def test_the_postgres_of_a_run_cannot_reach_the_host(
    docker_client: DockerClient, listener: HostListener, run_id: str
) -> None:
    svc = services.start(docker_client, load("fastapi-db-auth"), labels=engine.labels(run_id))
    try:
        hosts = [_gateway(docker_client, svc.network.name), *host_addresses()]
        # bash's /dev/tcp: the Postgres image has no Python
        script = (
            " ".join(
                f"(timeout 3 bash -c 'exec 3<>/dev/tcp/{h}/{listener.port}' "
                f"&& echo {h} reached || echo {h} blocked) &"
                for h in hosts
            )
            + " wait"
        )
        code, out = svc.postgres.get_wrapped_container().exec_run(["bash", "-c", script])
        assert code == 0
        _all_blocked(out.decode(), *hosts)
    finally:
        svc.stop()
    assert listener.peers == []


def test_a_build_step_cannot_reach_the_host(
    docker_client: DockerClient, tmp_path: Path, listener: HostListener, run_id: str
) -> None:
    """A RUN step of grader.build cannot; the same Dockerfile built by plain `docker build` (the
    default bridge) can. The build network keeps a route out (package registries)."""
    hosts = host_addresses()
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {PYTHON}\nCOPY probe.py /\n"
        # no default route would mean no package registry either
        "RUN python -c \"import sys; sys.exit(all(line.split()[1] != '00000000' "
        "for line in open('/proc/net/route').readlines()[1:]))\"\n"
        f"RUN python /probe.py {listener.port} {' '.join(hosts)}\n"
    )
    tag = f"api-grader-test/probe:{run_id}"
    try:
        built = build.build_image(
            docker_client,
            tmp_path,
            tag=tag,
            labels=engine.labels(run_id),
            timeout=120,
            no_cache=True,
        )
        assert built.ok, built.log
        _all_blocked(built.log, *hosts)
        assert listener.peers == []
        _image, logs = docker_client.images.build(
            path=str(tmp_path),
            tag=f"{tag}-control",
            nocache=True,
            rm=True,
            labels=engine.labels(run_id),
        )
        control = "".join(str(chunk.get("stream", "")) for chunk in logs)
        assert f"{hosts[0]} reached" in " ".join(control.split()), control
        assert listener.peers, "the plain docker build reached the listener"
    finally:
        for name in (tag, f"{tag}-control"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(name, force=True)


@pytest.mark.parametrize("internal", [True, False], ids=["internal", "routed"])
def test_control_a_plain_docker_network_reaches_the_host(
    docker_client: DockerClient, listener: HostListener, run_id: str, internal: bool
) -> None:
    """The same probe on a network the grader did not make gets through, `internal` or not."""
    network = docker_client.networks.create(
        f"api-grader-test-{run_id}",
        driver="bridge",
        internal=internal,
        labels=engine.labels(run_id),
    )
    out = _probe_from_network(docker_client, network.name, run_id, listener.port, [])
    assert f"{_gateway(docker_client, network.name)} reached" in out, out
    assert listener.peers


def test_the_rules_are_in_place() -> None:
    assert firewall.check() == []
    assert build.BUILD_BRIDGE.startswith(firewall.BRIDGE_PREFIX)


def test_an_isolated_grade_refuses_without_the_rules(
    monkeypatch: pytest.MonkeyPatch, mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    """Before anything of the student's is built or started, with the command that fixes it."""
    from grader.pipeline import grade

    monkeypatch.setattr(firewall, "check", lambda: [f"iptables: no chain {firewall.CHAIN}"])
    result = grade(
        submission_path=make_submission(tmp_path / "ok"), assignment=mini, out=tmp_path / "out"
    )
    assert result.status is Status.NOT_GRADED
    assert firewall.FIX in result.reason
    assert "build" not in result.timings
    checked = grade(submission_path=make_submission(tmp_path / "own"), assignment=mini,
                    out=tmp_path / "own-out", shield_host=False)  # a self-check of one's own code
    assert checked.score == 100, checked.reason


def test_without_root_the_rules_cannot_be_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(GraderFault, match="needs root"):
        firewall.require()
