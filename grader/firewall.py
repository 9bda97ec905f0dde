"""The host's own services are out of reach of the grader's networks.

Docker's `internal` networks only stop forwarding: a packet from a container addressed to the host
itself (its bridge's gateway, docker0's address, any address of the machine) is delivered through
the host's INPUT chain, where Docker adds nothing. So every bridge the grader creates is named
`agr…` (Docker's `com.docker.network.bridge.name` option), and one INPUT rule sends whatever
arrives on those bridges to the chain `API-GRADER-INPUT`, which accepts only the replies to
connections the host opened (the grader's requests to the app and to Postgres) and drops the rest.
Forwarded traffic (a build's route to a package registry) never passes INPUT and is not affected.

`grader setup` and `grader firewall install` install the rules (root, iptables and, when the
kernel has IPv6, ip6tables); an isolated grade checks them first and refuses to run without them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable

from grader.core import GraderFault

BRIDGE_PREFIX = "agr"  # every bridge the grader creates; iptables matches `agr+`
BRIDGE_OPTION = "com.docker.network.bridge.name"
CHAIN = "API-GRADER-INPUT"
FIX = "sudo grader firewall install"

_JUMP = ["-i", f"{BRIDGE_PREFIX}+", "-j", CHAIN]
_RULES = (["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"], ["-j", "DROP"])


def bridge_name(suffix: str | None = None) -> str:
    """A bridge interface name the rules match (Linux allows 15 characters)."""
    return f"{BRIDGE_PREFIX}-{suffix or secrets.token_hex(6)}"[:15]


def _tools() -> list[str]:
    """iptables, and ip6tables when the kernel answers it (a host without IPv6 needs no rule)."""
    if os.geteuid() != 0:
        raise GraderFault(
            "the grader's firewall (it keeps students' containers away from this host's "
            f"services) needs root to be checked or installed: `{FIX}`, then grade as root"
        )
    if shutil.which("iptables") is None:
        raise GraderFault(
            f"iptables not found: install it (`apt-get install iptables`), then `{FIX}`"
        )
    tools = ["iptables"]
    if shutil.which("ip6tables") and _iptables("ip6tables", "-S", "INPUT").returncode == 0:
        tools.append("ip6tables")
    return tools


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


def _problems(tool: str) -> list[str]:
    found: list[str] = []
    inside = _rules(tool, CHAIN)
    if inside is None:
        return [f"{tool}: no chain {CHAIN}"]
    if inside != list(_RULES):
        found.append(f"{tool}: {CHAIN} is not 'accept replies, drop the rest'")
    entry = _rules(tool, "INPUT") or []
    if not entry or entry[0] != _JUMP:
        # first: an earlier ACCEPT in INPUT would let the grader's traffic through
        found.append(f"{tool}: INPUT does not start with `-i {BRIDGE_PREFIX}+ -j {CHAIN}`")
    return found


def check() -> list[str]:
    """What is missing from the rules (empty: installed). GraderFault when it cannot be told."""
    return [p for tool in _tools() for p in _problems(tool)]


def require() -> None:
    """Refuse an isolated grade on a host whose services the grader's networks can reach."""
    missing = check()
    if missing:
        raise GraderFault(
            "this host's services are not shielded from the grader's networks "
            f"({'; '.join(missing)}): run `{FIX}` (or `grader setup`) first"
        )


def install(log: Callable[[str], None] = print) -> None:
    """Install the rules; idempotent (rules already in place are left untouched)."""
    for tool in _tools():
        if not _problems(tool):
            continue
        if _rules(tool, CHAIN) is None:
            _must(tool, "-N", CHAIN)
        # the drop goes first and the old content after it, so the chain never lets traffic
        # through while it is rebuilt
        _must(tool, "-I", CHAIN, "1", *_RULES[1])
        _must(tool, "-I", CHAIN, "1", *_RULES[0])
        while len(_rules(tool, CHAIN) or []) > len(_RULES):
            _must(tool, "-D", CHAIN, str(len(_RULES) + 1))
        _must(tool, "-I", "INPUT", "1", *_JUMP)
        entry = _rules(tool, "INPUT") or []
        for index in sorted(
            (i + 1 for i, rule in enumerate(entry) if rule == _JUMP and i), reverse=True
        ):
            _must(tool, "-D", "INPUT", str(index))
        log(f"{tool}: INPUT drops what arrives on {BRIDGE_PREFIX}+ bridges, except replies")
    missing = check()
    if missing:
        raise GraderFault(f"the grader's firewall rules did not take: {'; '.join(missing)}")
    log("the grader's firewall rules are in place")
