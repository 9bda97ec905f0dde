"""Points only for behaviour that was exercised (grader.checks.exercised): an operation counts as
implemented only when a contract test that passed sent it a valid request answered with a
documented success status and a body its documented schema accepts; fuzzing and differential items
credit nothing else.

Fast unit tests first (the spec logic, which contract tests count), then real Docker grades: both
bundled starter repos, a catch-all app that answers `200 {}` to everything, and a mock with no
logic that answers every valid request a static schema-valid body, score 0 in robustness and say
why; a correct app of the same tiny assignment keeps full marks."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import ROOT
from docker import DockerClient

from grader.checks.exercised import Api, Credit
from grader.checks.fuzz import Finding, FuzzReport
from grader.core import Exchange, Outcome, Result, Status
from grader.pipeline import grade

# A tiny assignment: notes with a health route. `$ref`s everywhere, as real specs have them.
SPEC = """\
openapi: 3.1.0
info: {title: notes, version: "1"}
paths:
  /health:
    get:
      responses:
        "200":
          description: up
          content:
            application/json:
              schema: {type: object, required: [status], properties: {status: {const: ok}}}
  /notes:
    post:
      operationId: create_note
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/NoteIn"}
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
        "422": {$ref: "#/components/responses/Invalid"}
  /notes/{note_id}:
    get:
      operationId: get_note
      parameters:
        - {$ref: "#/components/parameters/NoteId"}
        - {name: fields, in: query, schema: {type: integer, minimum: 1}}
      responses:
        "200":
          description: the note
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Note"}
        "404": {$ref: "#/components/responses/Invalid"}
        "422": {$ref: "#/components/responses/Invalid"}
  /notes/latest:
    get:
      responses:
        "2XX":
          description: the latest note
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Note"}
  /login:
    post:
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [name, age]
              properties: {name: {type: string}, age: {type: integer}}
      responses:
        "204": {description: logged in}
components:
  parameters:
    NoteId: {name: note_id, in: path, required: true, schema: {type: integer}}
  schemas:
    NoteIn:
      type: object
      required: [text]
      properties: {text: {type: string, minLength: 1, maxLength: 20}}
    Note:
      type: object
      required: [id, text]
      properties: {id: {type: integer}, text: {$ref: "#/components/schemas/Text"}}
    Text: {type: string}
  responses:
    Invalid:
      description: invalid or absent
      content:
        application/json:
          schema: {type: object}
"""

API = Api(yaml.safe_load(SPEC))
URL = "http://app:8000"


def ex(
    method: str,
    path: str,
    status: int,
    body: Any = None,
    *,
    sent: Any = None,
    content_type: str = "application/json",
    form: str | None = None,
) -> Exchange:
    """One recorded exchange: `sent` goes as JSON, `form` as a urlencoded body."""
    headers = (
        {"content-type": "application/x-www-form-urlencoded"}
        if form is not None
        else ({"content-type": "application/json"} if sent is not None else {})
    )
    return Exchange(
        method=method,
        url=URL + path,
        request_headers=headers,
        request_body=form if form is not None else (json.dumps(sent) if sent is not None else None),
        status=status,
        response_headers={"Content-Type": content_type},
        response_body=body if isinstance(body, str) else json.dumps(body),
    )


# --- the spec logic ---------------------------------------------------------------------------


def test_requests_are_matched_to_the_spec_templates() -> None:
    def label(method: str, path: str) -> str | None:
        op = API.operation(method, URL + path)
        return op.label if op else None

    assert label("GET", "/notes/7") == "GET /notes/{note_id}"
    assert label("GET", "/notes/7?fields=2") == "GET /notes/{note_id}"
    assert label("GET", "/notes/latest") == "GET /notes/latest"  # concrete before templated
    assert label("post", "/notes") == "POST /notes"
    assert label("DELETE", "/notes/7") is None  # a method the spec does not document
    assert label("GET", "/notes/7/x") is None and label("GET", "/notes/") is None
    assert label("GET", "/notes") is None and label("GET", "/elsewhere") is None
    assert API.at_path("/health") == {"GET /health"}


def test_only_a_documented_success_with_a_valid_body_counts() -> None:
    note = {"id": 1, "text": "hi"}
    assert API.succeeded([ex("POST", "/notes", 201, note, sent={"text": "hi"})]) == {"POST /notes"}
    # undocumented status (200 where 201 is documented), documented non-success, error statuses
    for status in (200, 202, 422, 404, 500):
        assert API.succeeded([ex("POST", "/notes", status, note, sent={"text": "hi"})]) == set()
    # what a catch-all app answers: the schema (required fields, through $refs) refuses it
    for body in ({}, {"id": 1}, {"id": "1", "text": "hi"}, {"id": 1, "text": 5}, [], "not json"):
        assert API.succeeded([ex("POST", "/notes", 201, body, sent={"text": "hi"})]) == set(), body
    # another media type than documented, a body cut for the report
    assert (
        API.succeeded(
            [ex("POST", "/notes", 201, note, sent={"text": "hi"}, content_type="text/html")]
        )
        == set()
    )
    cut = json.dumps(note) + "\n… [12 more characters cut]"
    assert API.succeeded([ex("POST", "/notes", 201, cut, sent={"text": "hi"})]) == set()
    # a 2XX range; a success without content (nothing to validate); a content-type with parameters
    assert API.succeeded([ex("GET", "/notes/latest", 203, note)]) == {"GET /notes/latest"}
    assert API.succeeded([ex("POST", "/login", 204, "", form="name=a&age=7")]) == {"POST /login"}
    assert API.succeeded(
        [ex("GET", "/notes/3", 200, note, content_type="application/json; charset=utf-8")]
    ) == {"GET /notes/{note_id}"}


def test_only_a_valid_request_counts() -> None:
    note = {"id": 1, "text": "hi"}
    invalid = [
        ex("POST", "/notes", 201, note, sent={"text": ""}),  # minLength
        ex("POST", "/notes", 201, note, sent={"txt": "hi"}),  # required
        ex("POST", "/notes", 201, note),  # a required body missing
        ex("POST", "/notes", 201, note, form="text=hi"),  # an undocumented media type
        ex("GET", "/notes/abc", 200, note),  # path parameter: an integer
        ex("GET", "/notes/3?fields=0", 200, note),  # query parameter: minimum 1
        ex("GET", "/notes/3?fields=x", 200, note),
        ex("POST", "/login", 204, "", form="name=a&age=old"),  # form field: an integer
        ex("POST", "/login", 204, "", form="name=a"),
    ]
    for exchange in invalid:
        assert API.succeeded([exchange]) == set(), exchange
    assert API.succeeded([ex("GET", "/notes/3?fields=2&other=x", 200, note)]) == {
        "GET /notes/{note_id}"
    }
    assert API.succeeded([*invalid, ex("GET", "/notes/%33", 200, note)]) == {"GET /notes/{note_id}"}


def test_openapi_3_0_nullable() -> None:
    spec = yaml.safe_load(SPEC.replace("openapi: 3.1.0", "openapi: 3.0.3"))
    spec["components"]["schemas"]["Text"] = {"type": "string", "nullable": True}
    legacy = Api(spec)
    assert legacy.succeeded([ex("GET", "/notes/1", 200, {"id": 1, "text": None})]) == {
        "GET /notes/{note_id}"
    }
    assert API.succeeded([ex("GET", "/notes/1", 200, {"id": 1, "text": None})]) == set()


def contract_test(name: str, *, passed: bool, **how: Any) -> Outcome:
    return Outcome(check="contract", name=name, item="notes", passed=passed, **how)


def test_only_contract_tests_that_passed_count() -> None:
    """The same schema-valid success counts in a test that passed, and not in one that failed,
    was blocked by a step before its check, or was skipped: a static body passes the per-exchange
    test, the behaviour checks are what tell it from a working operation."""
    created = ex("POST", "/notes", 201, {"id": 1, "text": "x"}, sent={"text": "hi"})
    read = ex("GET", "/notes/1", 200, {"id": 1, "text": "x"})
    traces = {"t_create": [created], "t_read": [read]}
    assert API.succeeded([created, read]) == {"POST /notes", "GET /notes/{note_id}"}
    for failed in (  # (a) failed: "x" is not the text sent; (c) blocked by a step; skipped
        contract_test("t_create", passed=False, message="expected text 'hi', got 'x'"),
        contract_test("t_create", passed=False, blocked_by="could not create a note"),
        contract_test("t_create", passed=True, skipped=True),
    ):
        assert API.implemented(traces, [failed]) == set(), failed
    # (b) passed: its success counts; only its own exchanges do
    passed = contract_test("t_read", passed=True)
    assert API.implemented(traces, [passed]) == {"GET /notes/{note_id}"}
    both = [passed, contract_test("t_create", passed=False)]
    assert API.implemented(traces, both) == {"GET /notes/{note_id}"}
    # (c) blocked, even if marked passed (the plugin never marks a blocked test so)
    blocked = contract_test("t_read", passed=True, blocked_by="could not log in")
    assert API.implemented(traces, [blocked]) == set()
    # two tests of one name (in two files): the traces hold one of them, so both must pass
    twins = [passed, contract_test("t_read", passed=False)]
    assert API.implemented(traces, twins) == set()
    # a test without traces (it sent nothing) shows nothing
    assert API.implemented({}, [passed]) == set()


def test_fuzz_outcomes_credit_implemented_operations_only() -> None:
    """Clean checks pass only on implemented operations, one outcome per operation and item (so
    an item's share follows the operations that work); the given health route earns nothing and
    blocks nothing; findings fail as before."""
    ops = ["GET /health", "GET /notes/{note_id}", "POST /notes", "GET /notes/latest"]
    finding = Finding(
        operation="GET /notes/latest",
        check="not_a_server_error",
        status=500,
        title="Server error",
        message="",
        exchange=Exchange(method="GET", url=URL),
    )
    report = FuzzReport(
        findings=[finding],
        tested={
            "not_a_server_error": ops,
            "status_code_conformance": ops,
            "use_after_free": ["POST /notes"],
        },
        failed={"not_a_server_error": ["GET /notes/latest"]},
        operations=ops,
    )
    items = {
        "not_a_server_error": "fuzz",
        "status_code_conformance": "fuzz",
        "use_after_free": "stateful",
    }
    outcomes = report.outcomes(items, implemented={"GET /notes/{note_id}"}, given={"GET /health"})
    got = {(o.item, o.name): o for o in outcomes}
    assert set(got) == {
        ("fuzz", "GET /notes/{note_id} · not_a_server_error, status_code_conformance"),
        ("fuzz", "POST /notes · not credited"),
        ("fuzz", "GET /notes/latest · not credited"),  # its status_code_conformance was clean
        ("fuzz", "GET /notes/latest · not_a_server_error · 500"),
        ("stateful", "POST /notes · not credited"),
    }
    assert [n for (_, n), o in got.items() if o.passed] == [
        "GET /notes/{note_id} · not_a_server_error, status_code_conformance"
    ]
    message = got[("stateful", "POST /notes · not credited")].message
    assert message.startswith(
        "not credited: POST /notes never succeeded in a contract test that passed: "
        "use_after_free found nothing wrong"
    )
    # by default nothing is implemented: fuzzing's own successes are no evidence
    assert not any(o.passed for o in report.outcomes(items))
    credit = Credit.of({"GET /notes/{note_id}"}, given={"GET /health"})
    assert credit.missing(["GET /health", "POST /notes", "GET /notes/{note_id}"]) == ["POST /notes"]
    assert not credit.at_stake(["GET /health"]) and credit.at_stake(["POST /notes"])


# --- the tiny assignment's apps (stdlib only: a fast build) -----------------------------------

APP = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# correct | static (checks each request like the correct app, answers every valid one the same
# schema-valid body: no logic, no storage) | catch-all (200 {} to everything)
MODE = "%(mode)s"
NOTES = {}
STATIC = {"id": 1, "text": "x"}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, **headers):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        path = self.path.split("?")[0]
        if MODE == "catch-all":
            return self.answer(200, {})
        if path == "/health":
            return self.answer(200, {"status": "ok"})
        if path.startswith("/notes/") and path.count("/") == 2:
            raw = path[len("/notes/"):]
            if not (raw.isascii() and raw.lstrip("-").isdigit()):
                return self.answer(422, {"detail": "note_id must be an integer"})
            if MODE == "static":
                return self.answer(200, STATIC)
            if int(raw) in NOTES:
                return self.answer(200, {"id": int(raw), "text": NOTES[int(raw)]})
            return self.answer(404, {"detail": "Note not found"})
        self.answer(404, {"detail": "Not Found"})

    def do_POST(self):
        raw = self.body()
        if MODE == "catch-all":
            return self.answer(200, {})
        if self.path.split("?")[0] != "/notes":
            return self.answer(404, {"detail": "Not Found"})
        try:
            note = json.loads(raw)
        except ValueError:
            note = None
        text = note.get("text") if isinstance(note, dict) else None
        if not (isinstance(text, str) and 1 <= len(text) <= 20
                and "json" in (self.headers.get("Content-Type") or "")):
            return self.answer(422, {"detail": "invalid note"})
        if MODE == "static":
            return self.answer(201, STATIC)
        NOTES[len(NOTES) + 1] = text
        self.answer(201, {"id": len(NOTES), "text": text})

    def other(self):
        self.body()
        if MODE == "catch-all":
            return self.answer(200, {})
        self.answer(405, {"detail": "Method Not Allowed"}, Allow="GET, POST")

    do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = do_HEAD = do_QUERY = other


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""

# only the operations the apps know (the spec above also tests matching and request bodies)
NOTES_SPEC = yaml.safe_load(SPEC)
for gone in ("/notes/latest", "/login"):
    del NOTES_SPEC["paths"][gone]
del NOTES_SPEC["paths"]["/notes/{note_id}"]["get"]["parameters"][1]


@contextmanager
def serve(mode: str) -> Iterator[str]:
    """The app of `mode` in this process: its base URL."""
    namespace: dict[str, Any] = {"__name__": "notes_app"}
    exec(APP % {"mode": mode}, namespace)
    server = ThreadingHTTPServer(("127.0.0.1", 0), namespace["Handler"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_static_mock_answers_documented_successes() -> None:
    """What makes the static mock a real attack: each valid request gets a documented success
    with a schema-valid body, the evidence one success used to be."""
    with serve("static") as base_url, httpx.Client(base_url=base_url) as http:
        answers = [http.post("/notes", json={"text": "hi"}), http.get("/notes/5")]
    exchanges = [
        Exchange(
            method=a.request.method,
            url=str(a.request.url),
            request_headers=dict(a.request.headers),
            request_body=a.request.content.decode() or None,
            status=a.status_code,
            response_headers=dict(a.headers),
            response_body=a.text,
        )
        for a in answers
    ]
    assert Api(NOTES_SPEC).succeeded(exchanges) == {"POST /notes", "GET /notes/{note_id}"}


# --- real Docker grades -------------------------------------------------------------------------


def _robustness(result: Result) -> tuple[float, list[str]]:
    """The robustness category's points and its "not credited" messages, by check."""
    category = next(c for c in result.categories if c.id == "robustness")
    lines = [
        f"{o.check}: {o.message}"
        for i in result.items
        if i.category == "robustness"
        for o in i.outcomes
        if o.message.startswith("not credited: ")
    ]
    return category.points, lines


@pytest.mark.docker
@pytest.mark.parametrize("assignment", ["fastapi-db-auth", "fastapi-basics"])
def test_starter_repos_score_nothing_in_robustness(
    assignment: str, docker_client: DockerClient
) -> None:
    """The starter answers 501 everywhere but its health route: fuzzing finds "nothing wrong"
    with it and some of its 404s/422s match the reference's. None of that is credited."""
    result = grade(submission_path=ROOT / "student_template" / assignment, assignment=assignment)
    assert result.status is Status.GRADED, result.reason
    points, lines = _robustness(result)
    assert points == 0, [(i.id, i.points) for i in result.items if i.category == "robustness"]
    assert any(line.startswith("schemathesis: not credited: ") for line in lines), lines
    assert any("never succeeded in a contract test that passed" in line for line in lines)
    if assignment == "fastapi-db-auth":  # 401s and 422s that match the reference's
        assert any(line.startswith("differential: not credited: ") for line in lines), lines
        stateful = next(i for i in result.items if i.id == "fuzz-stateful")
        assert any(o.message.startswith("not credited: ") for o in stateful.outcomes)


def _notes_assignment(root: Path) -> Path:
    """The tiny assignment (spec, contract tests, the correct app as its reference), in `root`."""
    (root / "tests").mkdir(parents=True)
    (root / "openapi.yaml").write_text(yaml.safe_dump(NOTES_SPEC), encoding="utf-8")
    _app(root / "reference", "correct")
    (root / "assignment.yaml").write_text(
        textwrap.dedent("""
        id: notes
        title: Notes
        reference: reference
        runtime: {port: 8000, health_path: /health, start_deadline: 15}
        fuzz: {max_examples: 10, stateful: true, max_steps: 5}
        categories:
          - {id: deploy, title: Deploy}
          - {id: api, title: API}
          - {id: robustness, title: Robustness}
        items:
          - {id: builds, title: Builds, category: deploy, points: 10, check: build}
          - {id: starts, title: Starts, category: deploy, points: 10, check: start}
          - {id: notes, title: Notes, category: api, points: 40, check: contract}
          - id: fuzz-no-server-errors
            title: No 5xx
            category: robustness
            points: 10
            check: schemathesis
            options: {checks: [not_a_server_error]}
          - id: fuzz-conformance
            title: Conformance
            category: robustness
            points: 10
            check: schemathesis
            options: {checks: [status_code_conformance, content_type_conformance,
                               response_schema_conformance, negative_data_rejection]}
          - id: fuzz-stateful
            title: Sequences
            category: robustness
            points: 10
            check: schemathesis
            options: {checks: [ensure_resource_availability]}
          - {id: matches-reference, title: Like the reference, category: robustness, points: 10,
             check: differential}
    """),
        encoding="utf-8",
    )
    (root / "tests" / "test_notes.py").write_text(
        textwrap.dedent("""
        import pytest
        from grader.testing import expect_status

        pytestmark = pytest.mark.rubric("notes")

        def test_health(client):
            expect_status(client.get("/health"), 200)

        def test_create_and_read(client):
            created = client.post("/notes", json={"text": "hi"})
            expect_status(created, 201)
            assert created.json()["text"] == "hi"
            read = client.get(f"/notes/{created.json()['id']}")
            expect_status(read, 200)
            assert read.json() == created.json()

        def test_empty_text_is_422(client):
            expect_status(client.post("/notes", json={"text": ""}), 422)

        def test_unknown_note_is_404(client):
            expect_status(client.get("/notes/999999"), 404)
    """),
        encoding="utf-8",
    )
    return root


def _app(root: Path, mode: str) -> Path:
    root.mkdir(parents=True)
    (root / "app.py").write_text(APP % {"mode": mode}, encoding="utf-8")
    (root / "Dockerfile").write_text(
        'FROM python:3.11-slim\nWORKDIR /srv\nCOPY app.py ./\nCMD ["python", "app.py"]\n'
    )
    return root


@pytest.fixture(scope="module")
def notes(docker_client: DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny assignment; its correct app (the reference) keeps every point."""
    spec = _notes_assignment(tmp_path_factory.mktemp("assignment") / "notes")
    correct = grade(submission_path=spec / "reference", assignment=spec)
    assert correct.status is Status.GRADED, correct.reason
    assert correct.score == 100, [
        (i.id, [o.message for o in i.failures][:2]) for i in correct.items if not i.passed
    ]
    return spec


@pytest.mark.docker
def test_a_catch_all_app_scores_nothing_in_robustness(notes: Path, tmp_path: Path) -> None:
    """`200 {}` to everything: no 5xx, nothing "wrong" in many checks, and nothing implemented."""
    result = grade(submission_path=_app(tmp_path / "catch-all", "catch-all"), assignment=notes)
    assert result.status is Status.GRADED, result.reason
    assert {i.id for i in result.items if i.passed} == {"builds", "starts"}
    points, lines = _robustness(result)
    assert points == 0, [(i.id, i.points) for i in result.items]
    assert any(
        line.startswith("schemathesis: not credited: POST /notes never succeeded") for line in lines
    ), lines


@pytest.mark.docker
def test_a_static_mock_scores_nothing_in_robustness(notes: Path, tmp_path: Path) -> None:
    """The static mock (no logic): fuzzing finds nothing wrong with its documented successes, and
    its 422 to an empty note matches the reference's; but the only contract tests it passes show
    no operation working (the 422's), so no fuzz or differential item earns anything."""
    result = grade(submission_path=_app(tmp_path / "static", "static"), assignment=notes)
    assert result.status is Status.GRADED, result.reason
    items = {i.id: i for i in result.items}
    passed = {o.name for o in items["notes"].outcomes if o.passed}
    assert passed == {"test_health", "test_empty_text_is_422"}, passed
    robustness = {i.id: i.points for i in result.items if i.category == "robustness"}
    assert robustness == dict.fromkeys(robustness, 0) and len(robustness) == 4, robustness
    _, lines = _robustness(result)
    for check in ("schemathesis", "differential"):
        said = f"{check}: not credited: POST /notes never succeeded in a contract test that passed"
        assert any(line.startswith(said) for line in lines), lines
    # fuzzing did judge it: its checks found nothing wrong on POST /notes
    fuzzed = [o for o in items["fuzz-no-server-errors"].outcomes if o.name.startswith("POST ")]
    assert [o.name for o in fuzzed] == ["POST /notes · not credited"], fuzzed


# --- the checks in this process: the contract run handed to fuzzing and the comparison ---------


def test_the_contract_run_decides_what_fuzzing_and_the_comparison_credit(tmp_path: Path) -> None:
    """run_checks without Docker, the apps served here: the contract check's run (which
    operations work) reaches the schemathesis and differential checks whatever the items' order,
    and a failing contract test shows the reference's answer to its last request."""
    from grader import assignment as assignments
    from grader.checks import Context, run_checks
    from grader.checks.contract import run_suite
    from grader.core import Target

    spec = assignments.load(_notes_assignment(tmp_path / "notes"))
    items = sorted(spec.items, key=lambda i: i.check != "differential")  # consumers first
    with serve("correct") as url:
        reference = run_suite(spec.tests_dir, Target(url)).traces

    def checked(mode: str) -> dict[str, list[Outcome]]:
        with serve(mode) as url:
            ctx = Context(
                assignment=spec,
                seed=0,
                runtime="inprocess",
                built=None,
                started=True,
                target=Target(url),
                reference_traces=reference,
            )
            outcomes = run_checks(ctx, items)
        by_item: dict[str, list[Outcome]] = {}
        for o in outcomes:
            by_item.setdefault(o.item or "", []).append(o)
        return by_item

    correct = checked("correct")
    robustness = [i.id for i in spec.items if i.category == "robustness"]
    for item in ["notes", *robustness]:
        assert correct[item] and all(o.passed for o in correct[item]), correct[item]
    static = checked("static")
    lost = [o for item in robustness for o in static[item]]
    assert lost and not any(o.passed for o in lost), lost
    said = "not credited: POST /notes never succeeded in a contract test that passed"
    for check in ("schemathesis", "differential"):
        assert any(o.check == check and o.message.startswith(said) for o in lost), check
    failed = {o.name: o for o in static["notes"] if not o.passed}
    assert set(failed) == {"test_create_and_read", "test_unknown_note_is_404"}, failed
    shown = failed["test_unknown_note_is_404"].reference
    assert shown is not None and shown.status == 404  # the reference's answer to that request
