"""A tiny assignment and submissions for it: fast Docker tests (stdlib server, no pip install)."""

from __future__ import annotations

import textwrap
from pathlib import Path

SERVER = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health" and "%(mode)s" != "no-health":
            body = {"status": "ok"}
        elif self.path == "/hello":
            body = {"greeting": os.environ.get("GREETING", "?") if "%(mode)s" != "wrong" else "bye"}
        else:
            self.send_response(404); self.end_headers(); return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

if "%(mode)s" == "needs-root":
    open("/state.txt", "w").write("written at start")  # only root may write here
print("serving as uid", os.getuid(), flush=True)
ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""


def write_mini(spec: Path, *, migrate: str | None = None) -> Path:
    """A tiny assignment with no database: GET /hello must answer the GREETING env var.
    `migrate` (a YAML flow list, e.g. '["python", "migrate.py"]'): a variant with a Postgres
    (the app gets DATABASE_URL) and that migrate command."""
    (spec / "tests").mkdir(parents=True)
    runtime = textwrap.dedent("""
        id: mini
        title: Mini greeting service
        runtime:
          port: 8000
          health_path: /health
          start_deadline: 8
          env: {GREETING: hello, SECRET: "${random_secret}"}
    """)
    if migrate:
        runtime = runtime.replace("}\n", ', DATABASE_URL: "${postgres_url}"}\n')
        runtime += f"  migrate: {migrate}\nservices: {{postgres: true}}\n"
    (spec / "assignment.yaml").write_text(
        runtime
        + textwrap.dedent("""
        categories:
          - {id: deploy, title: Deploy}
          - {id: api, title: API}
        items:
          - {id: builds, title: The image builds, category: deploy, points: 20, check: build}
          - {id: starts, title: The app starts, category: deploy, points: 30, check: start}
          - {id: hello, title: GET /hello greets, category: api, points: 50, check: contract}
    """)
    )
    (spec / "openapi.yaml").write_text(
        "openapi: 3.1.0\ninfo: {title: mini, version: '1'}\npaths: {}\n"
    )
    (spec / "tests" / "test_hello.py").write_text(
        textwrap.dedent('''
        import pytest
        from grader.testing import expect_equal, expect_status

        @pytest.mark.rubric("hello")
        def test_hello(client, target):
            """GET /hello answers the GREETING the grader passed."""
            r = client.get("/hello")
            expect_status(r, 200)
            expect_equal(r.json(), {"greeting": target.env["GREETING"]}, "GET /hello body")

        @pytest.mark.rubric("hello")
        def test_secret_is_random(target):
            """The grader passes a fresh secret."""
            assert len(target.env["SECRET"]) >= 32
    ''')
    )
    return spec


def make_submission(
    root: Path,
    *,
    mode: str = "ok",
    dockerfile_extra: str = "",
    cmd: str = '["python", "app.py"]',
    base: str = "python:3.11-slim",
    files: dict[str, str] | None = None,
) -> Path:
    """A submission of the mini assignment. `mode`: "ok", "wrong" (GET /hello answers another
    greeting), "needs-root" (writes to / at start), "no-health" (no /health route: 404).
    `files`: more files, copied into the image beside app.py."""
    root.mkdir(parents=True)
    (root / "app.py").write_text(SERVER % {"mode": mode})
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    copied = " ".join(["app.py", *(files or {})])
    (root / "Dockerfile").write_text(
        f"FROM {base}\nWORKDIR /srv\n{dockerfile_extra}COPY {copied} ./\nCMD {cmd}\n"
    )
    return root
