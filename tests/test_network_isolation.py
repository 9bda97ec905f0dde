"""Nothing of a grade reaches the grading host (issue 11 §2). A listener the test starts on the host
counts what reaches it from a grader network (isolated or not), from a run's Postgres and from a
build's RUN step: nothing may. The controls — a plain Docker network (internal or not) and a plain
`docker build` — run the same probe and do reach it, so each test can fail. The same for the
machine's LAN: a network namespace the test makes stands for a machine there."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
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


# In the LAN's namespace: HostListener on a free port; prints the port, then (once its stdin
# closes) the addresses that connected.
LAN_LISTENER = """
import sys
sys.path.insert(0, sys.argv[1])
from host_listener import HostListener
with HostListener() as listener:
    print(listener.port, flush=True)
    sys.stdin.read()
    print(" ".join(listener.peers), flush=True)
"""


@pytest.fixture
def lan() -> Iterator[tuple[str, list[str]]]:
    """A machine on the grading host's LAN: a network namespace behind a veth pair, routed from
    the host, with an address in each private range the firewall drops (10/8, 172.16/12,
    192.168/16, carrier-grade NAT, link-local as the cloud's metadata service). Yields
    (namespace, its addresses); all of it goes with the namespace."""
    tag = f"{random.randrange(256)}"
    name = f"agr-test-lan-{uuid.uuid4().hex[:6]}"
    here, there = f"vl{uuid.uuid4().hex[:10]}", f"vr{uuid.uuid4().hex[:10]}"
    link = f"10.213.{tag}"
    extra = [f"172.16.213.{tag}", f"192.168.213.{tag}", f"100.64.213.{tag}", f"169.254.213.{tag}"]
    steps = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", name],
        ["ip", "addr", "add", f"{link}.1/30", "dev", here],
        ["ip", "link", "set", here, "up"],
        ["ip", "-n", name, "addr", "add", f"{link}.2/30", "dev", there],
        *(["ip", "-n", name, "addr", "add", f"{a}/32", "dev", there] for a in extra),
        ["ip", "-n", name, "link", "set", there, "up"],
        ["ip", "-n", name, "route", "add", "default", "via", f"{link}.1"],
        *(["ip", "route", "add", f"{a}/32", "via", f"{link}.2"] for a in extra),
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, text=True)
        yield name, [f"{link}.2", *extra]
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)  # its veth,
        subprocess.run(["ip", "link", "del", here], capture_output=True, check=False)  # its routes


@contextlib.contextmanager
def _listening_in(namespace: str) -> Iterator[tuple[int, list[str]]]:
    """(port, who connected: filled when the block ends)."""
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            namespace,
            sys.executable,
            "-c",
            LAN_LISTENER,
            str(Path(__file__).parent),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    peers: list[str] = []
    try:
        port = int(proc.stdout.readline())
        yield port, peers
    finally:
        out, _ = proc.communicate(timeout=30)
        peers += out.split()


def test_a_build_step_cannot_reach_the_lan(
    docker_client: DockerClient, tmp_path: Path, lan: tuple[str, list[str]], run_id: str
) -> None:
    """A RUN step of grader.build reaches no address of the LAN machine (forwarded traffic, which
    INPUT does not see); a plain `docker build` of the same probe reaches every one."""
    namespace, addresses = lan
    (tmp_path / "probe.py").write_text(PROBE)
    tag = f"api-grader-test/lan-probe:{run_id}"
    try:
        with _listening_in(namespace) as (port, peers):
            (tmp_path / "Dockerfile").write_text(
                f"FROM {PYTHON}\nCOPY probe.py /\nRUN python /probe.py {port} {' '.join(addresses)}\n"
            )
            built = build.build_image(
                docker_client,
                tmp_path,
                tag=tag,
                labels=engine.labels(run_id),
                timeout=120,
                no_cache=True,
            )
        assert built.ok, built.log
        _all_blocked(built.log, *addresses)
        assert peers == []
        with _listening_in(namespace) as (port, peers):
            (tmp_path / "Dockerfile").write_text(
                f"FROM {PYTHON}\nCOPY probe.py /\nRUN python /probe.py {port} {' '.join(addresses)}\n"
            )
            _image, logs = docker_client.images.build(
                path=str(tmp_path), tag=f"{tag}-control", nocache=True, rm=True, forcerm=True
            )
            control = " ".join("".join(str(chunk.get("stream", "")) for chunk in logs).split())
        for address in addresses:
            assert f"{address} reached" in control, control
        assert peers, "the plain docker build reached the LAN listener"
    finally:
        for name in (tag, f"{tag}-control"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(name, force=True)


ALLOW_LIST = textwrap.dedent("""
    import json, subprocess, sys
    from pathlib import Path
    from grader import firewall
    from grader.core import GraderFault

    tmp = Path(sys.argv[1])
    firewall.ALLOW_FILE, firewall.DAEMON_FILE = tmp / "allow", tmp / "missing.json"
    (tmp / "resolv.conf").write_text("nameserver 10.9.9.9\\nnameserver 127.0.0.53\\nnameserver 9.9.9.9\\n")
    firewall.RESOLV_FILES = (tmp / "resolv.conf",)

    def rules(tool, chain):
        return subprocess.run([tool, "-S", chain], capture_output=True, text=True).stdout.splitlines()

    found = {"before": firewall.check()}
    firewall.install(allow=["10.20.0.0/16", "fd12::/16", "192.168.5.7"])
    found["installed"] = firewall.check()
    found["file"] = firewall.ALLOW_FILE.read_text().split()
    found["v4"] = rules("iptables", firewall.FORWARD_CHAIN)
    found["v6"] = rules("ip6tables", firewall.FORWARD_CHAIN)
    found["docker-user"] = rules("iptables", firewall.DOCKER_USER)
    found["forward"] = rules("iptables", "FORWARD")
    firewall.install()  # no --allow: the stored list stays
    found["kept"] = rules("iptables", firewall.FORWARD_CHAIN) == found["v4"]
    firewall.ALLOW_FILE.write_text("10.20.0.0/16\\n")  # the list changed, the rules did not
    found["stale"] = firewall.check()
    firewall.install()
    found["reinstalled"] = firewall.check()
    subprocess.run(["iptables", "-I", firewall.FORWARD_CHAIN, "1", "-j", "RETURN"], check=True)
    subprocess.run(["iptables", "-D", firewall.DOCKER_USER, "1"], check=True)
    found["tampered"] = firewall.check()
    try:
        firewall.install(allow=["10.0.0.300/8"])
    except GraderFault as exc:
        found["invalid"] = str(exc)
    print(json.dumps(found))
""")


def test_the_allow_list_and_the_check(tmp_path: Path) -> None:
    """Install and check in a network namespace of their own (this host's rules stay as they
    are): allowed networks and the engine's private resolvers (DNS only) go before the drops, a
    list changed since the rules were installed or a rule added by hand is a problem."""
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", ALLOW_LIST, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert f"iptables: no chain {firewall.FORWARD_CHAIN}" in found["before"]
    assert found["installed"] == [] and found["reinstalled"] == []
    assert found["file"] == ["10.20.0.0/16", "fd12::/16", "192.168.5.7/32"]
    chain = f"-A {firewall.FORWARD_CHAIN}"
    assert found["v4"] == [
        f"-N {firewall.FORWARD_CHAIN}",
        f"{chain} -o agr+ -j RETURN",
        f"{chain} -d 10.9.9.9/32 -p udp -m udp --dport 53 -j RETURN",
        f"{chain} -d 10.9.9.9/32 -p tcp -m tcp --dport 53 -j RETURN",
        f"{chain} -d 10.20.0.0/16 -j RETURN",
        f"{chain} -d 192.168.5.7/32 -j RETURN",
        *(f"{chain} -d {n} -j DROP" for n in firewall.PRIVATE["iptables"]),
    ]
    assert found["v6"] == [
        f"-N {firewall.FORWARD_CHAIN}",
        f"{chain} -o agr+ -j RETURN",
        f"{chain} -d fd12::/16 -j RETURN",
        *(f"{chain} -d {n} -j DROP" for n in firewall.PRIVATE["ip6tables"]),
    ]
    assert found["docker-user"][1] == f"-A DOCKER-USER -i agr+ -j {firewall.FORWARD_CHAIN}"
    assert found["forward"][1] == "-A FORWARD -j DOCKER-USER"
    assert found["kept"]
    assert [p.split(":")[0] for p in found["stale"]] == ["iptables", "ip6tables"]  # fd12::/16 went
    assert (
        "does not drop exactly the private networks (allow list: 10.20.0.0/16" in found["stale"][0]
    )
    assert len(found["tampered"]) == 2, found["tampered"]
    assert "not a network" in found["invalid"]


def test_ip6tables_is_required_when_the_kernel_has_ipv6(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing or broken ip6tables is a problem (IPv6 traffic would pass unchecked), unless the
    kernel has no IPv6."""
    iptables = shutil.which("iptables")
    assert iptables is not None
    (tmp_path / "iptables").symlink_to(iptables)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert firewall.IPV6.exists(), "this host has IPv6: the test needs it"
    assert firewall.check() == [
        "ip6tables: not found, and the kernel has IPv6 (`apt-get install iptables`)"
    ]
    with pytest.raises(GraderFault, match="did not take: ip6tables: not found"):
        firewall.install()
    (tmp_path / "ip6tables").write_text(
        "#!/bin/sh\necho 'cannot initialize: no kernel support' >&2\nexit 3\n"
    )
    (tmp_path / "ip6tables").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/bin:/usr/bin")  # the script's shell
    assert firewall.check() == ["ip6tables: does not work (cannot initialize: no kernel support)"]
    monkeypatch.setattr(firewall, "IPV6", tmp_path / "no-if_inet6")
    assert firewall.check() == []


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
    checked = grade(
        submission_path=make_submission(tmp_path / "own"),
        assignment=mini,
        out=tmp_path / "own-out",
        shield_host=False,
    )  # a self-check of one's own code
    assert checked.score == 100, checked.reason


def test_without_root_the_rules_cannot_be_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(GraderFault, match="needs root"):
        firewall.require()
