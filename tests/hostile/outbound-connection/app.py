"""Phones home: tries to reach a listener on the grading host — at every address named in
targets.json (written by tests/test_hostile.py: the listener's port and the host's addresses) and
at its own network's gateway. It answers /hello correctly only if it could NOT get out."""

import json
import os
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class H(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_json(self, body, status=200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self.send_json({"status": "ok"})
        if self.path == "/hello":
            PROBED.wait(8)
            self.send_json({"greeting": "online" if ONLINE.is_set() else GREETING})
            return
        self.send_response(404)
        self.end_headers()


ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
