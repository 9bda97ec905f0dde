"""The host's own services, its LAN and the cloud's metadata are out of reach of the grader's
networks.

Docker's `internal` networks only stop forwarding: a packet from a container addressed to the host
itself (its bridge's gateway, docker0's address, any address of the machine) is delivered through
the host's INPUT chain, where Docker adds nothing. So every bridge the grader creates is named
`agr…` (Docker's `com.docker.network.bridge.name` option), and one INPUT rule sends whatever
arrives on those bridges to the chain `API-GRADER-INPUT`, which accepts only the replies to
connections the host opened (the grader's requests to the app and to Postgres) and drops the rest.

The build network is routed out (package registries), so what a build's RUN step sends elsewhere
is forwarded: through FORWARD, where Docker consults `DOCKER-USER` before its own rules (it creates
that chain and never flushes it). A rule at its top sends what arrives on `agr+` to the chain
`API-GRADER-FORWARD`, which drops private and link-local destinations — the machine's LAN, a
cloud's metadata service (169.254.169.254), carrier-grade NAT (VPNs such as Tailscale), IPv6
unique-local and link-local — except traffic between the grader's own bridges (an app and its
Postgres; Docker's rules after it keep networks apart), DNS to the resolvers the engine hands to
containers (this engine asks them from the container's network namespace), and the networks of
the allow list (`grader firewall install --allow CIDR`, e.g. a university's package mirror on the
LAN), kept in `ALLOW_FILE` so a check compares the rules with it.

`grader setup` and `grader firewall install` install the rules (root, iptables and, when the
kernel has IPv6, ip6tables — then a missing or failing ip6tables is a problem); an isolated grade
checks them first and refuses to run without them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from grader.core import GraderFault

logger = logging.getLogger(__name__)
BRIDGE_PREFIX = "agr"  # every bridge the grader creates; iptables matches `agr+`
BRIDGE_OPTION = "com.docker.network.bridge.name"
CHAIN = "API-GRADER-INPUT"
FORWARD_CHAIN = "API-GRADER-FORWARD"
DOCKER_USER = "DOCKER-USER"
ALLOW_FILE = Path("/etc/api-grader/firewall-allow")  # one network (CIDR) a line
FIX = "sudo grader firewall install"
PRIVATE = {
    "iptables": (
        "169.254.0.0/16",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
    ),
    "ip6tables": ("fe80::/10", "fc00::/7"),
}
# where the engine finds the resolvers it gives containers (systemd-resolved's real list when
# /etc/resolv.conf names only its local stub), and its own setting
RESOLV_FILES = (Path("/etc/resolv.conf"), Path("/run/systemd/resolve/resolv.conf"))
DAEMON_FILE = Path("/etc/docker/daemon.json")
IPV6 = Path("/proc/net/if_inet6")  # present when the kernel has IPv6

_INPUT_JUMP = ["-i", f"{BRIDGE_PREFIX}+", "-j", CHAIN]
_INPUT_RULES = (
    ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
    ["-j", "DROP"],
)
_FORWARD_JUMP = ["-i", f"{BRIDGE_PREFIX}+", "-j", FORWARD_CHAIN]
_TO_DOCKER_USER = ["-j", DOCKER_USER]


def bridge_name(suffix: str | None = None) -> str:
    """A bridge interface name the rules match (Linux allows 15 characters)."""
    return f"{BRIDGE_PREFIX}-{suffix or secrets.token_hex(6)}"[:15]


def _tools() -> list[str]:
    """iptables, and ip6tables when the kernel has IPv6 (a host without it needs no rule)."""
    if os.geteuid() != 0:
        raise GraderFault(
            "the grader's firewall (it keeps students' containers away from this host's "
            f"services) needs root to be checked or installed: `{FIX}`, then grade as root"
        )
    if shutil.which("iptables") is None:
        raise GraderFault(
            f"iptables not found: install it (`apt-get install iptables`), then `{FIX}`"
        )
    return ["iptables", "ip6tables"] if IPV6.exists() else ["iptables"]


def _unusable(tool: str) -> str:
    """Why `tool` cannot be used ("" when it can): only ip6tables may be missing or broken."""
    if shutil.which(tool) is None:
        return f"{tool}: not found, and the kernel has IPv6 (`apt-get install iptables`)"
    done = _iptables(tool, "-S", "INPUT")
    if done.returncode != 0:
        return f"{tool}: does not work ({done.stderr.strip()[-200:]})"
    return ""


def _iptables(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [tool, "-w", *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraderFault(f"`{tool}` failed: {exc}") from exc


def _must(tool: str, *args: str) -> None:
    done = _iptables(tool, *args)
    if done.returncode != 0:
        raise GraderFault(f"`{tool} {' '.join(args)}` failed: {done.stderr.strip()[-300:]}")


def _rules(tool: str, chain: str) -> list[list[str]] | None:
    """The rules of `chain` as argument lists (without `-A chain`); None when it does not exist."""
    done = _iptables(tool, "-S", chain)
    if done.returncode != 0:
        return None
    return [line.split()[2:] for line in done.stdout.splitlines() if line.startswith("-A ")]


# -- what FORWARD must hold ----------------------------------------------------------------------


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise GraderFault(f"not a network (CIDR): {text!r}") from exc


def allowed() -> list[str]:
    """The allow list installed last (`ALLOW_FILE`): networks builds may reach in private ranges."""
    try:
        lines = ALLOW_FILE.read_text().split()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise GraderFault(f"cannot read the firewall's allow list {ALLOW_FILE}: {exc}") from exc
    return [str(_network(line)) for line in lines]


def _resolvers() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The DNS servers the engine gives containers: its `dns` setting, else the host's."""
    try:
        dns = [str(server) for server in json.loads(DAEMON_FILE.read_text()).get("dns") or []]
    except (OSError, ValueError, AttributeError):
        dns = []
    for path in () if dns else RESOLV_FILES:
        with contextlib.suppress(OSError):
            words = [line.split() for line in path.read_text().splitlines()]
            dns += [w[1] for w in words if len(w) > 1 and w[0] == "nameserver"]
    found = set()
    for server in dns:
        with contextlib.suppress(ValueError):
            found.add(ipaddress.ip_address(server.split("%")[0]))  # fe80::1%eth0: no zone
    return {address for address in found if not address.is_loopback}


def _forward_rules(tool: str, allow: Sequence[str]) -> list[list[str]]:
    """API-GRADER-FORWARD's rules, in the form `iptables -S` prints them."""
    private = [ipaddress.ip_network(n) for n in PRIVATE[tool]]
    version = private[0].version
    rules = [["-o", f"{BRIDGE_PREFIX}+", "-j", "RETURN"]]
    resolvers = [a for a in _resolvers() if a.version == version and any(a in n for n in private)]
    for address in sorted(resolvers):
        to = ["-d", f"{address}/{address.max_prefixlen}"]
        rules += [[*to, "-p", p, "-m", p, "--dport", "53", "-j", "RETURN"] for p in ("udp", "tcp")]
    for text in allow:
        network = _network(text)
        if network.version == version:
            rules.append(["-d", str(network), "-j", "RETURN"])
    rules += [["-d", str(n), "-j", "DROP"] for n in private]
    return rules


# -- check and install ---------------------------------------------------------------------------


def _problems(tool: str, allow: Sequence[str]) -> list[str]:
    if tool != "iptables" and (unusable := _unusable(tool)):
        return [unusable]
    found: list[str] = []
    inside = _rules(tool, CHAIN)
    if inside is None:
        found.append(f"{tool}: no chain {CHAIN}")
    elif inside != list(_INPUT_RULES):
        found.append(f"{tool}: {CHAIN} is not 'accept replies, drop the rest'")
    # first: an earlier ACCEPT in INPUT would let the grader's traffic through
    if (_rules(tool, "INPUT") or [[]])[0:1] != [_INPUT_JUMP]:
        found.append(f"{tool}: INPUT does not start with `-i {BRIDGE_PREFIX}+ -j {CHAIN}`")
    forward = _rules(tool, FORWARD_CHAIN)
    if forward is None:
        found.append(f"{tool}: no chain {FORWARD_CHAIN}")
    elif forward != _forward_rules(tool, allow):
        found.append(
            f"{tool}: {FORWARD_CHAIN} does not drop exactly the private networks "
            f"(allow list: {', '.join(allow) or 'none'}, {ALLOW_FILE})"
        )
    if (_rules(tool, DOCKER_USER) or [[]])[0:1] != [_FORWARD_JUMP]:
        found.append(
            f"{tool}: {DOCKER_USER} does not start with `-i {BRIDGE_PREFIX}+ -j {FORWARD_CHAIN}`"
        )
    if (_rules(tool, "FORWARD") or [[]])[0:1] != [_TO_DOCKER_USER]:
        found.append(f"{tool}: FORWARD does not start with `-j {DOCKER_USER}`")
    return found


def check() -> list[str]:
    """What is missing from the rules (empty: installed). GraderFault when it cannot be told."""
    allow = allowed()
    return [p for tool in _tools() for p in _problems(tool, allow)]


def require() -> None:
    """Refuse an isolated grade on a host whose services the grader's networks can reach."""
    missing = check()
    if missing:
        raise GraderFault(
            "this host's services and network are not shielded from the grader's networks "
            f"({'; '.join(missing)}): run `{FIX}` (or `grader setup`) first"
        )


def _fill(tool: str, chain: str, rules: Sequence[list[str]]) -> None:
    """Make `chain` hold exactly `rules`. The new rules go in first and the old ones are deleted
    after them, so the chain never lets through more than either the old or the new rules."""
    current = _rules(tool, chain)
    if current == list(rules):
        return
    if current is None:
        _must(tool, "-N", chain)
    for rule in reversed(rules):
        _must(tool, "-I", chain, "1", *rule)
    while len(_rules(tool, chain) or []) > len(rules):
        _must(tool, "-D", chain, str(len(rules) + 1))


def _first(tool: str, chain: str, rule: list[str]) -> None:
    """Make `rule` the first rule of `chain` (made when missing), and its only copy there."""
    if _rules(tool, chain) is None:
        _must(tool, "-N", chain)
    if (_rules(tool, chain) or [[]])[0:1] != [rule]:
        _must(tool, "-I", chain, "1", *rule)
    entry = _rules(tool, chain) or []
    for index in sorted((i + 1 for i, r in enumerate(entry) if r == rule and i), reverse=True):
        _must(tool, "-D", chain, str(index))


def install(*, allow: Sequence[str] | None = None) -> None:
    """Install the rules; idempotent (rules already in place are left untouched). `allow`: the
    networks builds may reach in private ranges, replacing the stored list (None keeps it)."""
    tools = _tools()
    if allow is not None:
        kept = list(dict.fromkeys(str(_network(text)) for text in allow))
        try:
            ALLOW_FILE.parent.mkdir(parents=True, exist_ok=True)
            ALLOW_FILE.write_text("".join(f"{n}\n" for n in kept))
        except OSError as exc:
            raise GraderFault(f"cannot write the allow list {ALLOW_FILE}: {exc}") from exc
    stored = allowed()
    for tool in tools:
        if tool != "iptables" and _unusable(tool):
            continue  # the check below says why
        _fill(tool, CHAIN, _INPUT_RULES)
        _first(tool, "INPUT", _INPUT_JUMP)
        _fill(tool, FORWARD_CHAIN, _forward_rules(tool, stored))
        # Docker makes DOCKER-USER and jumps to it first in FORWARD; where it does not (no
        # engine yet, or ip6tables off in the engine), the grader does the same, as Docker would
        _first(tool, DOCKER_USER, _FORWARD_JUMP)
        _first(tool, "FORWARD", _TO_DOCKER_USER)
        logger.info(
            f"{tool}: INPUT drops what arrives on {BRIDGE_PREFIX}+ bridges, except replies; "
            f"FORWARD drops their traffic to private networks"
            + (f" except {', '.join(stored)}" if stored else "")
        )
    missing = check()
    if missing:
        raise GraderFault(f"the grader's firewall rules did not take: {'; '.join(missing)}")
    logger.info("the grader's firewall rules are in place")
