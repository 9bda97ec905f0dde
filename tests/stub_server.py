"""Small HTTP stand-ins for apps: served on loopback in a thread (unit tests without Docker), and
the server the hostile corpus's apps share (tests/hostile/corpus.py copies this file into each
app's build context; there it runs on python:3.11-slim, so the standard library only)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    """A quiet handler with a JSON answer helper."""

    def answer(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass

    def health(self) -> bool:
        """Answer the health path (200 `{"status": "ok"}`) and say so; False for any other path."""
        if self.path != "/health":
            return False
        self.answer(200, {"status": "ok"})
        return True


class Hello(Handler):
    """The `mini` assignment's two routes: GET /health is ok, GET /hello answers `hello()`, any
    other path 404 without a body."""

    def do_GET(self) -> None:
        if self.health():
            return
        if self.path == "/hello":
            self.hello()
            return
        self.send_response(404)
        self.end_headers()

    def hello(self) -> None:
        raise NotImplementedError


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served on 127.0.0.1 (a free port) while the block runs; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def serve(handler: type[BaseHTTPRequestHandler], port: int = 8000) -> None:
    """`handler` served on every interface until the process ends (an app in its container)."""
    ThreadingHTTPServer(("0.0.0.0", port), handler).serve_forever()
