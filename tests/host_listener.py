"""A TCP listener on the grading host that records who connects (what a sandbox must never reach),
the host's addresses to aim at, and a probe that tries them all."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import threading
from types import TracebackType

# Tries each host given on the command line and the container's own gateway(s) (from its routing
# table: a default route's gateway, or a subnet's first address on a network without one), all at
# once, and prints "<host> reached" or "<host> blocked" for each.
PROBE = r"""
import socket, struct, sys, threading

def gateways():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        fields = line.split()
        dest, gateway, mask = (int(fields[i], 16) for i in (1, 2, 7))
        yield socket.inet_ntoa(struct.pack("<I", gateway or (dest & mask) + (1 << 24)))

lock = threading.Lock()

def attempt(host):
    try:
        socket.create_connection((host, int(sys.argv[1])), timeout=3).close()
        result = "reached"
    except OSError:
        result = "blocked"
    with lock:
        print(host, result, flush=True)

threads = [threading.Thread(target=attempt, args=(h,)) for h in {*sys.argv[2:], *gateways()}]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


class HostListener:
    """Accepts on every IPv4 address of the host, on a free port; `peers` lists who connected."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("0.0.0.0", 0), backlog=64)
        self.port: int = self._sock.getsockname()[1]
        self.peers: list[str] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, addr = self._sock.accept()
            except OSError:  # closed
                return
            self.peers.append(addr[0])
            conn.close()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> HostListener:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def docker0_address() -> str:
    """The gateway of Docker's default bridge (172.17.0.1 unless the engine is set otherwise)."""
    out = subprocess.run(
        ["docker", "network", "inspect", "bridge"], capture_output=True, text=True, check=True
    ).stdout
    ipam = json.loads(out)[0]["IPAM"]["Config"][0]
    # older engines report only the subnet: the gateway is its first address
    return str(ipam.get("Gateway") or ipaddress.ip_network(ipam["Subnet"])[1])


def host_addresses() -> list[str]:
    """Every IPv4 address of this machine outside loopback, docker0's first."""
    out = subprocess.run(
        ["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    found = [
        a["local"]
        for link in json.loads(out)
        for a in link.get("addr_info", [])
        if a.get("scope") == "global"
    ]
    first = docker0_address()
    return [first, *(a for a in found if a != first)]
