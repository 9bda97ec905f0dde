"""Reproducers: a failing contract test's request sequence as a Python script (standard library
only) that a student runs against their own app: `python reproduce/<test>.py [BASE_URL]`.

A curl line from the grading run cannot be replayed elsewhere: its user does not exist on the
student's machine and its token is signed with the run's key. The script replays the sequence with
the app's own answers instead:

- a value that a request carries and an earlier answer gave (a token, an id, a string of an
  answer's JSON) is read from that answer when the script runs (`access_token = pick(answer,
  "access_token")`); steps that earlier tests made for this one (a shared user registered and
  logged in) come first, found the same way, and so does the request that made an e-mail's user;
- an e-mail address the test invented gets a suffix new on every run, wherever it appears (URLs,
  JSON and form bodies, Basic credentials, token claims): the script runs twice on one database;
- a JWT that no answer gave (the test forged it) is rebuilt at run time from this run's values,
  its times kept relative (an `exp` an hour ago stays an hour ago): re-signed with the env value
  it verifies with (the script says to start the app with it), or — signed with a key the app must
  not accept, unsigned, altered — with its header and signature as the test made them.

Nothing here knows an assignment: values are found by where they occur, never by their names.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import functools
import hashlib
import hmac
import json
import keyword
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlencode, urlsplit

from grader.core import CUT, Exchange, Outcome, one_line

DEFAULT_URL = "http://localhost:8000"
FOLDER = "reproduce"  # beside report.html: the scripts of the failed tests
# an answer's string shorter than this is too likely to recur by chance to be looked for
MIN_TEXT = 8
MAX_PRELUDE = 40  # requests of earlier tests a script may replay first
_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
_JWT = re.compile(r"(?<![\w.-])[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*(?![\w.-])")
_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_WINDOWS_NAMES = {
    *["CON", "PRN", "AUX", "NUL"],
    *(f"{d}{n}" for d in ("COM", "LPT") for n in range(10)),
}
_TIMES = ("exp", "iat", "nbf")  # JWT time claims: kept relative to the time the script runs
_DROP = {"host", "content-length", "user-agent", "accept-encoding", "connection"}
# names a script defines itself (answer values never take them)
_RESERVED = {
    *[
        "BASE",
        "RUN",
        "NOW",
        "OPENER",
        "STEP",
        "send",
        "pick",
        "q",
        "show",
        "basic",
        "jwt_signed",
        "jwt_forged",
        "b64",
        "status",
        "answer",
    ],
    *["base64", "hashlib", "hmac", "json", "sys", "time", "urllib", "uuid"],
    *dir(builtins),
}


def script(
    outcome: Outcome,
    traces: Mapping[str, list[Exchange]],
    env: Mapping[str, str],
    *,
    now: float | None = None,
) -> str | None:
    """The reproducer of a failed test: `traces[outcome.name]` (its exchanges), preceded by what the
    tests before it (earlier in `traces`) did that it relies on; `env`: the app's env in the grading
    run (a forged token's key is looked for among its values). None when the test sent nothing."""
    if not traces.get(outcome.name):
        return None
    try:
        return _build(outcome, traces, env, now or time.time())
    except Exception:  # a reproducer is a help to the student: making one never costs a grade
        return None


def _build(
    outcome: Outcome, traces: Mapping[str, list[Exchange]], env: Mapping[str, str], now: float
) -> str:
    log: list[Exchange] = []
    origin: list[str] = []  # the test each exchange of the log belongs to
    for name, exchanges in traces.items():
        if name != outcome.name:
            log += exchanges
            origin += [name] * len(exchanges)
    start = len(log)
    log += traces[outcome.name]
    origin += [outcome.name] * (len(log) - start)
    index = _Log(log)
    needed = _closure(index, env, now, set(range(start, len(log))))
    # a first pass finds the answers' values the requests use: their variables are then named in
    # the order the answers come (the first user's token is `access_token`, the next one's `_2`)
    draft = _Script(index, env, now, allowed=needed)
    for pos in sorted(needed):
        draft.request(pos)
    used = sorted(
        (pos, n, path) for pos, paths in draft.picks.items() for n, path in enumerate(paths)
    )
    final = _Script(index, env, now, allowed=needed)
    for pos, _, path in used:
        final.picks.setdefault(pos, {})[path] = final._name(_var_name(index.fact(pos, path)))
    return final.render(outcome, origin, start)


def _closure(log: _Log, env: Mapping[str, str], now: float, needed: set[int]) -> set[int]:
    """`needed` and the earlier requests they rely on: those whose answers gave values they send,
    those that made the users of the e-mails they send; the same for those, up to MAX_PRELUDE."""
    first, frontier = min(needed), sorted(needed)
    while frontier:
        probe = _Script(log, env, now, allowed=None)
        for pos in frontier:
            probe.request(pos)
        room = MAX_PRELUDE - sum(1 for p in needed if p < first)
        new = sorted(p for p in probe.deps if p not in needed)[-room:] if room > 0 else []
        needed |= set(new)
        frontier = new
    return needed


@dataclass(frozen=True)
class _Expr:
    """A value computed when the script runs: a variable (an answer's value, an e-mail, a token)."""

    code: str
    is_int: bool = False

    def text(self) -> str:
        return f"str({self.code})" if self.is_int else self.code


@dataclass(frozen=True)
class _Fact:
    """A value in an earlier answer: where it is, and what the request that got it addressed."""

    pos: int
    path: tuple[str | int, ...]
    noun: str  # the last word of that request's path, e.g. "things" for POST /owners/5/things/

    @property
    def key(self) -> str:
        return next((p for p in reversed(self.path) if isinstance(p, str)), "")


@dataclass(frozen=True)
class _Hint:
    """Where a value sits in a request: the key it is under, the path word before it."""

    key: str = ""
    noun: str = ""


Parts = list[str | _Expr]  # literal text and values computed at run time, in order


class _Log:
    """The exchanges a script may replay, in order, and what their answers and requests hold."""

    def __init__(self, exchanges: list[Exchange]) -> None:
        self.exchanges = exchanges
        self.facts: dict[str | int, list[_Fact]] = {}  # an answer's value -> where, in log order
        for pos, ex in enumerate(exchanges):
            noun = _noun(urlsplit(ex.url).path)
            for path, value in _answer_values(ex.response_body):
                self.facts.setdefault(value, []).append(_Fact(pos, path, noun))
        self.texts = [s for s in self.facts if isinstance(s, str)]
        self._sent: dict[int, str] = {}

    def fact(self, pos: int, path: tuple[str | int, ...]) -> _Fact:
        ex = self.exchanges[pos]
        return _Fact(pos, path, _noun(urlsplit(ex.url).path))

    def sent(self, pos: int) -> str:
        """Everything request `pos` carries, as text (URL decoded)."""
        if pos not in self._sent:
            ex = self.exchanges[pos]
            basic = [
                _b64(v[6:], url=False)
                for v in ex.request_headers.values()
                if v[:6].lower() == "basic "
            ]
            self._sent[pos] = "\n".join(
                [
                    unquote_plus(ex.url),
                    *ex.request_headers.values(),
                    ex.request_body or "",
                    *(b.decode(errors="replace") for b in basic if b),
                ]
            )
        return self._sent[pos]


class _Script:
    def __init__(
        self, log: _Log, env: Mapping[str, str], now: float, allowed: set[int] | None
    ) -> None:
        self.index, self.log, self.env, self.now = log, log.exchanges, env, now
        self.allowed = allowed  # answers whose values may be used; None: any (finding the prelude)
        self.deps: set[int] = set()  # earlier requests the rendered ones rely on
        self.names: set[str] = set(_RESERVED)
        self.picks: dict[int, dict[tuple[str | int, ...], str]] = {}  # pos -> path -> variable
        self.emails: dict[str, str] = {}  # address in the grading run -> variable
        self.tokens: dict[str, _Expr | None] = {}
        # the app's env values (long enough not to recur by chance) -> their names
        self.env_values = {v: k for k, v in env.items() if len(v) >= MIN_TEXT}
        self.env_vars: dict[str, str] = {}  # env name -> its variable: the app must have its value
        self.pending: list[str] = []  # definitions the next request needs (forged tokens)
        self.helpers: set[str] = set()

    # values from earlier answers, e-mails ------------------------------------------------------
    def _lookup(self, value: str | int, hint: _Hint, pos: int) -> _Expr | None:
        facts = [f for f in self.index.facts.get(value, ()) if f.pos < pos]
        if not facts:
            return None
        if isinstance(value, str) and any(
            value in self.index.sent(p) for p in range(facts[0].pos + 1)
        ):
            return None  # the test sent it before any answer had it: its own value
        fact = max(facts, key=lambda f: (_score(f, hint), -f.pos))
        self.deps.add(fact.pos)
        if self.allowed is not None and fact.pos not in self.allowed:
            return None
        names = self.picks.setdefault(fact.pos, {})
        if fact.path not in names:
            names[fact.path] = self._name(_var_name(fact))
        return _Expr(names[fact.path], is_int=isinstance(value, int))

    def _email(self, address: str, pos: int) -> _Expr:
        made = [p for p in range(pos + 1) if address in self.index.sent(p)]
        creator = next(
            (p for p in made if 200 <= (self.log[p].status or 0) < 300), made[0] if made else pos
        )
        if creator < pos:
            self.deps.add(creator)
        if address not in self.emails:
            self.emails[address] = self._name(f"email_{len(self.emails) + 1}")
        return _Expr(self.emails[address])

    def _name(self, base: str) -> str:
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    # text -----------------------------------------------------------------------------------
    def _text(self, value: str, hint: _Hint, pos: int, numeric: bool = False) -> Parts:
        """A string of a request as parts: the whole from an answer, or the e-mails, tokens and
        answers' strings in it."""
        if numeric and value.isdigit() and str(int(value)) == value:
            found = self._lookup(int(value), hint, pos)
            if found:
                return [found]
        if len(value) >= MIN_TEXT and (found := self._lookup(value, hint, pos)):
            return [found]
        if value in self.env_values:
            return [self._env(self.env_values[value])]
        return self._scan(value, pos)

    def _scan(self, text: str, pos: int) -> Parts:
        spans: list[tuple[int, int, _Expr]] = []
        for m in _JWT.finditer(text):
            if found := self._lookup(m.group(), _Hint(), pos) or self._token(m.group(), pos):
                spans.append((m.start(), m.end(), found))
        for m in _EMAIL.finditer(text):
            email = self._lookup(m.group(), _Hint(), pos) or self._email(m.group(), pos)
            spans.append((m.start(), m.end(), email))
        for value in self.index.texts:
            if value in text and (found := self._lookup(value, _Hint(), pos)):
                spans += [(m.start(), m.end(), found) for m in re.finditer(re.escape(value), text)]
        for value, name in self.env_values.items():
            if value in text:
                env = self._env(name)
                spans += [(m.start(), m.end(), env) for m in re.finditer(re.escape(value), text)]
        parts: Parts = []
        at = 0
        for begin, end, expr in sorted(spans, key=lambda s: (s[0], -s[1])):
            if begin >= at:
                parts += [text[at:begin], expr] if begin > at else [expr]
                at = end
        return parts + ([text[at:]] if at < len(text) else [])

    # JWTs the test made ----------------------------------------------------------------------
    def _token(self, token: str, pos: int) -> _Expr | None:
        if token in self.tokens:
            return self.tokens[token]
        head, payload, signature = token.split(".")
        header, claims = _b64json(head), _b64json(payload)
        self.tokens[token] = None
        if not isinstance(header, dict) or "alg" not in header or not isinstance(claims, dict):
            return None
        code = self._literal(claims, "", pos, claims=True)
        key = self._key(head, payload, signature, header)
        if key is None and code == _py(claims):
            return None  # nothing to make for this run: kept as it is
        name = self._name(f"token_{sum(1 for t in self.tokens.values() if t) + 1}")
        self.helpers |= {"b64", "jwt_signed" if key is not None else "jwt_forged"}
        if key is not None:
            self.pending += [
                f"# a token the test signed itself with {key}: signed again with it, with this "
                "run's values",
                f"{name} = jwt_signed({_py(head)}, {code}, {self._env(key).code})",
            ]
        else:
            what = (
                "unsigned (alg none)"
                if not signature
                else "signed with a key the app must not accept, or altered after signing"
            )
            self.pending += [
                f"# a token the test forged, {what}: its header and signature stay the "
                "test's, its claims are this run's",
                f"{name} = jwt_forged({_py(head)}, {code}, {_py(signature)})",
            ]
        self.tokens[token] = _Expr(name)
        return self.tokens[token]

    def _key(self, head: str, payload: str, signature: str, header: dict[str, Any]) -> str | None:
        """The name of the app's env value the token's HMAC verifies with, if any."""
        digest = _HMAC.get(str(header.get("alg")))
        mac = _b64(signature)
        if digest is None or mac is None:
            return None
        for env_name, value in self.env.items():
            signed = hmac.new(value.encode(), f"{head}.{payload}".encode(), digest).digest()
            if value and hmac.compare_digest(signed, mac):
                return env_name
        return None

    def _env(self, env_name: str) -> _Expr:
        """The variable holding an env value of the app's (the script asks to start the app with it)."""
        if env_name not in self.env_vars:
            upper = env_name.isidentifier() and env_name.isupper()
            self.env_vars[env_name] = self._name(env_name if upper else "ENV_VALUE")
        return _Expr(self.env_vars[env_name])

    # values in Python --------------------------------------------------------------------------
    def _literal(self, value: Any, key: str, pos: int, *, claims: bool = False) -> str:
        """A JSON value as a Python expression, with this run's values in it."""
        if isinstance(value, dict):
            return (
                "{"
                + ", ".join(
                    f"{_py(k)}: {self._literal(v, str(k), pos, claims=claims)}"
                    for k, v in value.items()
                )
                + "}"
            )
        if isinstance(value, list):
            return "[" + ", ".join(self._literal(v, key, pos, claims=claims) for v in value) + "]"
        if isinstance(value, bool) or value is None:
            return repr(value)
        if isinstance(value, int | float) and claims and key in _TIMES and math.isfinite(value):
            return _relative(value - self.now)
        if isinstance(value, int) and _idish(key):
            found = self._lookup(value, _hint(key), pos)
            return found.code if found else repr(value)
        if isinstance(value, str):
            numeric = _idish(key) or (claims and key == "sub")
            return _code(self._text(value, _hint(key), pos, numeric))
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not finite")
        return repr(value)

    def _url(self, url: str, pos: int) -> str:
        parts = urlsplit(url)
        out: Parts = []
        noun = ""
        for n, segment in enumerate(parts.path.split("/")):
            if n:
                out.append("/")
            raw = unquote(segment)
            found = self._text(raw, _Hint(noun=noun), pos, numeric=True) if raw else []
            out += _quoted(found) if _dynamic(found) else [segment]
            noun = raw if raw and not raw.isdigit() else noun
        for n, pair in enumerate(parts.query.split("&") if parts.query else []):
            name, eq, raw = pair.partition("=")
            key = unquote_plus(name)
            found = self._text(unquote_plus(raw), _hint(key), pos, _idish(key)) if eq else []
            out.append(f"{'&' if n else '?'}{name}{eq}")
            out += _quoted(found) if _dynamic(found) else [raw]
        return _code(out, url=True)

    def _header(self, value: str, pos: int) -> str:
        scheme, _, credentials = value.partition(" ")
        plain = _b64(credentials, url=False) if scheme.lower() == "basic" else None
        if plain is None:
            return _code(self._scan(value, pos))
        try:
            user, colon, password = plain.decode().partition(":")
        except UnicodeDecodeError:
            return _py(value)
        u, p = self._text(user, _Hint(), pos), self._text(password, _Hint(), pos)
        if (
            not colon
            or base64.b64encode(plain).decode() != credentials.strip()
            or not _dynamic([*u, *p])
        ):
            return _py(value)
        self.helpers.add("basic")
        return f"basic({_code(u)}, {_code(p)})"

    def _body(self, ex: Exchange, pos: int) -> tuple[str, str] | None:
        """The keyword and value of `send` that sends the request's body."""
        body = ex.request_body
        if not body:
            return None
        kind = next(
            (v.lower() for k, v in ex.request_headers.items() if k.lower() == "content-type"), ""
        )
        if CUT not in body and "json" in kind:
            try:
                return "json_body", self._literal(json.loads(body), "", pos)
            except ValueError:
                pass  # not JSON after all (a test sending a broken body): sent as text
        if CUT not in body and "x-www-form-urlencoded" in kind:
            pairs = parse_qsl(body, keep_blank_values=True)
            if urlencode(pairs) == body:
                items = [(k, _code(self._text(v, _hint(k), pos, _idish(k)))) for k, v in pairs]
                if len({k for k, _ in items}) == len(items):
                    return "form", "{" + ", ".join(f"{_py(k)}: {v}" for k, v in items) + "}"
                return "form", "[" + ", ".join(f"({_py(k)}, {v})" for k, v in items) + "]"
        return "data", _code(self._scan(body, pos))

    # the script -------------------------------------------------------------------------------
    def request(self, pos: int) -> list[str]:
        """The lines that send request `pos` (definitions it needs first)."""
        ex = self.log[pos]
        args = [_py(ex.method), self._url(ex.url, pos)]
        headers = [
            f"{_py(k)}: {self._header(v, pos)}"
            for k, v in ex.request_headers.items()
            if k.lower() not in _DROP and not (k.lower() == "accept" and v == "*/*")
        ]
        if headers:
            args.append("headers={" + ", ".join(headers) + "}")
        body = self._body(ex, pos)
        lines = []
        if body and body[0] == "data" and ex.request_body and CUT in ex.request_body:
            lines.append("# the grader kept only the start of this body: the replay sends that")
        if body:
            args.append(f"{body[0]}={body[1]}")
        lines.append(f"status, answer = send({', '.join(args)})")
        defs, self.pending = self.pending, []
        return defs + lines

    def render(self, outcome: Outcome, origin: list[str], start: int) -> str:
        blocks = [(pos, self.request(pos)) for pos in sorted(self.allowed or ())]
        message = outcome.message.strip().splitlines() or [""]
        lines = [
            "#!/usr/bin/env python3",
            f"# Replays the grader's test {one_line(outcome.name)} against your app.",
        ]
        if message[0]:
            lines.append(f"# What it checks: {one_line(message[0])}")
        earlier = sum(1 for pos, _ in blocks if pos < start)
        lines += [
            "#",
            f"# The test's {len(blocks) - earlier} request(s)"
            + (
                f", after {earlier} that earlier tests made and it relies on (users, tokens, things)"
                if earlier
                else ""
            )
            + ".",
            "# Tokens and ids are read from your app's own answers; e-mail addresses are new on",
            "# every run, so it runs again and again on the same database.",
        ]
        if self.env_vars:
            lines += [
                "#",
                "# Start your app with these env values of the grading run (made for it at random):",
            ]
            lines += [f"#   {name}={self.env[name]}" for name in self.env_vars]
            lines.append("# The requests below send them or sign a token with them.")
        lines += [
            "#",
            f"# Run it:  python THIS_FILE [BASE_URL]    (default BASE_URL: {DEFAULT_URL})",
            "# Python 3, standard library only. The requests are in main(); the helpers after it.",
            "",
            _HEAD.strip("\n"),
            "",
        ]
        lines += [
            f"{var} = {_py(self.env[name])}  # your app's {name}"
            for name, var in self.env_vars.items()
        ]
        steps = [f"{var} = {_code(_new_email(address))}" for address, var in self.emails.items()]
        for n, (pos, block) in enumerate(blocks, 1):
            ex = self.log[pos]
            where = f" (made by the earlier test {one_line(origin[pos])})" if pos < start else ""
            last = " — the request the check failed on" if n == len(blocks) else ""
            steps += [
                "",
                f"# {n}. {ex.method} {_shown(self._url(ex.url, pos))}{where}{last}",
                *block,
            ]
            steps += [
                f"{var} = pick(answer, {', '.join(_py(p) for p in path)})"
                for path, var in self.picks.get(pos, {}).items()
            ]
        expected = outcome.expected if outcome.expected is not None else message[-1]
        got = outcome.actual
        if got is None:
            ex = self.log[-1]
            got = f"status {ex.status}" if ex.status is not None else f"no answer: {ex.error}"
        steps += ["", f"show({_py(expected)}, {_py(got)}, status)"]
        lines += ["", "", "def main():", *(f"    {line}" if line else "" for line in steps), "", ""]
        lines += [_TOOLS.strip("\n")]
        lines += ["\n\n" + _HELPERS[h].strip("\n") for h in _HELPERS if h in self.helpers]
        lines += ["", "", 'if __name__ == "__main__":', "    main()"]
        return "\n".join(lines) + "\n"


_HEAD = r"""
import base64, hashlib, hmac, json, sys, time, urllib.error, urllib.parse, urllib.request, uuid

BASE = (sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000").rstrip("/")
RUN = uuid.uuid4().hex[:8]  # new on every run: e-mail addresses below are new each time
NOW = int(time.time())
if hasattr(sys.stdout, "reconfigure"):
    sys.stdout.reconfigure(errors="replace")  # any answer prints, whatever the console's encoding


"""

_TOOLS = r'''
# How the requests are sent and the answers shown -----------------------------------------------
class _Redirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is shown as the answer, as the grader saw it


OPENER = urllib.request.build_opener(_Redirect, urllib.request.ProxyHandler({}))
STEP = [0]


def send(method, path, headers=None, json_body=None, form=None, data=None):
    """Send one request to BASE + path, print it and the answer; (status, answer as JSON or text)."""
    STEP[0] += 1
    headers = dict(headers or {})
    body = None
    if json_body is not None:
        body = json.dumps(json_body).encode()
    elif form is not None:
        body = urllib.parse.urlencode(form).encode()
    elif data is not None:
        body = data.encode()
    print(shown(f"\n[{STEP[0]}] {method} {BASE}{path}"))
    for name, value in headers.items():
        print(shown(f"    {name}: {value}"))
    if body:
        print("    " + shown(body.decode(errors="replace")[:1000]))
    request = urllib.request.Request(BASE + path, data=body, headers=headers, method=method)
    try:
        with OPENER.open(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except OSError as error:
        print(shown(f"--> no answer: {error}"))
        return None, None
    text = raw.decode("utf-8", "replace")
    print(f"--> {status}")
    if text:
        print(shown(text[:3000]))
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def pick(answer, *path):
    """A value of the answer above (a token, an id): the requests below send it."""
    value = answer
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            sys.exit(f"\nCannot go on: the answer above has no {list(path)}, which the next requests need.")
    return value


def q(value):
    return urllib.parse.quote(str(value), safe="")


def show(expected, got, status):
    print("\n=== The grader's check, in the grading run:")
    print("expected:", shown(expected))
    print("got:     ", shown(got))
    print("This run's last answer: status", status)


def shown(text):
    """`text` to read: a control character from the app (an escape sequence) is printed as its
    escape, never obeyed by this terminal."""
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in str(text))
'''

_HELPERS = {
    "basic": r"""
def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
""",
    "b64": r"""
def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
""",
    "jwt_signed": r'''
def jwt_signed(header, claims, key):
    """A JWT with the test's header and these claims, signed with key (HMAC, the header's alg)."""
    alg = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"]
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    unsigned = header + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    return unsigned + "." + b64(hmac.new(key.encode(), unsigned.encode(), digest).digest())
''',
    "jwt_forged": r'''
def jwt_forged(header, claims, signature):
    """A JWT with the test's header and signature around these claims: the signature does not fit."""
    return header + "." + b64(json.dumps(claims, separators=(",", ":")).encode()) + "." + signature
''',
}


# helpers ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8192)
def _answer_values(body: str | None) -> tuple[tuple[tuple[str | int, ...], str | int], ...]:
    """(path, value) of each value of a JSON answer that later requests may send: integers under an
    id-like key, strings of MIN_TEXT characters or more."""
    if not body or CUT in body:
        return ()
    try:
        data = json.loads(body)
    except ValueError:
        return ()
    found: list[tuple[tuple[str | int, ...], str | int]] = []

    def walk(value: Any, path: tuple[str | int, ...], key: str) -> None:
        if len(found) >= 500 or len(path) > 8:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, str(k)), str(k))
        elif isinstance(value, list):
            for n, v in enumerate(value[:100]):
                walk(v, (*path, n), key)
        elif (isinstance(value, int) and not isinstance(value, bool) and _idish(key)) or (
            isinstance(value, str) and MIN_TEXT <= len(value) <= 4096
        ):
            found.append((path, value))

    walk(data, (), "")
    return tuple(found)


def _idish(key: str) -> bool:
    return key.lower() == "id" or key.lower().endswith("_id") or key.endswith("Id")


def _hint(key: str) -> _Hint:
    noun = re.sub(r"(_id|Id)$", "", key) if key.lower() != "id" else ""
    return _Hint(key=key, noun=noun)


def _singular(word: str) -> str:
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _score(fact: _Fact, hint: _Hint) -> int:
    """How well an answer's value fits where a request sends it (ties: the earliest answer, which
    made the thing)."""
    key = fact.key
    if hint.key and key == hint.key and key.lower() != "id":
        return 3
    if key.lower() == "id":
        return 3 if hint.noun and _singular(fact.noun) == _singular(hint.noun) else 2
    return 1


def _noun(path: str) -> str:
    words = [unquote(w) for w in path.split("/") if w and not w.isdigit()]
    return words[-1] if words else ""


def _var_name(fact: _Fact) -> str:
    key = fact.key or "value"
    if key.lower() == "id" and fact.noun:
        key = f"{_singular(fact.noun)}_id"
    name = re.sub(r"\W", "_", key, flags=re.ASCII).strip("_") or "value"
    return f"v_{name}" if name[0].isdigit() or keyword.iskeyword(name) else name


def _b64(text: str, *, url: bool = True) -> bytes | None:
    try:
        padded = text.strip() + "=" * (-len(text.strip()) % 4)
        return base64.urlsafe_b64decode(padded) if url else base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64json(segment: str) -> Any:
    raw = _b64(segment)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _relative(offset: float) -> str:
    """NOW plus `offset` seconds, in whole minutes when it is one give or take a few seconds (the
    grader minted the token a moment before the reproducer was made)."""
    off = round(offset)
    if abs(off) >= 60 and abs(off - round(off / 60) * 60) <= 5:
        off = round(off / 60) * 60
    return "NOW" if off == 0 else f"NOW {'+' if off > 0 else '-'} {abs(off)}"


def _new_email(address: str) -> Parts:
    local, _, domain = address.rpartition("@")
    return [f"{local}-", _Expr("RUN"), f"@{domain}"]


def _quoted(parts: Parts) -> Parts:
    """URL text: literals percent-encoded as they were, values encoded when the script runs."""
    return [
        quote(p, safe="@:+,;=!$&'()*~-._")
        if isinstance(p, str)
        else p
        if p.is_int
        else _Expr(f"q({p.code})")
        for p in parts
    ]


def _py(value: Any) -> str:
    """A Python literal (JSON's spelling of strings is Python's too)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    return repr(value)


def _code(parts: Parts, *, url: bool = False) -> str:
    """A Python expression for text made of literals and run-time values (an f-string)."""
    if not parts:
        return '""'
    if not any(isinstance(p, _Expr) for p in parts):
        return _py("".join(p for p in parts if isinstance(p, str)))
    if len(parts) == 1 and isinstance(parts[0], _Expr):
        return parts[0].code if url and parts[0].is_int else parts[0].text()
    inner = "".join(
        json.dumps(p, ensure_ascii=False)[1:-1].replace("{", "{{").replace("}", "}}")
        if isinstance(p, str)
        else "{" + p.code + "}"
        for p in parts
    )
    return f'f"{inner}"'


def _shown(code: str) -> str:
    """A URL's code as a comment shows it: /owners/{owner_id}/things/."""
    text = code[1:] if code.startswith('f"') else code
    return str(json.loads(text)) if text.startswith('"') else "{" + text + "}"


def _dynamic(parts: Parts) -> bool:
    return any(isinstance(p, _Expr) for p in parts)


def file_name(name: str) -> str:
    """A safe, readable file stem for a test name (no separators, dots or traversal); a hash of the
    name is added when characters had to change, so two names never share a file."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")[:80] or "test"
    if safe != name or safe.upper() in _WINDOWS_NAMES:
        safe += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return safe


def files(outcomes: Iterable[Outcome]) -> dict[int, tuple[str, str]]:
    """id(outcome) -> (its reproducer's path relative to the report, the script) for each outcome
    that has one: `reproduce/<safe test name>.py`, no two alike."""
    found: dict[int, tuple[str, str]] = {}
    for o in outcomes:
        if o.reproducer:
            stem = file_name(o.name)
            while any(path == f"{FOLDER}/{stem}.py" for path, _ in found.values()):
                stem = file_name(stem + "+")
            found[id(o)] = (f"{FOLDER}/{stem}.py", o.reproducer)
    return found
