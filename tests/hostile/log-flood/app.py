import json
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GREETING = os.environ.get("GREETING", "?")
import threading


def flood():
    line = "x" * 1000
    while True:
        print(line, flush=False)


threading.Thread(target=flood, daemon=True).start()


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
            self.send_json({"greeting": GREETING})
            return
        self.send_response(404)
        self.end_headers()


ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
