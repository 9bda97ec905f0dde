"""Types and errors shared by every stage. Imports nothing from the rest of the grader."""

from __future__ import annotations

import csv
import enum
import io
import os
import shlex
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LABEL = "api-grader"  # every container/network/volume the grader creates carries this label
BODY_CAP = 4096  # bytes of a request/response body kept in a result
CUT = "more characters cut"  # marks a capped text
# reference traces, local-mode virtual environments
CACHE_DIR = Path(os.environ.get("API_GRADER_CACHE", Path.home() / ".cache" / "api-grader"))


class Fault(Exception):
    """Base of the grader's own errors."""


class GraderFault(Fault):
    """The grader or its machine failed (Docker unreachable, Postgres did not start).

    Never turned into a score: the submission is reported "not graded" and the command exits non-zero.
    """


class SubmissionRejected(Fault):
    """The submission itself is unusable (unsafe archive, no Dockerfile, too big). Graded 0 with the reason."""


class Status(enum.StrEnum):
    GRADED = "graded"  # every stage ran; the score is the rubric's
    REJECTED = "rejected"  # the submission could not be read
    BUILD_FAILED = "build_failed"
    START_FAILED = "start_failed"  # crashed or never became healthy
    NOT_GRADED = "not_graded"  # grader fault: no score is given


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_database(url: str, name: str) -> str:
    """The same server's URL for database `name` (user, host and query kept)."""
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def one_line(text: str) -> str:
    """`text` on one line: whitespace folded, every other unprintable character escaped (a NUL
    makes a script comment unreadable to Python; an ESC would reach a terminal as a command)."""
    return terminal_safe(" ".join(text.split()))


def terminal_safe(text: str) -> str:
    """`text` for a terminal to show, never to obey: each unprintable character but newline and
    tab becomes its escape, e.g. `\\x1b`: controls (ESC, BEL, CSI, carriage return), lone
    surrogates, and the format characters that reorder or hide what is shown (U+202E, U+200B)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)


def printable(text: str) -> str:
    """`text` as UTF-8 can carry it: a lone surrogate (an answer's JSON may hold "\\ud800") becomes
    its escape, so no writer of a result fails on what an app answered."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def scrub(value: Any, seen: set[int] | None = None) -> Any:
    """Every string inside `value` (dataclasses, dicts, lists; in place, identities kept) made
    `printable`; returns `value`."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return value
    seen.add(id(value))
    if is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            inner = getattr(value, f.name)
            if isinstance(inner, str):
                object.__setattr__(value, f.name, printable(inner))
            else:
                scrub(inner, seen)
    elif isinstance(value, dict):
        for key in list(value):
            inner = value.pop(key)
            value[printable(key) if isinstance(key, str) else key] = (
                printable(inner) if isinstance(inner, str) else scrub(inner, seen)
            )
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            value[i] = printable(inner) if isinstance(inner, str) else scrub(inner, seen)
    return value


# how a spreadsheet recognises a formula: a text cell starting so is run, not shown
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if not isinstance(value, str) or len(value) < 2 or not value.startswith(_FORMULA):
        return value  # a lone "-" (Moodle's "no grade") runs nothing
    try:
        float(value)  # "-10", "+2.5": a number a spreadsheet shows as one
        return value
    except ValueError:
        return "'" + value


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """Rows as CSV (RFC 4180: quotes where needed, CRLF) that no spreadsheet runs: names, file
    names and reasons come from students, so a text cell that starts like a formula gets a
    leading apostrophe (OWASP's advice for CSV injection); numbers stay as they are."""
    buf = io.StringIO()
    csv.writer(buf).writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file, fsync and rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # errors: a lone surrogate that slipped past scrub is written as its escape
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cap(text: str, limit: int = BODY_CAP) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} {CUT}]"


class Guard:
    """What the grader's requests to one app may cost; shared by every client of that app.

    Each request has a total time (connect to the body's last byte, not per read), its body is
    read up to `max_body` bytes, and after `strikes` timeouts in a row the app counts as
    unresponsive: later requests fail at once. `start_deadline` bounds all requests together.
    The messages name the cause, e.g. "GET /things/ did not answer within 10 s". Requests go to
    `origin` only (the app's base URL; its scheme, host and port): None sends nothing anywhere.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_body: int = 2 * 1024 * 1024,
        strikes: int = 3,
        origin: str | None = None,
    ) -> None:
        self.timeout, self.max_body, self.strikes = timeout, max_body, strikes  # strikes 0: never
        self.origin = origin  # a Target keeps it at its base_url
        self.stopped = ""  # why later requests are not sent; "" while they are
        self.sent = 0  # requests let through (tests compare it with what the app received)
        self._deadline: float | None = None  # time.monotonic() after which nothing is sent
        self._limit = 0.0
        self._timeouts = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """A copy for another process (fuzzing runs in one): the same terms and counts, what is
        left of the deadline; `absorb` takes back what the copy saw."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_deadline")}
        left = None if self._deadline is None else self._deadline - time.monotonic()
        return {**state, "left": left}

    def __setstate__(self, state: dict[str, Any]) -> None:
        left = state.pop("left")
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._deadline = None if left is None else time.monotonic() + left

    def absorb(self, copy: Guard, sent_before: int) -> None:
        """What a copy of this guard, made when `sent` was `sent_before`, saw in another process."""
        with self._lock:
            self.sent += copy.sent - sent_before
            self.stopped = self.stopped or copy.stopped

    def left(self) -> float | None:
        """Seconds until the deadline; None: there is none."""
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def stop(self, why: str) -> None:
        """Send nothing more: later requests fail at once, naming `why`."""
        with self._lock:
            self.stopped = self.stopped or why

    def start_deadline(self, seconds: float) -> None:
        """From now on, all requests together may take `seconds`."""
        self._deadline, self._limit = time.monotonic() + seconds, seconds

    def admit(self, what: str, timeout: float | None = None) -> tuple[float, str]:
        """(seconds `what`, e.g. "GET /things/", may take in all: `timeout`, else the guard's;
        never past the deadline, "") or (0, why it is not sent)."""
        with self._lock:
            if self._past_deadline():
                self.stopped = self.stopped or self._ran_out()
            if self.stopped:
                return 0.0, f"{what} not sent: {self.stopped}"
            self.sent += 1
            seconds = self.timeout if timeout is None else timeout
            if self._deadline is not None:
                seconds = min(seconds, self._deadline - time.monotonic())
            return seconds, ""

    def answered(self) -> None:
        with self._lock:
            self._timeouts = 0

    def timed_out(self, what: str, seconds: float, *, count: bool = True) -> str:
        """Why `what` has no answer after `seconds`; counts a strike unless `count` is False
        (requests sent at once time out together: that is not "in a row")."""
        with self._lock:
            if self._past_deadline():
                self.stopped = self.stopped or self._ran_out()
                return f"{what} got no answer before {self._ran_out()}"
            message = f"{what} did not answer within {seconds:g} s"
            if not count or self.stopped or not self.strikes:
                return message
            self._timeouts += 1
            if self._timeouts < self.strikes:
                return message
            self.stopped = (
                f"the app stopped answering ({self.strikes} requests in a row got no "
                f"answer, the last: {message})"
            )
            return f"{message}; the app stopped answering: later requests not sent"

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _ran_out(self) -> str:
        return f"the checks' time limit of {self._limit:g} s ran out"


@dataclass
class Target:
    """A running app as the checks see it."""

    base_url: str  # reachable from the grader process
    env: dict[str, str] = field(default_factory=dict)  # the env contract the app was started with
    database_url: str | None = None  # the app's database, reachable from the grader (postgresql://)
    restart: Callable[[], None] | None = None  # restart the app and wait until healthy again
    # other databases the run prepared, reachable from the grader; "migrated": the schema that the
    # runtime's migrate command alone created on an empty database, before the app ever started
    databases: dict[str, str] = field(default_factory=dict)
    # the command lines of the app's processes (its container's process list); None: not visible
    processes: Callable[[], list[str]] | None = None
    # the prepared submission tree, for tests that must read the student's files (read them only,
    # never import or run them); None: not available (a suite run by hand against a running app)
    source: Path | None = None
    # the address the grader's sockets bind to (the app network's gateway on this host), so no
    # request can leave by another interface; None: any (ports published on 127.0.0.1, local mode)
    local_address: str | None = None
    guard: Guard = field(default_factory=Guard)  # what each request to the app may cost

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in ("base_url", "guard") and "guard" in self.__dict__:
            # the guard's clients reach this app and nothing else, wherever a restart moves it
            self.guard.origin = self.base_url


@dataclass
class Exchange:
    """One HTTP request and its response, as a student can replay it."""

    method: str
    url: str
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: str | None = None
    status: int | None = None  # None: no response (timeout, connection refused)
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str | None = None
    error: str | None = None

    def curl(self) -> str:
        parts = ["curl", "-i", "-X", self.method]
        for name, value in self.request_headers.items():
            if name.lower() in {
                "host",
                "content-length",
                "user-agent",
                "accept-encoding",
                "connection",
            }:
                continue
            if name.lower() == "accept" and value == "*/*":
                continue
            parts += ["-H", f"{name}: {value}"]
        if self.request_body:
            parts += ["--data-raw", self.request_body]
        parts.append(self.url)
        return " ".join(shlex.quote(p) for p in parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "curl": self.curl()}


@dataclass
class Outcome:
    """The result of one check (a contract test, a fuzzing finding, a database probe)."""

    check: str  # which registered check produced it: "contract", "schemathesis", ...
    name: str  # unique within the check: a test id, "POST /things/ · not_a_server_error · 500"
    item: str  # the rubric item it counts for
    passed: bool
    message: str = ""
    expected: str | None = None
    actual: str | None = None
    exchange: Exchange | None = None  # the request that showed the failure
    reference: Exchange | None = None  # the reference solution's answer to the same request
    skipped: bool = False  # not checked (e.g. local mode cannot see the Dockerfile)
    not_run: bool = False  # its check could not run (no image, no app): costs its points, one line
    # a security check: failed, it zeroes its item; the text says what the failure means
    critical: str | None = None
    # not checked because a step before the check failed (register, log in, create a thing): the
    # root cause, e.g. "could not log in (POST /login answered 404)"; it still costs its points
    blocked_by: str | None = None
    # a script that replays the test's whole request sequence against the student's own app
    reproducer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k not in {"exchange", "reference"}},
            "exchange": self.exchange.to_dict() if self.exchange else None,
            "reference": self.reference.to_dict() if self.reference else None,
        }


@dataclass
class ItemScore:
    id: str
    title: str
    category: str
    points: float
    max_points: float
    visibility: str
    outcomes: list[Outcome] = field(default_factory=list)
    not_checked: bool = False
    zeroed_by: str | None = None  # the failed critical check that zeroed the item, and why

    @property
    def passed(self) -> bool:
        return self.points >= self.max_points and not self.not_checked

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed and not o.skipped]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "category": self.category,
            "points": self.points,
            "max_points": self.max_points,
            "visibility": self.visibility,
            "passed": self.passed,
            "not_checked": self.not_checked,
            "zeroed_by": self.zeroed_by,
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


@dataclass
class CategoryScore:
    id: str
    title: str
    points: float
    max_points: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MigrateRun:
    """The runtime's migrate command run alone on an empty database, before the app's start."""

    command: list[str]
    exit_code: int | None  # None: it did not end within its time limit
    log: str  # tail


@dataclass
class Cause:
    """One root cause of lost points (grader.causes): the failures it explains and their cost."""

    title: str  # "could not log in (POST /login answered 404)", "POST /login answered 404"
    points: float  # the points its failures cost together
    outcomes: list[Outcome] = field(default_factory=list)  # failed, blocked or not run; worst first
    critical: str | None = None  # one of them is a security hole that zeroed an item: what it means

    @property
    def blocked(self) -> int:
        return sum(1 for o in self.outcomes if o.blocked_by)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "points": self.points,
            "critical": self.critical,
            "failed": len(self.outcomes) - self.blocked,
            "blocked": self.blocked,
            "outcomes": [{"check": o.check, "name": o.name, "item": o.item} for o in self.outcomes],
        }


@dataclass
class Late:
    """A submission against its deadline (grader.late): when it came in, and what that cost."""

    deadline: str  # ISO 8601 with its offset
    extension: bool  # the student's own deadline (the roster's), not the assignment's
    submitted_at: str | None  # ISO 8601; None: not known (no time given, not a git source)
    source: str  # where submitted_at came from: "roster", "command line", "commit date"; "" unknown
    grace_minutes: float
    penalty_per_day: float  # percent of the max score, per day late or part of one
    max_days: int | None  # later than this many days: not accepted, 0 points; None: no limit
    days: int  # days late, each started day after the deadline (0: on time or within the grace)
    too_late: bool  # more than max_days days late
    penalty: float  # points taken off the items' points (never more than they hold)


@dataclass
class Result:
    """Everything the grader learnt about one submission; what the report stage renders."""

    assignment: str
    assignment_version: str
    submission: str
    seed: int
    status: Status
    reason: str = ""  # one line a student understands when status is not GRADED
    score: float = 0.0
    max_score: float = 0.0
    categories: list[CategoryScore] = field(default_factory=list)
    items: list[ItemScore] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    build_log: str = ""  # tail
    app_log: str = ""  # tail
    runtime: str = "docker"  # or "local"
    run_id: str = ""  # the value of the LABEL on everything this run created
    hidden: int = 0  # rubric items left out (a self-check grades the visible ones only)
    hidden_points: float = 0.0
    migrate: MigrateRun | None = None  # None: no migrate command, or it never ran
    # START_FAILED, but the app answered HTTP (not its health check): the other checks ran
    answered_unhealthy: bool = False
    causes: list[Cause] = field(default_factory=list)  # why points were lost, costliest first
    # the deadline, the submission time and the late penalty, its own line in every report: `score`
    # is the items' points minus `late.penalty`; None: no late policy, or not graded
    late: Late | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignment": self.assignment,
            "assignment_version": self.assignment_version,
            "submission": self.submission,
            "seed": self.seed,
            "status": str(self.status),
            "reason": self.reason,
            "score": self.score,
            "max_score": self.max_score,
            "categories": [c.to_dict() for c in self.categories],
            "items": [i.to_dict() for i in self.items],
            "timings": self.timings,
            "build_log": self.build_log,
            "app_log": self.app_log,
            "runtime": self.runtime,
            "run_id": self.run_id,
            "hidden": self.hidden,
            "hidden_points": self.hidden_points,
            "migrate": asdict(self.migrate) if self.migrate else None,
            "answered_unhealthy": self.answered_unhealthy,
            "causes": [c.to_dict() for c in self.causes],
            "late": asdict(self.late) if self.late else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """The Result `to_dict` (full.json) holds: `from_dict(r.to_dict()).to_dict() ==
        r.to_dict()`. A cause's outcomes are the items' own objects again, found by (check, name,
        item) in the order they were saved."""
        items = [_item(i) for i in data["items"]]
        by_key: dict[tuple[str, str, str], list[Outcome]] = {}
        for item in items:
            for o in item.outcomes:
                by_key.setdefault((o.check, o.name, o.item), []).append(o)
        taken: dict[tuple[str, str, str], int] = {}

        def find(ref: dict[str, str]) -> Outcome:
            key = (ref["check"], ref["name"], ref["item"])
            n = taken.get(key, 0)
            taken[key] = n + 1
            same = by_key.get(key)
            if not same:
                raise ValueError(f"a cause names an outcome no item holds: {key}")
            return same[min(n, len(same) - 1)]

        migrate = data["migrate"]
        return cls(
            assignment=data["assignment"],
            assignment_version=data["assignment_version"],
            submission=data["submission"],
            seed=data["seed"],
            status=Status(data["status"]),
            reason=data["reason"],
            score=data["score"],
            max_score=data["max_score"],
            categories=[CategoryScore(**c) for c in data["categories"]],
            items=items,
            timings=data["timings"],
            build_log=data["build_log"],
            app_log=data["app_log"],
            runtime=data["runtime"],
            run_id=data["run_id"],
            hidden=data["hidden"],
            hidden_points=data["hidden_points"],
            migrate=MigrateRun(**migrate) if migrate is not None else None,
            answered_unhealthy=data["answered_unhealthy"],
            causes=[
                Cause(
                    title=c["title"],
                    points=c["points"],
                    critical=c["critical"],
                    outcomes=[find(o) for o in c["outcomes"]],
                )
                for c in data["causes"]
            ],
            late=Late(**late) if (late := data.get("late")) else None,  # absent before deadlines
        )


def _exchange(data: dict[str, Any] | None) -> Exchange | None:
    if data is None:
        return None
    return Exchange(**{k: v for k, v in data.items() if k != "curl"})  # curl: derived


def _item(data: dict[str, Any]) -> ItemScore:
    outcomes = [
        Outcome(
            **{k: v for k, v in o.items() if k not in {"exchange", "reference"}},
            exchange=_exchange(o["exchange"]),
            reference=_exchange(o["reference"]),
        )
        for o in data["outcomes"]
    ]
    kept = {k: v for k, v in data.items() if k not in {"outcomes", "passed"}}  # passed: derived
    return ItemScore(**kept, outcomes=outcomes)
