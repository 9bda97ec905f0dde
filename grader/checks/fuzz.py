"""Schemathesis, in-process, against a running app, driven by the assignment's own spec.

`run_fuzz` loads `specs/<assignment>/openapi.yaml` (never the app's `/openapi.json`), optionally a hooks
file from the spec folder (auth for the fuzzer), and runs the Schemathesis engine the CLI uses
(`schemathesis.engine.from_schema(schema).execute()`) with:

- a fixed seed, `derandomize`, no example database (`database = "none"`), no persistent cache;
- one worker, so operations and requests run in a fixed order;
- budgets in examples and stateful steps only, never wall time (`max-time` unset, Hypothesis
  `deadline=None`, every health check suppressed because `too_slow` depends on timing);
- only the checks asked for, named as in the CLI (`--checks`).

Failures are deduplicated on (operation, check, status code) and sorted; each keeps the request that
showed it as an `Exchange` (its `.curl()` replays it) and, for stateful failures, the curl commands
of the earlier requests the failure needs. The report also says, per check, which operations were
exercised and which of them failed, so the scorer can give partial credit — but only for operations
the app implements, which the contract suite decides (`grader.checks.exercised`): a check that found
nothing on an operation that never succeeded in a contract test that passed earns nothing.

Every request (the engine's and a hooks file's) goes through the app's guard (`grader.appclient`):
a total time each, a capped body, a breaker. An operation a request of which got no usable answer
is a failed outcome naming the cause; once the app counts as unresponsive the run stops, and the
operations it never reached fail with that reason.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import itertools
import multiprocessing
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import requests

from grader import appclient
from grader.checks.builtin import SCHEMATHESIS_CHECKS
from grader.checks.exercised import Credit, not_credited
from grader.core import Exchange, GraderFault, Guard, Outcome, cap

CHECK = "schemathesis"

# Request headers that only identify the fuzzer's run; dropped so a reproducer is stable and short.
_NOISE_HEADERS = {
    "x-schemathesis-testcaseid",
    "user-agent",
    "accept-encoding",
    "connection",
    "content-length",
}
_REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class Finding:
    """One distinct failure: an operation, a check and a status code."""

    operation: str  # "POST /things/"
    check: str  # "not_a_server_error"
    status: int | None  # the response's status code (None: no response)
    title: str  # "Server error"
    message: str  # what the check expected, in Schemathesis's words
    exchange: Exchange  # the (shrunk) request that showed it
    steps: tuple[str, ...] = ()  # curl commands of earlier requests the failure needs (stateful)
    phase: str = ""  # examples / coverage / fuzzing / stateful
    occurrences: int = 1  # how many failing requests shared this key

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.operation, self.check, self.status if self.status is not None else 0)

    @property
    def name(self) -> str:
        return f"{self.operation} · {self.check} · {self.status if self.status is not None else 'no response'}"

    def to_outcome(self, item: str) -> Outcome:
        message = f"{self.title}: {self.message}" if self.message else self.title
        if self.steps:
            message += "\n\nRequests before it, to reproduce:\n" + "\n".join(self.steps)
        return Outcome(
            check=CHECK,
            name=self.name,
            item=item,
            passed=False,
            message=cap(message),
            expected=_EXPECTED.get(self.check, self.title),
            actual=f"HTTP {self.status}" if self.status is not None else "no response",
            exchange=self.exchange,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "check": self.check,
            "status": self.status,
            "title": self.title,
            "message": self.message,
            "exchange": self.exchange.to_dict(),
            "steps": list(self.steps),
            "phase": self.phase,
            "occurrences": self.occurrences,
        }


_EXPECTED = {
    "not_a_server_error": "no 5xx response",
    "status_code_conformance": "a status code the spec documents for this operation",
    "content_type_conformance": "the Content-Type the spec documents for this response",
    "response_schema_conformance": "a body that matches the spec's response schema",
    "response_headers_conformance": "the response headers the spec documents",
    "negative_data_rejection": "invalid input rejected with a 4xx",
    "positive_data_acceptance": "valid input accepted with a 2xx",
    "use_after_free": "404 for a deleted resource",
    "ensure_resource_availability": "a created resource to be retrievable",
    "ignored_auth": "401 without (or with invalid) credentials",
    "missing_required_header": "a 4xx when a required header is missing",
    "unsupported_method": "405 for a method the spec does not document",
    "allow_header_conformance": "an Allow header on 405 responses",
}


@dataclass
class FuzzReport:
    """What one run found."""

    findings: list[Finding]  # deduplicated, sorted by key
    tested: dict[str, list[str]]  # check -> operations it was evaluated on (sorted)
    failed: dict[str, list[str]]  # check -> operations it failed on (sorted)
    operations: list[str]  # every operation of the spec that was selected
    errors: list[str] = field(
        default_factory=list
    )  # non-fatal errors (timeouts, connection resets, auth)
    requests: int = 0  # number of test cases sent (a rough measure of the work done)
    seed: int = 0
    # operation -> why a request of it got no usable answer (or was not sent)
    unanswered: dict[str, str] = field(default_factory=dict)

    def clean(self, check: str) -> list[str]:
        """Operations the check was evaluated on and never failed."""
        failed = set(self.failed.get(check, ()))
        return [op for op in self.tested.get(check, ()) if op not in failed]

    def outcomes(
        self,
        items: Mapping[str, str] | str,
        *,
        implemented: Collection[str] = (),
        given: Collection[str] = (),
    ) -> list[Outcome]:
        """Outcomes for the scorer: one per finding, and per rubric item and operation one for the
        checks that found nothing there: passed when the operation is implemented, failed "not
        credited" when it is not, none for a `given` one (`grader.checks.exercised.Credit`). One
        per operation, so an item's share follows the operations implemented.

        `items` is the rubric item for every check, or a mapping check -> rubric item
        (checks absent from the mapping are left out). `implemented`: the operations the contract
        suite showed working (`grader.checks.exercised`; none by default).
        """

        def item_for(check: str) -> str | None:
            return items if isinstance(items, str) else items.get(check)

        credit = Credit.of(implemented, given)
        clean: dict[tuple[str, str], list[str]] = {}
        for check in sorted(self.tested):
            item = item_for(check)
            if item is not None:
                for operation in self.clean(check):
                    clean.setdefault((item, operation), []).append(check)
        result: list[Outcome] = []
        for (item, operation), checks in sorted(clean.items()):
            if operation in credit.given:
                continue
            if operation in credit.implemented:
                result.append(
                    Outcome(
                        check=CHECK,
                        name=f"{operation} · {', '.join(checks)}",
                        item=item,
                        passed=True,
                    )
                )
            else:
                result.append(
                    Outcome(
                        check=CHECK,
                        name=f"{operation} · not credited",
                        item=item,
                        passed=False,
                        message=f"{not_credited([operation])}: {', '.join(checks)} found nothing "
                        "wrong, but nothing that works was checked.",
                        expected="a documented success answer to a valid request, in a "
                        "contract test that passed",
                    )
                )
        for finding in self.findings:
            item = item_for(finding.check)
            if item is not None:
                result.append(finding.to_outcome(item))
        # no answer: every item fails the operation (none of its checks could judge it)
        every = [items] if isinstance(items, str) else sorted(set(items.values()))
        for operation, why in sorted(self.unanswered.items()):
            result += [
                Outcome(
                    check=CHECK,
                    name=f"{operation} · no answer",
                    item=item,
                    passed=False,
                    message=why,
                    expected="an answer within the time and size limits",
                    actual="no answer",
                )
                for item in every
            ]
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "findings": [f.to_dict() for f in self.findings],
            "tested": self.tested,
            "failed": self.failed,
            "operations": self.operations,
            "errors": self.errors,
            "requests": self.requests,
            "unanswered": self.unanswered,
        }


@contextlib.contextmanager
def _no_local_constants() -> Iterator[None]:
    """Hypothesis mixes the string and number literals of every "local" module in `sys.modules`
    (outside site-packages and the standard library, no `test` folder in its path) into what it
    generates. Fuzzing runs in the grader's process, so the grader's own source — which of its
    modules happen to be imported, where it is installed — and a hooks file's literals would steer
    the data: the same seed and app gave 98.02 in one checkout and 97.7 in another. For the run,
    that pool is empty: the data comes from the seed, the spec and the app's answers only.
    (Hypothesis has no setting for it; `tests/test_fuzz.py` fails if this hook point moves.)"""
    from hypothesis.internal.conjecture import providers
    from hypothesis.internal.constants_ast import Constants

    empty = Constants()
    saved = providers._get_local_constants
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()  # values drawn with the pool in it
    try:
        yield
    finally:
        providers._get_local_constants = saved
        providers.CONSTANTS_CACHE.cache.clear()


# --- hooks --------------------------------------------------------------------------------------

_hook_counter = itertools.count()


@contextlib.contextmanager
def _isolated_globals() -> Iterator[None]:
    """Whatever a hooks file registers globally (hooks, auth providers) is undone on exit."""
    from schemathesis import auths, hooks

    saved_auth = list(auths.GLOBAL_AUTH_STORAGE.providers)
    dispatcher = hooks.GLOBAL_HOOK_DISPATCHER
    saved_hooks = copy.copy(dispatcher._hooks)
    saved_hooks = type(saved_hooks)(list, {name: list(fns) for name, fns in saved_hooks.items()})
    try:
        yield
    finally:
        auths.GLOBAL_AUTH_STORAGE.providers = saved_auth
        dispatcher._hooks = saved_hooks


def load_hooks(
    path: Path,
    *,
    base_url: str,
    seed: int,
    env: Mapping[str, str],
    session: Callable[[], requests.Session] = requests.Session,
) -> tuple[ModuleType, list[Any]]:
    """Execute a hooks file under a fresh module name; return it and the auth providers it registered.

    A `configure()` that takes `session` gets the factory of the sessions it must send its own
    requests with (the app's guard applies to them too).

    The providers are taken out of Schemathesis's global registry (to be attached to one schema),
    so loading the same file again in the same process never stacks providers. Call inside
    `_isolated_globals()` so other global hooks it registers are undone after the run.
    """
    from schemathesis import auths

    if not path.is_file():
        raise GraderFault(f"fuzz hooks file not found: {path}")
    before = list(auths.GLOBAL_AUTH_STORAGE.providers)
    name = f"_grader_fuzz_hooks_{next(_hook_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise GraderFault(f"cannot load fuzz hooks {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses & co. look the module up while it executes
    try:
        spec.loader.exec_module(module)
        configure = getattr(module, "configure", None)
        if callable(configure):
            extra = (
                {"session": session} if "session" in inspect.signature(configure).parameters else {}
            )
            configure(base_url=base_url, seed=seed, env=dict(env), **extra)
    except Exception as exc:
        raise GraderFault(f"fuzz hooks {path} failed to load: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
    providers = [p for p in auths.GLOBAL_AUTH_STORAGE.providers if not any(p is b for b in before)]
    auths.GLOBAL_AUTH_STORAGE.providers = before
    return module, providers


# --- configuration ------------------------------------------------------------------------------


def build_config(
    *,
    base_url: str,
    seed: int,
    max_examples: int,
    checks: list[str],
    stateful: bool,
    max_steps: int | None = None,
) -> Any:
    """The Schemathesis configuration of a graded run (what `schemathesis.toml` would say)."""
    import schemathesis

    unknown = sorted(set(checks) - set(SCHEMATHESIS_CHECKS))
    if unknown:
        raise GraderFault(
            f"unknown Schemathesis checks {unknown}; known: {', '.join(SCHEMATHESIS_CHECKS)}"
        )
    if max_examples < 1:
        raise GraderFault("fuzz max_examples must be at least 1")
    stateful_phase: dict[str, Any] = {"enabled": stateful}
    if max_steps is not None:
        stateful_phase["max-steps"] = max_steps
    data: dict[str, Any] = {
        "seed": seed,
        "suppress-health-check": ["all"],
        "cache": {"enabled": False},
        "base-url": base_url.rstrip("/"),
        "workers": 1,
        "continue-on-failure": True,
        "request-timeout": _REQUEST_TIMEOUT,
        "auth": {"auto-signup": False},
        "generation": {"max-examples": max_examples, "deterministic": True, "database": "none"},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in checks}},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": stateful_phase,
        },
    }
    try:
        return schemathesis.Config.from_dict(data)
    except Exception as exc:
        raise GraderFault(f"invalid Schemathesis configuration: {exc}") from exc


# --- the run ------------------------------------------------------------------------------------


def _exchange(interaction: Any) -> Exchange:
    request = interaction.request
    headers = {
        name: values[0] if isinstance(values, list) else str(values)
        for name, values in request.headers.items()
        if name.lower() not in _NOISE_HEADERS
    }
    body = request.body.decode("utf-8", "replace") if request.body else None
    response = interaction.response
    if response is None:
        return Exchange(
            method=request.method,
            url=request.uri,
            request_headers=headers,
            request_body=cap(body) if body else None,
            error="no response",
        )
    response_headers = {name: ", ".join(values) for name, values in response.headers.items()}
    try:
        text = (
            response.content.decode(response.encoding or "utf-8", "replace")
            if response.content
            else ""
        )
    except LookupError:
        text = response.content.decode("utf-8", "replace")
    return Exchange(
        method=request.method,
        url=request.uri,
        request_headers=headers,
        request_body=cap(body) if body else None,
        status=response.status_code,
        response_headers=response_headers,
        response_body=cap(text),
    )


def _strip_noise(curl: str) -> str:
    lines = [line for line in curl.splitlines() if "X-Schemathesis-TestCaseId" not in line]
    return "\n".join(lines)


@dataclass
class _Collector:
    findings: dict[tuple[str, str, int], Finding] = field(default_factory=dict)
    tested: dict[str, set[str]] = field(default_factory=dict)
    failed: dict[str, set[str]] = field(default_factory=dict)
    errors: set[str] = field(default_factory=set)
    requests: int = 0
    unanswered: dict[str, str] = field(default_factory=dict)

    def scenario(self, recorder: Any, phase: str) -> None:
        self.requests += len(recorder.interactions)
        for case_id, nodes in recorder.checks.items():
            node_case = recorder.cases.get(case_id)
            if node_case is None:
                continue
            case_operation: str = node_case.value.operation.label
            for node in nodes:
                self.tested.setdefault(node.name, set()).add(case_operation)
                info = node.failure_info
                if info is None or str(node.status) != "failure":
                    continue
                self._failure(recorder, case_id, node.name, info, phase, case_operation)

    def _failure(
        self, recorder: Any, case_id: str, check: str, info: Any, phase: str, fallback: str
    ) -> None:
        failure = info.failure
        failing_id = failure.case_id or case_id
        operation = failure.operation or fallback
        interaction = recorder.interactions.get(failing_id)
        if interaction is None:
            return
        self.failed.setdefault(check, set()).add(operation)
        self.tested.setdefault(check, set()).add(operation)
        exchange = _exchange(interaction)
        steps = tuple(_strip_noise(step.curl) for step in info.steps if step.case_id != failing_id)
        finding = Finding(
            operation=operation,
            check=check,
            status=exchange.status,
            title=str(failure.title),
            message=str(failure.message),
            exchange=exchange,
            steps=steps,
            phase=phase,
        )
        existing = self.findings.get(finding.key)
        if existing is None:
            self.findings[finding.key] = finding
            return
        # Keep the smallest reproducer; ties broken by text so the choice never depends on order.
        count = existing.occurrences + 1
        if _size(finding) < _size(existing):
            existing = finding
        self.findings[finding.key] = _replace_count(existing, count)

    def report(self, operations: list[str], seed: int) -> FuzzReport:
        return FuzzReport(
            findings=[self.findings[key] for key in sorted(self.findings)],
            tested={check: sorted(ops) for check, ops in sorted(self.tested.items())},
            failed={check: sorted(ops) for check, ops in sorted(self.failed.items())},
            operations=sorted(operations),
            errors=sorted(self.errors),
            requests=self.requests,
            seed=seed,
            unanswered=dict(sorted(self.unanswered.items())),
        )


def _size(finding: Finding) -> tuple[int, int, str]:
    exchange = finding.exchange
    text = f"{exchange.url} {exchange.request_body or ''}"
    return (len(finding.steps), len(text), text)


def _replace_count(finding: Finding, count: int) -> Finding:
    from dataclasses import replace

    return replace(finding, occurrences=count)


def run_fuzz(
    *,
    spec: Path,
    base_url: str,
    seed: int,
    max_examples: int,
    checks: list[str],
    stateful: bool,
    hooks: Path | None = None,
    env: dict[str, str] | None = None,
    max_steps: int | None = None,
    guard: Guard | None = None,
    local_address: str | None = None,
) -> FuzzReport:
    """Fuzz the app at `base_url` with the assignment's spec; deterministic for a given seed and app.
    `guard` and `local_address`: as the app's Target's (a fresh guard by default).

    Raises GraderFault when the spec, the hooks file or the configuration is unusable (the grader's
    fault); anything the app does (errors, timeouts, a broken token endpoint) ends up in the report.
    """
    import schemathesis
    from schemathesis.core.result import Ok
    from schemathesis.engine import events, from_schema

    if not spec.is_file():
        raise GraderFault(f"spec not found: {spec}")
    config = build_config(
        base_url=base_url,
        seed=seed,
        max_examples=max_examples,
        checks=checks,
        stateful=stateful,
        max_steps=max_steps,
    )
    collector = _Collector()
    guard = guard or Guard(origin=base_url)
    with _isolated_globals(), _guarded_sessions(guard, local_address), _no_local_constants():
        providers: list[Any] = []
        if hooks is not None:
            _, providers = load_hooks(
                hooks,
                base_url=base_url,
                seed=seed,
                env=env or {},
                session=lambda: appclient.session(guard, local_address),
            )
        try:
            schema = schemathesis.openapi.from_path(spec, config=config)
        except Exception as exc:
            raise GraderFault(f"cannot load the spec {spec}: {type(exc).__name__}: {exc}") from exc
        schema.auth.providers.extend(providers)
        operations = [
            result.ok().label for result in schema.get_all_operations() if isinstance(result, Ok)
        ]
        fatal: list[str] = []
        stream = from_schema(schema).execute()
        for event in stream:
            if guard.stopped:  # the app stopped answering: the rest would fail at once anyway
                stream.stop()
            if isinstance(event, events.ScenarioFinished):
                if event.phase.value in ("probing", "schema_analysis", "auth_bootstrap"):
                    continue
                collector.scenario(event.recorder, event.phase.value)
            elif isinstance(event, events.NonFatalError) and isinstance(
                event.value, appclient.NoAnswerError
            ):
                collector.unanswered.setdefault(event.label, str(event.value))
            elif isinstance(event, events.NonFatalError):
                collector.errors.add(
                    f"{event.label}: {event.info.title}: {_first_line(event.info.message)}"
                )
            elif isinstance(event, events.FatalError):
                fatal.append(f"{type(event.exception).__name__}: {event.exception}")
            elif isinstance(event, events.EngineFinished):
                for failure in getattr(event, "failures", None) or []:
                    collector.errors.add(
                        f"run check: {failure.title}: {_first_line(failure.message)}"
                    )
    if fatal:
        raise GraderFault("Schemathesis stopped: " + "; ".join(fatal))
    if guard.stopped:
        reached = {op for ops in collector.tested.values() for op in ops} | set(
            collector.unanswered
        )
        for operation in sorted(set(operations) - reached):
            collector.unanswered[operation] = f"{operation} not sent: {guard.stopped}"
    return collector.report(operations, seed)


# --- a process of its own ----------------------------------------------------------------------
# Fuzzing runs beside the contract suite (grader.checks, `beside=True`). In one process the two
# would share what is global there: CPython 3.11's AST state (pytest's assertion rewriting and
# Hypothesis' source reading, in two threads at once, fail with "AST constructor recursion depth
# mismatch"), the warnings filters both change, Hypothesis' flags. A process of its own shares
# none of it, and starts from the same state every time.

# what a run imports only once it loads a schema and starts its engine (1-4 s): loaded by the
# process while the grade still waits for the app
_HEAVY = (
    "schemathesis.specs.openapi.schemas",
    "schemathesis.engine.run.unit",
    "schemathesis.engine.context",
    "hypothesis.internal.conjecture.engine",
    "pyrate_limiter",
)
_EXTRA_WAIT = 60.0  # seconds past the guard's deadline before a silent process counts as stuck


class _Worker:
    def __init__(self, method: str = "spawn") -> None:
        # "spawn": nothing inherited from the grader's state; "fork" only from a process that has
        # one thread and has graded nothing yet (`prefork`)
        context: Any = multiprocessing.get_context(method)
        self.conn, theirs = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(theirs,), name="grader-fuzz", daemon=True
        )
        self.process.start()
        theirs.close()

    def end(self) -> None:
        self.conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


_spare: _Worker | None = None
_spare_lock = threading.Lock()


def prepare() -> None:
    """Start the process the next `run_fuzz_apart` uses, now (while the grade waits for the app)."""
    global _spare
    with _spare_lock:
        if _spare is None or not _spare.process.is_alive():
            _spare = _Worker()


def prefork() -> None:
    """Fork the process the next `run_fuzz_apart` uses, from this one, which must have one thread
    and have done nothing but import (`preload`): a batch's grade forked by grader.zygote, whose
    fuzzing process then neither starts an interpreter nor imports anything."""
    global _spare
    _spare = _Worker("fork")


def preload() -> None:
    """Import what the fuzzing process imports (grader.zygote, before it forks grades)."""
    for module in _HEAVY:
        with contextlib.suppress(ImportError):  # moved in a new version: loaded when used
            importlib.import_module(module)


def _take() -> _Worker:
    global _spare
    with _spare_lock:
        worker, _spare = _spare, None
    return worker if worker is not None and worker.process.is_alive() else _Worker()


def _serve(conn: Any) -> None:
    """In the fuzzing process: import, take one run, answer (report or fault, and the guard)."""
    preload()
    try:
        job = conn.recv()
    except EOFError:  # not needed after all
        return
    guard = job["guard"]
    try:
        conn.send(("report", run_fuzz(**job), guard))
    except GraderFault as exc:
        conn.send(("fault", str(exc), guard))
    except Exception as exc:  # the grader's fault, whatever it is: named
        conn.send(("fault", f"fuzzing failed: {type(exc).__name__}: {exc}", guard))


def run_fuzz_apart(*, guard: Guard, **job: Any) -> FuzzReport:
    """`run_fuzz` in a process of its own (see above), with a copy of `guard` whose counts and
    stop come back into it. A process that dies or hangs is the grader's fault."""
    worker, sent = _take(), guard.sent
    left = guard.left()
    wait = (left if left is not None else 3600.0) + _EXTRA_WAIT
    try:
        worker.conn.send({**job, "guard": guard})
        if not worker.conn.poll(wait):
            raise GraderFault(f"fuzzing did not end within {wait:g} s")
        kind, value, theirs = worker.conn.recv()
    except (EOFError, OSError) as exc:
        worker.process.join(timeout=5)
        raise GraderFault(
            f"the fuzzing process ended without a report (exit code {worker.process.exitcode})"
        ) from exc
    finally:
        worker.end()
    guard.absorb(theirs, sent)
    if kind == "fault":
        raise GraderFault(value)
    assert isinstance(value, FuzzReport)
    return value


@contextlib.contextmanager
def _guarded_sessions(guard: Guard, local_address: str | None) -> Iterator[None]:
    """Every session the engine makes during the run sends through the app's guard. The engine
    builds them with `schemathesis.engine.context.make_session` and offers no hook for it."""
    from schemathesis.engine import context

    original = context.make_session

    def make_session(config: Any, *, operation: Any = None) -> requests.Session:
        session = original(config, operation=operation)
        return appclient.mount(session, appclient.AppTransport(guard, local_address))

    context.make_session = make_session
    try:
        yield
    finally:
        context.make_session = original


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0] if text else ""
