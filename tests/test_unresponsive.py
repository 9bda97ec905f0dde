"""Apps that hold requests open, trickle or stream without end: every grade ends in bounded time,
graded, with the cause named, and leaves nothing running. Fuzzing is bounded the same way."""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from docker import DockerClient
from hostile import corpus
from mini_assignment import write_mini

from grader.checks.fuzz import run_fuzz
from grader.core import Guard, Status
from grader.engine import leftovers
from grader.pipeline import grade

pytestmark = pytest.mark.docker

SPEC = """\
openapi: 3.1.0
info: {title: mini, version: "1"}
paths:
  /hello:
    get:
      parameters:
        - {name: name, in: query, required: false, schema: {type: string, maxLength: 20}}
      responses:
        "200":
          description: a greeting
          content:
            application/json:
              schema:
                type: object
                required: [greeting]
                properties: {greeting: {type: string}}
"""


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini assignment with a spec for /hello and a fuzzing item: hundreds of requests."""
    spec = write_mini(tmp_path_factory.mktemp("specs") / "mini-fuzz")
    (spec / "openapi.yaml").write_text(SPEC)
    (spec / "assignment.yaml").write_text(
        textwrap.dedent("""
        id: mini-fuzz
        title: Mini greeting service, fuzzed
        runtime:
          port: 8000
          health_path: /health
          start_deadline: 8
          env: {GREETING: hello, SECRET: "${random_secret}"}
        fuzz: {max_examples: 100, stateful: false}
        categories:
          - {id: deploy, title: Deploy}
          - {id: api, title: API}
        items:
          - {id: builds, title: The image builds, category: deploy, points: 20, check: build}
          - {id: starts, title: The app starts, category: deploy, points: 30, check: start}
          - {id: hello, title: GET /hello greets, category: api, points: 30, check: contract}
          - {id: fuzz, title: Fuzzing finds no 5xx, category: api, points: 20, check: schemathesis,
             options: {checks: [not_a_server_error, response_schema_conformance]}}
    """)
    )
    return spec


@pytest.mark.parametrize(
    ("student", "cause", "stopped"),
    [  # cause: of GET /hello (and PUT /hello ...)
        ("holds-requests-open", "/hello did not answer within 10 s", True),
        ("trickles", "/hello did not answer within 10 s", True),
        ("endless-body", "/hello: the body exceeded 2 MB", False),
    ],
)
def test_graded_in_bounded_time_with_the_cause(
    fuzzed: Path,
    tmp_path: Path,
    docker_client: DockerClient,
    student: str,
    cause: str,
    stopped: bool,
) -> None:
    begin = time.monotonic()
    result = grade(
        submission_path=corpus.write(student, tmp_path / student),
        assignment=fuzzed,
        out=tmp_path / "out",
    )
    seconds = time.monotonic() - begin
    assert result.status is Status.GRADED, result.reason
    assert seconds < 120, result.timings
    items = {i.id: i for i in result.items}
    assert items["builds"].passed and items["starts"].passed
    assert items["hello"].points == 15 and items["fuzz"].points == 0  # 15: the test sending nothing
    hello = items["hello"].failures[0]
    assert (
        cause in hello.message
        and hello.exchange is not None
        and cause in (hello.exchange.error or "")
    )
    assert any(cause in o.message for o in items["fuzz"].failures), [
        o.message for o in items["fuzz"].failures
    ]
    if stopped:  # three timeouts in a row: the rest fail at once, and the report says so
        assert "the app stopped answering" in result.reason
        assert cause in result.reason
    assert cause in (tmp_path / "out" / "report.html").read_text()
    assert not leftovers(docker_client, runs=[result.run_id])


def test_the_checks_time_limit_ends_a_grade_with_its_reason(fuzzed: Path, tmp_path: Path) -> None:
    """All the checks' requests together get `deadline` seconds (here less than one request's
    timeout): past it, nothing more is sent; graded, with the limit named."""
    app = corpus.write("holds-requests-open", tmp_path / "app")
    result = grade(submission_path=app, assignment=fuzzed, deadline=3)
    assert result.status is Status.GRADED
    assert result.reason == "Requests to the app stopped: the checks' time limit of 3 s ran out."
    assert result.timings["checks"] < 10
    messages = [o.message for i in result.items for o in i.failures]
    assert any("got no answer before the checks' time limit of 3 s ran out" in m for m in messages)


class Endless(BaseHTTPRequestHandler):
    received = 0

    def log_message(self, *args: object) -> None:
        pass

    def parse_request(self) -> bool:  # every request, whatever its method
        type(self).received += 1
        return super().parse_request()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            while True:
                self.wfile.write(b" " * 65536)
        except OSError:
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def endless() -> Iterator[str]:
    httpd = Server(("127.0.0.1", 0), Endless)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fuzzing_reads_capped_bodies(endless: str, tmp_path: Path) -> None:
    """Every request of the fuzzer goes through the guard (the app got none it did not let
    through; some it let through are refused locally, e.g. a NUL in a header), each body is cut at
    the cap, and the operation fails with that cause."""
    (tmp_path / "openapi.yaml").write_text(SPEC)
    guard = Guard(origin=endless)
    begin = time.monotonic()
    report = run_fuzz(
        spec=tmp_path / "openapi.yaml",
        base_url=endless,
        seed=0,
        max_examples=5,
        checks=["not_a_server_error"],
        stateful=False,
        guard=guard,
    )
    assert time.monotonic() - begin < 60
    assert report.unanswered == {"GET /hello": "GET /hello: the body exceeded 2 MB"}
    assert 0 < Endless.received <= guard.sent
    failed = {
        o.name: o for o in report.outcomes("fuzz") if not o.passed
    }  # and 501s to other methods
    assert failed["GET /hello · no answer"].message == "GET /hello: the body exceeded 2 MB"
