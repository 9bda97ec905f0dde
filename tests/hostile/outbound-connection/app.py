import json
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GREETING = os.environ.get("GREETING", "?")
import threading

ONLINE = threading.Event()
PROBED = threading.Event()


def probe():
    """Phone home: by IP (no DNS needed), then by name. Either way out counts."""
    for host in ("1.1.1.1", "pypi.org"):
        try:
            socket.create_connection((host, 443), timeout=3).close()
            ONLINE.set()
        except OSError:
            pass
        print(f"outbound connection to {host}:", "reachable" if ONLINE.is_set() else "blocked", flush=True)
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
