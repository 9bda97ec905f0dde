"""grader.checks.fuzz against a tiny in-process FastAPI app (no Docker).

Uses `requests` (a Schemathesis dependency), not httpx, so it runs wherever the fuzzer does.
"""

from __future__ import annotations

import dataclasses
import importlib
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from grader.checks.fuzz import FuzzReport, prepare, run_fuzz, run_fuzz_apart
from grader.core import GraderFault, Guard

SPEC = """\
openapi: 3.1.0
info: {title: fuzz test app, version: "1"}
paths:
  /square:
    get:
      operationId: square
      parameters:
        - {name: x, in: query, required: true, schema: {type: integer, minimum: -1000, maximum: 1000}}
      responses:
        "200":
          description: x squared
          content:
            application/json:
              schema:
                type: object
                required: [result]
                properties: {result: {type: integer}}
        "422": {$ref: "#/components/responses/Invalid"}
  /inverse:
    get:
      operationId: inverse
      parameters:
        - {name: x, in: query, required: true, schema: {type: integer, minimum: -1000, maximum: 1000}}
      responses:
        "200":
          description: 1/x
          content:
            application/json:
              schema:
                type: object
                required: [result]
                properties: {result: {type: number}}
        "422": {$ref: "#/components/responses/Invalid"}
  /notes:
    post:
      operationId: create_note
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [text]
              properties: {text: {type: string, minLength: 1, maxLength: 20}}
      responses:
        "201":
          description: created
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Note"}
          links:
            GetNote:
              operationId: get_note
              parameters: {note_id: "$response.body#/id"}
        "400":
          description: a body that is not JSON at all (FastAPI's own answer)
          content:
            application/json:
              schema: {type: object}
        "422": {$ref: "#/components/responses/Invalid"}
  /notes/{note_id}:
    get:
      operationId: get_note
      parameters:
        - {name: note_id, in: path, required: true, schema: {type: integer}}
      responses:
        "200":
          description: the note
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Note"}
        "404":
          description: no such note
          content:
            application/json:
              schema: {type: object}
        "422": {$ref: "#/components/responses/Invalid"}
  /me:
    get:
      operationId: me
      security: [{bearer: []}]
      responses:
        "200":
          description: the caller
          content:
            application/json:
              schema: {type: object, required: [name], properties: {name: {type: string}}}
        "401":
          description: no or bad token
          content:
            application/json:
              schema: {type: object}
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
  schemas:
    Note:
      type: object
      required: [id, text]
      properties: {id: {type: integer}, text: {type: string}}
  responses:
    Invalid:
      description: invalid input
      content:
        application/json:
          schema: {type: object}
"""

HOOKS = """\
import schemathesis

CALLS = []


@schemathesis.auth()
class TokenAuth:
    def get(self, case, context):
        CALLS.append(1)
        return "good-token"

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
"""


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=20)


def make_app() -> FastAPI:
    app = FastAPI()
    notes: dict[int, str] = {}

    @app.get("/square")
    def square(x: int = Query(ge=-1000, le=1000)) -> dict[str, int]:
        return {"result": x * x}

    @app.get("/inverse")
    def inverse(x: int = Query(ge=-1000, le=1000)) -> Any:
        if x == 0:  # the bug: a 500 the spec does not allow
            return JSONResponse(status_code=500, content={"detail": "division by zero"})
        return {"result": 1 / x}

    @app.post("/notes", status_code=201)
    def create_note(note: NoteIn) -> dict[str, Any]:
        note_id = len(notes) + 1
        notes[note_id] = note.text
        return {"id": note_id, "text": note.text}

    @app.get("/notes/{note_id}")
    def get_note(note_id: int) -> dict[str, Any]:
        if note_id not in notes:
            raise HTTPException(404, "Note not found")
        return {"id": note_id, "text": notes[note_id]}

    @app.get("/me")
    def me(authorization: str | None = Header(default=None)) -> dict[str, str]:
        if authorization != "Bearer good-token":
            raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
        return {"name": "fuzzer"}

    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test app did not start")
        time.sleep(0.02)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
]


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "openapi.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


@pytest.fixture
def hooks(tmp_path: Path) -> Path:
    path = tmp_path / "fuzz_hooks.py"
    path.write_text(HOOKS, encoding="utf-8")
    return path


def fuzz(spec: Path, hooks: Path | None, *, seed: int = 7, stateful: bool = True) -> FuzzReport:
    with serve(make_app()) as base_url:  # a fresh app each run: same behaviour, same findings
        return run_fuzz(
            spec=spec,
            base_url=base_url,
            seed=seed,
            max_examples=15,
            checks=CHECKS,
            stateful=stateful,
            hooks=hooks,
            env={},
            max_steps=6,
        )


def signature(report: FuzzReport) -> list[tuple[Any, ...]]:
    return [
        (
            f.key,
            f.message,
            f.exchange.method,
            f.exchange.url.split("/", 3)[-1],
            f.exchange.request_body,
            f.exchange.status,
            f.exchange.response_body,
        )
        for f in report.findings
    ]


def test_finds_the_bug_and_leaves_correct_operations_alone(spec: Path, hooks: Path) -> None:
    from schemathesis import auths

    report = fuzz(spec, hooks)

    keys = [f.key for f in report.findings]
    assert ("GET /inverse", "not_a_server_error", 500) in keys
    assert len(keys) == len(set(keys)), "findings are deduplicated on operation + check + status"
    assert keys == sorted(keys)
    assert {op for op, _, _ in keys} == {"GET /inverse"}, report.findings

    finding = next(
        f for f in report.findings if f.key == ("GET /inverse", "not_a_server_error", 500)
    )
    assert finding.exchange.status == 500
    assert "division by zero" in (finding.exchange.response_body or "")
    curl = finding.exchange.curl()
    assert curl.startswith("curl -i -X GET") and "/inverse?x=0" in curl
    assert "X-Schemathesis" not in curl
    outcome = finding.to_outcome("fuzz-no-server-errors")
    assert not outcome.passed and outcome.exchange is finding.exchange
    assert outcome.name == "GET /inverse · not_a_server_error · 500"

    assert set(report.operations) == {
        "GET /square",
        "GET /inverse",
        "POST /notes",
        "GET /notes/{note_id}",
        "GET /me",
    }
    for check in ("not_a_server_error", "status_code_conformance", "response_schema_conformance"):
        assert "GET /square" in report.clean(check)
        assert "GET /notes/{note_id}" in report.clean(check)
    assert report.failed["not_a_server_error"] == ["GET /inverse"]
    # the hooks' bearer token reached the app: /me answered 200 and honoured missing auth with 401
    assert "GET /me" in report.clean("ignored_auth")
    assert "GET /me" in report.clean("response_schema_conformance")
    assert not report.errors, report.errors

    # partial credit: clean (operation, check) pairs pass (where the contract suite showed the
    # operation working: here all of them), findings fail
    outcomes = report.outcomes(
        {"not_a_server_error": "fuzz-no-server-errors"}, implemented=report.operations
    )
    assert {o.name for o in outcomes if o.passed} >= {"GET /square · not_a_server_error"}
    assert [o.name for o in outcomes if not o.passed] == ["GET /inverse · not_a_server_error · 500"]

    # the hooks' provider went onto the run's schema, never into the global registry
    assert auths.GLOBAL_AUTH_STORAGE.providers == []


def test_same_seed_same_findings(spec: Path, hooks: Path) -> None:
    from schemathesis import auths

    first = fuzz(spec, hooks, seed=11)
    second = fuzz(spec, hooks, seed=11)  # hooks loaded a second time in the same process
    assert signature(first) == signature(second)
    assert first.tested == second.tested and first.failed == second.failed
    assert first.requests == second.requests
    assert auths.GLOBAL_AUTH_STORAGE.providers == []


def test_without_auth_the_protected_operation_is_never_accepted(spec: Path) -> None:
    report = fuzz(spec, None, stateful=False)
    # no provider: /me only ever answers 401, which the spec allows - no false positive from the grader
    assert ("GET /me", "not_a_server_error", 500) not in [f.key for f in report.findings]
    assert "GET /inverse" in report.failed["not_a_server_error"]
    # ...and nothing that works was checked there: what found nothing on it earns nothing unless
    # the contract suite showed it working (here GET /square only)
    outcomes = {o.name: o for o in report.outcomes("fuzz", implemented={"GET /square"})}
    assert outcomes["GET /me · not credited"].passed is False
    assert outcomes["GET /me · not credited"].message.startswith(
        "not credited: GET /me never succeeded in a contract test that passed"
    )
    assert outcomes["GET /square · " + ", ".join(sorted(CHECKS))].passed


def test_bad_inputs_are_grader_faults(spec: Path, tmp_path: Path) -> None:
    from grader.core import GraderFault

    with pytest.raises(GraderFault, match="unknown Schemathesis checks"):
        run_fuzz(
            spec=spec,
            base_url="http://127.0.0.1:9",
            seed=1,
            max_examples=5,
            checks=["no_such_check"],
            stateful=False,
            hooks=None,
            env={},
        )
    with pytest.raises(GraderFault, match="spec not found"):
        run_fuzz(
            spec=tmp_path / "missing.yaml",
            base_url="http://127.0.0.1:9",
            seed=1,
            max_examples=5,
            checks=["not_a_server_error"],
            stateful=False,
            hooks=None,
            env={},
        )
    broken = tmp_path / "broken_hooks.py"
    broken.write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    with pytest.raises(GraderFault, match="boom"):
        run_fuzz(
            spec=spec,
            base_url="http://127.0.0.1:9",
            seed=1,
            max_examples=5,
            checks=["not_a_server_error"],
            stateful=False,
            hooks=broken,
            env={},
        )


def test_app_is_reachable_for_sanity() -> None:
    with serve(make_app()) as base_url:
        assert requests.get(f"{base_url}/inverse", params={"x": 0}, timeout=5).status_code == 500


def _sent(spec: Path, hooks: Path, seed: int) -> list[tuple[str, str, str, bytes]]:
    """Every request one fuzzing run with `seed` sends, in order."""
    app, seen = make_app(), []

    @app.middleware("http")
    async def record(request: Any, call_next: Any) -> Any:
        body = await request.body()
        seen.append((request.method, str(request.url.path), str(request.url.query), body))
        return await call_next(request)

    with serve(app) as base_url:
        run_fuzz(
            spec=spec,
            base_url=base_url,
            seed=seed,
            max_examples=60,
            checks=CHECKS,
            stateful=False,
            hooks=hooks,
            env={},
        )
    return seen


def test_the_data_does_not_depend_on_what_the_grader_has_imported(
    spec: Path, hooks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hypothesis draws some values from the literals of "local" modules in sys.modules; the
    grader's own modules (which of them are imported, where it is installed) must not steer what
    a seed sends. A module full of literals imported between two runs changes nothing."""
    from hypothesis.internal.conjecture import providers

    assert callable(providers._get_local_constants)  # the hook point run_fuzz empties

    before = _sent(spec, hooks, 3)
    # a local module (no `test` folder in its path) with the integers the fuzzer might draw
    folder = Path(tempfile.mkdtemp(prefix="grader-literals-"))
    numbers = ", ".join(str(n) for n in range(-999, 1000, 7))
    words = ", ".join(f"'w{n}x'" for n in range(300))
    (folder / "literal_pool.py").write_text(f"VALUES = [{numbers}]\nWORDS = [{words}]\n")
    monkeypatch.syspath_prepend(str(folder))
    importlib.import_module("literal_pool")
    try:
        assert _sent(spec, hooks, 3) == before
    finally:
        sys.modules.pop("literal_pool", None)
        shutil.rmtree(folder)


def test_the_data_does_not_depend_on_what_runs_beside_it(spec: Path, hooks: Path) -> None:
    """Fuzzing runs in a thread beside the contract suite (grader.checks, `beside=True`): another
    thread reseeding and drawing from the global `random` all the while changes nothing it sends."""
    alone = _sent(spec, hooks, 3)
    stop = threading.Event()

    def noise() -> None:
        n = 0
        while not stop.is_set():
            random.seed(n)
            random.random()
            n += 1

    other = threading.Thread(target=noise)
    other.start()
    try:
        beside = _sent(spec, hooks, 3)
    finally:
        stop.set()
        other.join()
    assert beside == alone


def test_a_process_of_its_own_finds_the_same(spec: Path, hooks: Path) -> None:
    """Beside the contract suite, fuzzing runs in a process of its own (`run_fuzz_apart`): the
    same report as in this process, and the guard learns what was sent there."""
    job: dict[str, Any] = dict(
        spec=spec, seed=3, max_examples=30, checks=CHECKS, stateful=False, hooks=hooks, env={}
    )
    with serve(make_app()) as base_url:
        here = run_fuzz(base_url=base_url, **job)
        guard = Guard(origin=base_url)
        guard.start_deadline(300)
        prepare()  # as the pipeline does while the app starts
        apart = run_fuzz_apart(base_url=base_url, guard=guard, **job)

    def undated(report: FuzzReport) -> FuzzReport:  # the app's Date header moves on
        findings = [
            dataclasses.replace(
                f,
                exchange=dataclasses.replace(
                    f.exchange,
                    response_headers={
                        k: v for k, v in f.exchange.response_headers.items() if k != "date"
                    },
                ),
            )
            for f in report.findings
        ]
        return dataclasses.replace(report, findings=findings)

    assert undated(apart) == undated(here) and here.findings
    assert guard.sent >= apart.requests > 0 and not guard.stopped


def test_a_fuzzing_process_that_dies_is_the_graders_fault(spec: Path, tmp_path: Path) -> None:
    dying = tmp_path / "dying_hooks.py"
    dying.write_text("import os\nos._exit(3)\n", encoding="utf-8")
    with pytest.raises(GraderFault, match=r"ended without a report \(exit code 3\)"):
        run_fuzz_apart(
            spec=spec,
            base_url="http://127.0.0.1:9",
            seed=0,
            max_examples=1,
            checks=CHECKS,
            stateful=False,
            hooks=dying,
            env={},
            guard=Guard(),
        )
