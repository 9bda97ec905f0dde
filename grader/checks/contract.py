"""Run an assignment's contract tests (pytest, in-process) against a Target and collect Outcomes.

The tests get generic fixtures from `ContractPlugin`: `target`, `client` (an httpx.Client whose
exchanges are recorded), `db_url`. Each test names its rubric item with `@pytest.mark.rubric("id")`;
`@pytest.mark.critical("what a failure means")` marks a security check: when one of its
expectations fails, the item scores 0 (grader.score); a request without an answer, or an error in
the test, shows no hole and costs only the test's share. A failed `grader.testing.step` (a setup
step: register, log in) makes the test "not checked" with `Outcome.blocked_by` naming the step and
its request: it costs the test's share, never its item.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from grader import reproduce, testing
from grader.appclient import AppTransport, NoAnswer
from grader.core import Exchange, Outcome, Target, cap
from grader.testing import Mismatch, StepFailed

TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # the read part bounds each request in all (appclient)


def record(response: httpx.Response) -> Exchange:
    request = response.request
    try:
        body = request.content.decode("utf-8", "replace") if request.content else None
    except httpx.RequestNotRead:
        body = "<streamed body>"
    return Exchange(
        method=request.method,
        url=str(request.url),
        request_headers=dict(request.headers),
        request_body=cap(body) if body else None,
        status=response.status_code,
        response_headers=dict(response.headers),
        response_body=cap(response.text),
    )


class RecordingClient(httpx.Client):  # type: ignore[misc]
    """An httpx.Client that remembers every exchange, so a failing test can show its last request.
    Its requests go through the app's guard (grader.appclient): bounded in time and size."""

    def __init__(self, target: Target, **kwargs: Any) -> None:
        super().__init__(
            transport=AppTransport(target.guard, target.local_address), trust_env=False, **kwargs
        )
        self.exchanges: list[Exchange] = []

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        try:
            response = super().send(request, **kwargs)
        except httpx.HTTPError as exc:
            error = str(exc) if isinstance(exc, NoAnswer) else f"{type(exc).__name__}: {exc}"
            self.exchanges.append(
                Exchange(
                    method=request.method,
                    url=str(request.url),
                    request_headers=dict(request.headers),
                    error=error,
                )
            )
            testing.journal.append(self.exchanges[-1])
            raise
        self.exchanges.append(record(response))
        testing.journal.append(self.exchanges[-1])
        return response


_PLAIN_ASSERT = re.compile(r"^assert (?P<actual>.+?) == (?P<expected>.+?)$", re.M)


class ContractPlugin:
    def __init__(self, target: Target) -> None:
        self._origin = target
        # tests get a copy whose restart also points every open client at the app's new address
        self._target = dataclasses.replace(
            target, restart=self._restart if target.restart else None
        )
        self.outcomes: list[Outcome] = []
        self.traces: dict[str, list[Exchange]] = {}  # test name -> every exchange it made
        self._clients: dict[str, list[RecordingClient]] = {}

    def _restart(self) -> None:
        assert self._origin.restart is not None
        self._origin.restart()
        self._target.base_url = self._origin.base_url
        for clients in self._clients.values():
            for c in clients:
                c.base_url = httpx.URL(self._target.base_url)

    # fixtures -----------------------------------------------------------------------------
    @pytest.fixture
    def target(self) -> Target:
        return self._target

    @pytest.fixture
    def db_url(self) -> str:
        if not self._target.database_url:
            pytest.skip("no database in this run")
        return self._target.database_url

    @pytest.fixture
    def databases(self) -> dict[str, str]:
        return self._target.databases

    @pytest.fixture
    def client(self, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
        with self.new_client(request.node.nodeid) as c:
            yield c

    @pytest.fixture
    def client_factory(self, request: pytest.FixtureRequest) -> Any:
        """For tests that need several clients (e.g. two users' sessions)."""
        return lambda: self.new_client(request.node.nodeid)

    def new_client(self, nodeid: str) -> RecordingClient:
        c = RecordingClient(self._target, base_url=self._target.base_url, timeout=TIMEOUT)
        self._clients.setdefault(nodeid, []).append(c)
        return c

    # hooks ---------------------------------------------------------------------------------
    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "rubric(item): the rubric item this test counts for")
        config.addinivalue_line(
            "markers",
            "critical(reason): a security check; its failure zeroes "
            "its rubric item (reason: what the failure means)",
        )
        if config.pluginmanager.is_blocked("terminal"):
            # nobody shows pytest's tracebacks (outcomes word their message from the exception):
            # "native" skips reading and parsing each failing frame's source
            config.option.tbstyle = "native"

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        testing.journal.clear()  # a step names requests of its own test only

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self._add(item, call, report, skipped=report.skipped)
        return report

    def _add(
        self,
        item: pytest.Item,
        call: pytest.CallInfo[None],
        report: pytest.TestReport,
        skipped: bool = False,
    ) -> None:
        marker = item.get_closest_marker("rubric")
        rubric = str(marker.args[0]) if marker and marker.args else ""
        exchanges = [e for c in self._clients.pop(item.nodeid, []) for e in c.exchanges]
        doc = (
            (getattr(item, "function", None).__doc__ or "").strip()
            if hasattr(item, "function")
            else ""
        )
        name = item.nodeid.split("::", 1)[-1]
        result = Outcome(
            check="contract",
            name=name,
            item=rubric,
            passed=report.passed or skipped,
            message=doc,
            skipped=skipped,
            critical=_critical(item, doc),
        )
        self.traces[name] = exchanges
        if report.failed:
            result.exchange = exchanges[-1] if exchanges else None
            exc = call.excinfo.value if call.excinfo else None
            if not isinstance(exc, AssertionError):
                result.critical = None  # no answer, or an error in the test: it shows no hole
            if isinstance(exc, StepFailed):  # not checked: the step's request is the one to show
                result.blocked_by, result.exchange = exc.reason, exc.exchange
                result.message = (f"{doc}\n" if doc else "") + f"Not checked: {exc.reason}."
                if isinstance(exc.cause, Mismatch):
                    result.expected, result.actual = exc.cause.expected, exc.cause.actual
            elif isinstance(exc, Mismatch):
                result.message = f"{doc}\n{exc.what}" if doc else exc.what
                result.expected, result.actual = exc.expected, exc.actual
            elif isinstance(exc, AssertionError):
                text = str(exc)
                m = _PLAIN_ASSERT.search(text)
                if m:
                    result.expected, result.actual = m["expected"], m["actual"]
                result.message = f"{doc}\n{text}".strip() if doc else text
            elif isinstance(exc, NoAnswer):  # its message names the cause
                result.message = (f"{doc}\n" if doc else "") + str(exc)
            elif isinstance(exc, httpx.HTTPError):
                result.message = (
                    f"{doc}\n" if doc else ""
                ) + f"no answer: {type(exc).__name__}: {exc}"
            elif exc is not None:
                result.message = (f"{doc}\n" if doc else "") + f"{type(exc).__name__}: {exc}"
            else:
                result.message = cap(str(report.longrepr), 1500)
        result.reproducer = (
            None if result.passed else reproduce.script(result, self.traces, self._target.env)
        )
        self.outcomes.append(result)


def _critical(item: pytest.Item, doc: str) -> str | None:
    """What a failure of a `critical` test means: the marker's reason, else the test's doc's first
    line; None for a test that is not critical."""
    marker = item.get_closest_marker("critical")
    if marker is None:
        return None
    reason = str(marker.args[0]).strip() if marker.args else ""
    return reason or (doc.splitlines()[0] if doc else "") or "a security check failed"


# Running a contract suite by hand: `pytest specs/<id>/tests -p grader.checks.contract
#   --app-url http://localhost:8000 --app-env NAME=VALUE --db-url postgresql://...`
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("contract", "contract tests against a running app")
    group.addoption("--app-url", help="base URL of the app under test")
    group.addoption(
        "--app-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an env var the app was started with (repeatable)",
    )
    group.addoption("--db-url", help="the app's database, reachable from here (postgresql://)")


def pytest_configure(config: pytest.Config) -> None:
    url = config.getoption("--app-url", default=None)
    if url and not config.pluginmanager.has_plugin("grader-contract"):
        env = dict(pair.split("=", 1) for pair in config.getoption("--app-env"))
        target = Target(base_url=url, env=env, database_url=config.getoption("--db-url"))
        config.pluginmanager.register(ContractPlugin(target), "grader-contract")


@dataclass
class SuiteRun:
    outcomes: list[Outcome]  # one per test
    traces: dict[str, list[Exchange]]  # test name -> the exchanges it made, in order


def _forget_suite(tests_dir: Path) -> None:
    """No module named like one of the suite's files stays in sys.modules. Pytest's importlib mode
    names a module by its path under the rootdir (`test_items`) and takes one already in
    sys.modules as it is: a process that ran another suite before (a Dask worker recording the
    references of two assignments, or of one before and after its tests changed) would run that
    suite's tests instead."""
    files = [p for p in tests_dir.rglob("*.py") if "__pycache__" not in p.parts]
    names = {".".join(p.relative_to(tests_dir).with_suffix("").parts) for p in files}
    for name in names & set(sys.modules):
        del sys.modules[name]


def run_suite(tests_dir: Path, target: Target, *, markers: str | None = None) -> SuiteRun:
    """Run every test under `tests_dir` (only those `markers` selects, a pytest -m expression such
    as "critical", when given) against `target`, silently."""
    plugin = ContractPlugin(target)
    args = [
        str(tests_dir),
        # the suite needs no installed plugin (Schemathesis', Hypothesis', anyio's, ...): loading
        # them cost about 2 s a run
        "--disable-plugin-autoload",
        "-p",
        "no:cacheprovider",
        "--import-mode=importlib",
        "-o",
        "addopts=",
        "--rootdir",
        str(tests_dir),
        "-p",
        "no:randomly",
        "-p",
        "no:terminal",
        # no gc.collect() x5 at the session's end to catch unraisable exceptions (they make
        # warnings, never outcomes): about 0.4 s
        "-p",
        "no:unraisableexception",
    ]
    if markers:
        args += ["-m", markers]
    _forget_suite(tests_dir)
    try:
        code = pytest.main(args, plugins=[plugin])
    finally:
        _forget_suite(tests_dir)
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        from grader.core import GraderFault

        raise GraderFault(f"contract tests in {tests_dir} could not run (pytest exit {int(code)})")
    return SuiteRun(plugin.outcomes, plugin.traces)
