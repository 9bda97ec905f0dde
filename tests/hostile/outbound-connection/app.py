"""Phones home: tries to reach a listener on the grading host — at every address named in
targets.json (written by tests/test_hostile.py: the listener's port and the host's addresses) and
at its own network's gateway. It answers /hello correctly only if it could NOT get out."""

import json
import os
import socket
import struct
import threading

from stub_server import Hello, serve

GREETING = os.environ.get("GREETING", "?")
ONLINE = threading.Event()
PROBED = threading.Event()
LOCK = threading.Lock()


def gateways():
    """A default route's gateway, or the first address of a subnet without one (internal)."""
    with open("/proc/net/route") as fh:
        for line in fh.read().splitlines()[1:]:
            fields = line.split()
            dest, gateway, mask = (int(fields[i], 16) for i in (1, 2, 7))
            yield socket.inet_ntoa(struct.pack("<I", gateway or (dest & mask) + (1 << 24)))


def attempt(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        ONLINE.set()
        result = "reachable"
    except OSError:
        result = "blocked"
    with LOCK:
        print(f"outbound connection to {host}:{port}: {result}", flush=True)


def probe():
    try:
        with open("targets.json") as fh:
            targets = json.load(fh)
    except OSError:
        print("outbound probe: no targets.json, nothing to try", flush=True)
        PROBED.set()
        return
    hosts = {*targets["hosts"], *gateways()}
    threads = [threading.Thread(target=attempt, args=(h, targets["port"])) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    PROBED.set()


threading.Thread(target=probe, daemon=True).start()


class H(Hello):
    def hello(self):
        PROBED.wait(8)
        self.answer(200, {"greeting": "online" if ONLINE.is_set() else GREETING})


serve(H)
