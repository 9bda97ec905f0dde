"""Reproducers (grader.reproduce): a failing contract test's whole request sequence as a Python
script that replays it against the student's own app with that app's answers.

Unit tests on made-up grading runs (values from answers become variables, e-mails get a per-run
suffix, forged JWTs are re-signed or kept forged, earlier tests' set-up comes first, file names are
safe), scripts run against a small stdlib server that hands out its own tokens; then for real:
db-auth mutants graded by the contract suite, their reproducer run twice against the same mutant
started anew (the bug shows both times) and once against the reference (the expected answer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from conftest import REFERENCE_DIR, ROOT, benchmark_mutants, fresh_database
from stub_server import Handler, serving

from grader import assignment as assignments
from grader import localpg, output, reproduce
from grader.checks.contract import run_suite
from grader.core import Exchange, ItemScore, Outcome, Result, Status, Target
from grader.local import LocalApp
from grader.output import markdown

APP = "http://10.9.8.7:8000"  # the address a grading run reached the app at (never contacted)
KEY = "grading-run-random-key-0123456789"
JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


def ex(
    method: str,
    path: str,
    status: int,
    answer: Any = None,
    *,
    body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Exchange:
    """An exchange as the contract plugin records it."""
    sent = dict(headers or {})
    text = None
    if body is not None:
        sent.update(JSON)
        text = json.dumps(body)
    elif form is not None:
        sent.update(FORM)
        text = "&".join(f"{k}={v.replace('@', '%40')}" for k, v in form.items())
    return Exchange(
        method=method,
        url=APP + path,
        request_headers={"host": "10.9.8.7:8000", **sent},
        request_body=text,
        status=status,
        response_body=json.dumps(answer) if answer is not None else "",
    )


def outcome(name: str, expected: str = "status 401", actual: str = "status 200") -> Outcome:
    return Outcome(
        check="contract",
        name=name,
        item="x",
        passed=False,
        message="What it checks.",
        expected=expected,
        actual=actual,
    )


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(claims: dict[str, Any], key: str | None, alg: str = "HS256") -> str:
    head = b64(json.dumps({"alg": alg if key else "none", "typ": "JWT"}).encode())
    unsigned = f"{head}.{b64(json.dumps(claims).encode())}"
    return f"{unsigned}." + (
        b64(hmac.new(key.encode(), unsigned.encode(), hashlib.sha256).digest()) if key else ""
    )


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def requests_lines(text: str) -> str:
    """The script's own part: its requests and variables (not the header or the final verdict)."""
    return "\n".join(
        line
        for line in text.splitlines()
        if re.match(r" *(status, answer = |\w+ = (pick|jwt_|f\"))", line)
    )


# values from answers ---------------------------------------------------------------------------------
def register_and_login(
    email: str = "alice.r3@example.com", user_id: int = 1, token: str = "issued-token-0123456789"
) -> list[Exchange]:
    return [
        ex(
            "POST",
            "/users/",
            201,
            {"id": user_id, "email": email},
            body={"email": email, "password": "pw-12345678"},
        ),
        ex(
            "POST",
            "/token",
            200,
            {"access_token": token, "token_type": "bearer"},
            form={"username": email, "password": "pw-12345678"},
        ),
    ]


def test_a_token_from_an_answer_is_read_from_the_answer() -> None:
    trace = [
        *register_and_login(),
        ex(
            "GET",
            "/users/me",
            200,
            {"id": 1},
            headers={"Authorization": "Bearer issued-token-0123456789"},
        ),
    ]
    text = reproduce.script(outcome("t"), {"t": trace}, {})
    assert text
    assert 'access_token = pick(answer, "access_token")' in text
    assert 'headers={"Authorization": f"Bearer {access_token}"}' in text
    assert "issued-token-0123456789" not in text, "the grading run's token is never replayed"
    assert "10.9.8.7" not in text and "BASE = " in text
    compile(text, "reproducer", "exec")


def test_ids_in_urls_and_bodies_become_variables_of_the_right_answer() -> None:
    """User 1 and item 1 share a number: each place takes the answer that made its kind of thing."""
    trace = [
        *register_and_login(),
        ex(
            "POST",
            "/users/1/items/",
            201,
            {"id": 1, "title": "t", "owner_id": 1},
            body={"title": "t"},
            headers={"Authorization": "Bearer issued-token-0123456789"},
        ),
        ex("GET", "/items/1?owner_id=1", 200, {"id": 1}),
        ex("POST", "/transfers/", 200, {}, body={"item_id": 1, "count": 1}),
        ex("GET", "/missing/2000000000", 404, {"detail": "Not Found"}),
    ]
    text = reproduce.script(outcome("t"), {"t": trace}, {})
    assert text
    lines = requests_lines(text)
    assert 'user_id = pick(answer, "id")' in text and 'item_id = pick(answer, "id")' in text
    assert 'send("POST", f"/users/{user_id}/items/"' in lines
    assert 'owner_id = pick(answer, "owner_id")' in text, "a key that an answer has takes its value"
    assert 'send("GET", f"/items/{item_id}?owner_id={owner_id}"' in lines
    assert 'json_body={"item_id": item_id, "count": 1}' in lines, "a number under a plain key stays"
    assert 'send("GET", "/missing/2000000000"' in lines, "a number no answer gave stays"


def test_emails_get_a_suffix_everywhere_and_consistently() -> None:
    email = "bob.r7@example.com"
    basic = base64.b64encode(f"{email}:pw-12345678".encode()).decode()
    trace = [
        *register_and_login(email),
        ex("GET", "/users/me/basic", 200, {"id": 1}, headers={"Authorization": f"Basic {basic}"}),
        ex("GET", f"/users/by-email/{email.replace('@', '%40')}?email={email}", 200, {"id": 1}),
        ex("POST", "/raw", 200, {}, body=None, headers={"content-type": "text/plain"}),
        ex(
            "POST",
            "/users/",
            400,
            {"detail": "Email already registered"},
            body={"email": email, "password": "pw"},
        ),
    ]
    trace[4].request_body = f"note for {email}, twice: {email}"
    text = reproduce.script(outcome("t"), {"t": trace}, {})
    assert text
    lines = requests_lines(text)
    assert 'email_1 = f"bob.r7-{RUN}@example.com"' in text
    assert "RUN = uuid.uuid4()" in text
    assert email not in lines and basic not in lines
    assert 'json_body={"email": email_1' in lines and 'form={"username": email_1' in lines
    assert '"Authorization": basic(email_1, "pw-12345678")' in lines
    assert 'f"/users/by-email/{q(email_1)}?email={q(email_1)}"' in lines
    assert 'data=f"note for {email_1}, twice: {email_1}"' in lines
    assert "email_2" not in text


# tokens the test forged ------------------------------------------------------------------------------
def test_forged_tokens_are_rebuilt_for_the_run() -> None:
    now = time.time()
    email = "carol@example.com"
    signed_expired = jwt({"sub": email, "exp": int(now) - 3600}, KEY)
    signed_future = jwt(
        {"sub": "1", "exp": int(now) + 598, "scope": "x"}, KEY
    )  # minted 2 s earlier
    wrong_key = jwt({"sub": email, "exp": int(now) + 600}, "not-the-key-000000")
    unsigned = jwt({"sub": email, "exp": int(now) + 600}, None)
    bare = jwt({"scope": "nothing-to-change"}, "not-the-key-000000")
    trace = [
        ex(
            "POST",
            "/users/",
            201,
            {"id": 1, "email": email},
            body={"email": email, "password": "p"},
        )
    ]
    for token in (signed_expired, signed_future, wrong_key, unsigned, bare, "this-is-not-a-jwt"):
        trace.append(
            ex(
                "GET",
                "/users/me",
                401,
                {"detail": "no"},
                headers={"Authorization": f"Bearer {token}"},
            )
        )
    env = {"DATABASE_URL": "postgresql://u:p@db/x", "SECRET_KEY": KEY, "EXPIRE": "30"}
    text = reproduce.script(outcome("t"), {"t": trace}, env, now=now)
    assert text
    assert (
        f"# Start your app with these env values of the grading run (made for it at random):\n#   SECRET_KEY={KEY}\n"
        in text
    )
    assert f'SECRET_KEY = "{KEY}"' in text and "DATABASE_URL" not in text
    head = signed_expired.split(".")[0]
    assert f'jwt_signed("{head}", {{"sub": email_1, "exp": NOW - 3600}}, SECRET_KEY)' in text
    assert '{"sub": str(user_id), "exp": NOW + 600, "scope": "x"}, SECRET_KEY)' in text
    assert (
        f'jwt_forged("{head}", {{"sub": email_1, "exp": NOW + 600}}, "{wrong_key.split(".")[2]}")'
        in text
    )
    assert (
        f'jwt_forged("{unsigned.split(".")[0]}", {{"sub": email_1, "exp": NOW + 600}}, "")' in text
    )
    for kept in (bare, "this-is-not-a-jwt"):
        assert f'"Authorization": "Bearer {kept}"' in text, (
            "nothing to make for this run: kept as is"
        )
    for token in (signed_expired, signed_future, wrong_key, unsigned):
        assert token not in text


class _App(Handler):
    """A stand-in for a student's app: registers users, hands out its own tokens, and accepts a
    JWT signed with its key. Records what it gets."""

    users: dict[str, int] = {}  # noqa: RUF012 - the server's state, reset per test
    tokens: dict[str, str] = {}  # noqa: RUF012
    seen: list[dict[str, Any]] = []  # noqa: RUF012
    key = ""

    def _caller(self) -> str | None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if token in self.tokens:
            return self.tokens[token]
        parts = token.split(".")
        if len(parts) != 3:
            return None
        mac = b64(
            hmac.new(self.key.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        )
        claims = claims_of(token)
        return claims["sub"] if mac == parts[2] and claims["exp"] > time.time() else None

    def do_POST(self) -> None:
        text = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.seen.append(
            {"path": self.path, "body": text, "auth": self.headers.get("Authorization")}
        )
        if self.path == "/users/":
            email = json.loads(text)["email"]
            if email in self.users:
                return self.answer(400, {"detail": "Email already registered"})
            self.users[email] = 100 + len(self.users)
            return self.answer(201, {"id": self.users[email], "email": email})
        token = secrets.token_hex(12)
        self.tokens[token] = dict(parse_qsl(text))["username"]
        return self.answer(200, {"access_token": token})

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
        caller = self._caller()
        if caller is None:
            return self.answer(401, {"detail": "Not authenticated"})
        return self.answer(200, {"email": caller})


@pytest.fixture
def stand_in() -> Iterator[str]:
    _App.users, _App.tokens, _App.seen, _App.key = {}, {}, [], secrets.token_hex(8)
    with serving(_App) as url:
        yield url


def run(text: str, tmp_path: Path, url: str) -> str:
    path = tmp_path / "reproduce" / "t.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(path), url], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_script_runs_twice_with_its_apps_own_token_and_key(stand_in: str, tmp_path: Path) -> None:
    """Run for real: the app's own token is sent, e-mails are new on every run, the forged token is
    signed with the key the header names and keeps its expiry an hour in the past."""
    now = time.time()
    email = "dave@example.com"
    expired = jwt({"sub": email, "exp": int(now) - 3600}, KEY)
    trace = [
        *register_and_login(email),
        ex(
            "GET",
            "/users/me",
            200,
            {"email": email},
            headers={"Authorization": "Bearer issued-token-0123456789"},
        ),
        ex(
            "GET",
            "/users/me",
            200,
            {"email": email},
            headers={"Authorization": f"Bearer {expired}"},
        ),
    ]
    text = reproduce.script(
        outcome("t", "status 401", "status 200"), {"t": trace}, {"SECRET_KEY": KEY}, now=now
    )
    assert text
    _App.key = KEY  # started with the value the script's header asks for
    outputs = [run(text, tmp_path, stand_in) for _ in range(2)]
    registered = [json.loads(s["body"])["email"] for s in _App.seen if s["path"] == "/users/"]
    assert len(set(registered)) == 2 and all(
        re.fullmatch(r"dave-[0-9a-f]{8}@example\.com", e) for e in registered
    )
    bearer = [s["auth"] for s in _App.seen if s["path"] == "/users/me"]
    assert bearer[0].removeprefix("Bearer ") in _App.tokens, "the app's own token, from its answer"
    forged = bearer[1].removeprefix("Bearer ")
    head, payload, signature = forged.split(".")
    assert signature == b64(
        hmac.new(KEY.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    )
    assert claims_of(forged)["sub"] == registered[0]
    assert abs(claims_of(forged)["exp"] - (time.time() - 3600)) < 60
    for out in outputs:
        assert "--> 201" in out and "--> 200" in out
        assert out.rstrip().endswith("This run's last answer: status 401")  # this app refuses it
        assert "expected: status 401" in out and "got:      status 200" in out


class _Hostile(Handler):
    """An app whose answer carries terminal commands (clear the screen, set the window title)."""

    def do_GET(self) -> None:
        self.answer(200, {"detail": "x"})

    def answer(self, status: int, body: Any = None) -> None:
        data = b"\x1b[2J\x1b]0;pwned\x07\xc2\x9b2J owned"
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_an_apps_escape_sequences_are_shown_not_obeyed(tmp_path: Path) -> None:
    """An instructor runs a student's reproducer: what the app answers reaches the terminal as
    text to read (its escapes), never as commands; the expected/got lines too."""
    trace = [ex("GET", "/items/", 200, {"detail": "x"})]
    bad = outcome("t", "status 401", "status 200 \x1b[2J")
    text = reproduce.script(bad, {"t": trace}, {}, now=time.time())
    assert text
    with serving(_Hostile) as url:
        out = run(text, tmp_path, url)
    assert not any(c in out for c in "\x1b\x07\x9b"), out
    assert "\\x1b[2J\\x1b]0;pwned\\x07\\x9b2J owned" in out
    assert "got:      status 200 \\x1b[2J" in out


def test_set_up_made_by_earlier_tests_comes_first(stand_in: str, tmp_path: Path) -> None:
    """A user shared between tests (registered and logged in by an earlier one) is made again."""
    traces = {
        "test_a": [
            *register_and_login("shared-owner@example.com"),
            ex("GET", "/health", 200, {"status": "ok"}),
        ],
        "test_b": [
            ex(
                "POST",
                "/users/",
                201,
                {"id": 2, "email": "x@example.com"},
                body={"email": "x@example.com", "password": "p"},
            )
        ],
        "test_c": [
            ex(
                "GET",
                "/users/me",
                200,
                {"email": "shared-owner@example.com"},
                headers={"Authorization": "Bearer issued-token-0123456789"},
            )
        ],
    }
    text = reproduce.script(outcome("test_c"), traces, {})
    assert text
    assert text.count("(made by the earlier test test_a)") == 2
    assert "x@example.com" not in text and "/health" not in text, "only what the test relies on"
    assert "after 2 that earlier tests made" in text
    out = run(text, tmp_path, stand_in)
    assert out.rstrip().endswith("This run's last answer: status 200")


def test_the_apps_env_values_in_requests_are_named() -> None:
    """Values of the app's env that a request sends (a Basic username, a key header) are variables
    the header asks to start the app with; short values (a number of minutes) are left alone."""
    env = {"APP_USER": "u-7f3a9c2e41", "APP_KEY": "k-0b1c2d3e4f5a", "MINUTES": "30"}
    basic = base64.b64encode(b"u-7f3a9c2e41:wrong-password").decode()
    trace = [
        ex(
            "GET",
            "/me",
            200,
            {"username": "u-7f3a9c2e41"},
            headers={"Authorization": f"Basic {basic}"},
        ),
        ex(
            "GET",
            "/protected/?minutes=30",
            200,
            [],
            headers={"x-key": "k-0b1c2d3e4f5a", "x-token": "fixed"},
        ),
    ]
    text = reproduce.script(outcome("t"), {"t": trace}, env)
    assert text
    assert (
        "#   APP_USER=u-7f3a9c2e41\n#   APP_KEY=k-0b1c2d3e4f5a\n" in text and "MINUTES" not in text
    )
    lines = requests_lines(text)
    assert '"Authorization": basic(APP_USER, "wrong-password")' in lines
    assert '"x-key": APP_KEY, "x-token": "fixed"' in lines and '"/protected/?minutes=30"' in lines
    assert 'APP_USER = "u-7f3a9c2e41"  # your app\'s APP_USER' in text


def test_a_test_that_sent_nothing_has_no_script() -> None:
    assert reproduce.script(outcome("t"), {"t": []}, {}) is None
    assert reproduce.script(outcome("t"), {}, {}) is None


# files beside the report -----------------------------------------------------------------------------
def test_file_names_are_safe_and_unique() -> None:
    names = [
        "test_plain",
        "../../etc/passwd",
        "a/b\\c",
        "test_x[../../y]",
        "CON",
        "test_x[a b]",
        "test_x[a_b]",
        ".hidden",
        "",
        "x" * 300,
    ]
    outcomes = [
        Outcome(check="contract", name=n, item="i", passed=False, reproducer="print(1)\n")
        for n in [*names, "test_plain"]
    ]
    paths = [path for path, _ in reproduce.files(outcomes).values()]
    assert len(set(paths)) == len(outcomes)
    assert paths[0] == "reproduce/test_plain.py"
    for path in paths:
        folder, name = path.split("/")
        assert folder == "reproduce" and re.fullmatch(r"[A-Za-z0-9_-]{1,90}\.py", name), path
        assert name.split(".")[0].upper() != "CON"


def test_the_report_writes_and_shows_each_script(tmp_path: Path) -> None:
    script = 'print("<b>")  # the grader\'s test_x[a/b]\n'
    failed = Outcome(
        check="contract",
        name="test_x[a/b]",
        item="i",
        passed=False,
        message="m",
        expected="status 401",
        actual="status 200",
        reproducer=script,
        exchange=ex("GET", "/users/me", 200, {}),
    )
    result = Result(
        assignment="demo",
        assignment_version="1",
        submission="s",
        seed=0,
        status=Status.GRADED,
        items=[
            ItemScore(
                id="i",
                title="Item",
                category="c",
                points=0,
                max_points=2,
                visibility="visible",
                outcomes=[failed],
            )
        ],
    )
    (tmp_path / "reproduce").mkdir()
    (tmp_path / "reproduce" / "stale.py").write_text("an earlier grade's")
    output.write(result, tmp_path)
    files = list((tmp_path / "reproduce").iterdir())
    assert [f.read_text() for f in files] == [script]
    name = files[0].name
    html = (tmp_path / "report.html").read_text()
    assert "Reproduce on your machine" in html and f"python reproduce/{name}" in html
    assert "print(&#34;&lt;b&gt;&#34;)" in html and '<b>")' not in html
    assert f"python reproduce/{name}" in markdown.render(result)


# for real: mutants of fastapi-db-auth ---------------------------------------------------------------
mutants_mod = benchmark_mutants()
MUTANTS = {m.name: m for m in mutants_mod.load("fastapi-db-auth")}
# mutant -> the critical test that catches it (its last request shows the hole)
CASES = {
    "alg-none-accepted": "test_forged_tokens_are_refused",  # a token under another key accepted
    "token-never-expires": "test_forged_tokens_are_refused",  # an expired token, signed with the key
    "create-item-no-ownership": "test_other_users_cannot_touch_the_owners_items",
}


BASICS = {m.name: m for m in mutants_mod.load("fastapi-basics")}
BASICS_CASES = {
    "password-not-checked": "test_wrong_credentials_are_never_let_in",
    "token-hardcoded": "test_protected_opens_only_with_the_environments_values",
}


def _replay(script: Path, app: LocalApp, times: int) -> list[int]:
    """Run the script `times` times against `app`; the last answer's status of each run."""
    statuses = []
    try:
        for _ in range(times):
            done = subprocess.run(
                [sys.executable, str(script), app.base_url],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                cwd=script.parent,
            )
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            assert "Cannot go on" not in done.stdout
            statuses.append(_last_status(done.stdout))
        return statuses
    finally:
        app.stop()


@pytest.mark.parametrize("name", BASICS_CASES)
def test_a_basics_mutants_reproducer_shows_its_bug(name: str, tmp_path: Path) -> None:
    """No database: the script's header names the env values its requests send (the Basic user,
    a key); the mutant started with them lets the request in, the reference refuses it."""
    spec = assignments.load("fastapi-basics")

    def start(app_dir: Path, env: dict[str, str]) -> LocalApp:
        app = LocalApp(
            app_dir,
            {**{k: secrets.token_hex(12) for k in spec.runtime.env}, **env},
            tmp_path / f"{uuid.uuid4().hex[:6]}.log",
            health_path=spec.runtime.health_path,
        )
        app.start()
        return app

    mutant_dir = mutants_mod.materialize(BASICS[name], tmp_path / "app")
    app = start(mutant_dir, {})
    try:
        run_ = run_suite(
            spec.tests_dir, Target(base_url=app.base_url, env=dict(app.env), source=mutant_dir)
        )
    finally:
        app.stop()
    o = next(o for o in run_.outcomes if o.name == BASICS_CASES[name])
    assert not o.passed and o.reproducer and o.exchange and o.exchange.status == 200
    env = dict(re.findall(r"^#   (\w+)=(\S+)$", o.reproducer, re.M))
    assert env and all(app.env[k] == v for k, v in env.items())
    script = tmp_path / "t.py"
    script.write_text(o.reproducer)
    assert _replay(script, start(mutant_dir, env), 2) == [200, 200]
    refused = _replay(script, start(ROOT / "reference_solution" / "fastapi-basics", env), 1)[0]
    assert 400 <= refused < 500, "the reference refuses, as the grader expected"


def _serve(app_dir: Path, pg: localpg.LocalPostgres, env: dict[str, str], log: Path) -> LocalApp:
    app = LocalApp(
        app_dir,
        {
            "DATABASE_URL": fresh_database(pg, "repro"),
            "SECRET_KEY": secrets.token_hex(32),
            "ACCESS_TOKEN_EXPIRE_MINUTES": "30",
            **env,
        },
        log,
    )
    app.migrate()
    app.start()
    return app


def _last_status(out: str) -> int:
    found = re.findall(r"^This run's last answer: status (\d+)$", out, re.M)
    assert found, out[-2000:]
    return int(found[-1])


@pytest.mark.postgres
@pytest.mark.parametrize("name", CASES)
def test_a_mutants_reproducer_shows_its_bug(
    name: str, postgres: localpg.LocalPostgres, tmp_path: Path
) -> None:
    graded = mutants_mod.run_local(MUTANTS[name], postgres, tmp_path / "graded", markers="critical")
    assert graded.error is None, graded.error
    failed = {o.name: o for o in graded.failed}
    assert CASES[name] in failed, sorted(failed)
    assert all(o.reproducer for o in graded.failed if o.exchange), (
        "every failure with a request has one"
    )
    o = failed[CASES[name]]
    assert o.reproducer and o.exchange and o.exchange.status is not None
    bug = o.exchange.status  # the grading run's last answer: the hole (let in)
    assert 200 <= bug < 300

    result = Result(
        assignment="fastapi-db-auth",
        assignment_version="1",
        submission=name,
        seed=0,
        status=Status.GRADED,
        items=graded.items,
    )
    output.write(result, tmp_path / "report")
    script = tmp_path / "report" / "reproduce" / f"{reproduce.file_name(o.name)}.py"
    assert script.read_text() == o.reproducer
    env = dict(re.findall(r"^#   (\w+)=(\S+)$", o.reproducer, re.M))
    if name == "token-never-expires":  # its test signs an expired token with the app's key
        assert set(env) == {"SECRET_KEY"}

    mutant_dir = mutants_mod.materialize(MUTANTS[name], tmp_path / "again" / "app")
    again = _replay(script, _serve(mutant_dir, postgres, env, tmp_path / "mutant.log"), 2)
    assert again == [bug, bug], "the bug shows on every run, on the same database"
    expected = _replay(script, _serve(REFERENCE_DIR, postgres, env, tmp_path / "reference.log"), 1)
    assert expected[0] in (401, 403), "the reference refuses, as the grader expected"
