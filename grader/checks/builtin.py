"""The built-in checks: build, start, concurrency, processes, contract, schemathesis, differential.

Their options and the values they pass on are declared here; what they run (pytest, Schemathesis,
HTTP clients) is imported when they run, so that loading a rubric stays fast.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import Field, field_validator

from grader.assignment import Item
from grader.checks import Context, Later, Options, check, not_run
from grader.core import Exchange, GraderFault, Outcome, cap

if TYPE_CHECKING:
    from grader.checks.exercised import Api


class ConcurrencyOptions(Options):
    path: str | None = None  # default: the runtime's health path
    requests: int = Field(default=20, ge=1)
    timeout: float = Field(default=10.0, gt=0)  # seconds each request may take


class ProcessesOptions(Options):
    match: str  # a regex searched in each process's command line
    min: int = 2
    describe: str | None = None  # what they are, in the report (default: the regex)

    @field_validator("match")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


# The checks `schemathesis run --checks` knows and this grader supports.
SchemathesisCheck = Literal[
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
]
SCHEMATHESIS_CHECKS: tuple[str, ...] = get_args(SchemathesisCheck)


class SchemathesisOptions(Options):
    checks: list[SchemathesisCheck] = Field(default_factory=list)  # each scores this item


def _one_owner(items: list[Item]) -> list[str]:
    """One fuzzing run serves every item: each Schemathesis check scores one item."""
    owner: dict[str, str] = {}
    problems = []
    for item in items:
        for name in SchemathesisOptions.of(item).checks:
            if name in owner:
                problems.append(f"check {name!r} is in two rubric items: {owner[name]}, {item.id}")
            owner[name] = item.id
    return problems


@dataclass(frozen=True)
class ContractRun:
    """The contract suite's run: the operations it showed working, and its requests."""

    outcomes: tuple[Outcome, ...]  # every test's (hidden ones too)
    # the graded items' tests' exchanges only: a self-check must not show hidden tests' requests
    traces: dict[str, list[Exchange]]
    # spec operations that answered with a documented success in a contract test that passed
    # (checks/exercised.py), every test counted (hidden ones too: only the operations' names)
    implemented: frozenset[str]


@check("build", needs_app=False)
def build(ctx: Context, items: list[Item]) -> list[Outcome]:
    if ctx.built is None:
        return [
            Outcome(
                check="build",
                name=i.id,
                item=i.id,
                passed=False,
                skipped=True,
                message=f"Not checked in {ctx.runtime} mode: the Dockerfile was not built.",
            )
            for i in items
        ]
    return [
        Outcome(
            check="build",
            name=i.id,
            item=i.id,
            passed=bool(ctx.built),
            message="The image builds from the Dockerfile." if ctx.built else ctx.build_reason,
        )
        for i in items
    ]


@check("start", needs_app=False)
def start(ctx: Context, items: list[Item]) -> list[Outcome]:
    health = ctx.assignment.runtime.health_path
    deadline = ctx.assignment.runtime.start_deadline
    ok = f"GET {health} answered 2xx within {deadline:.0f} s of start."
    if ctx.built is False:  # no image, nothing to start: the build's cause, told once
        return [not_run("start", i, ctx.build_reason) for i in items]
    why = ctx.start_reason
    if ctx.built is None and ctx.started:  # it answered, but not as the image would start it
        return [
            Outcome(
                check="start",
                name=i.id,
                item=i.id,
                passed=False,
                skipped=True,
                message=f"Not checked in {ctx.runtime} mode: the container was not run (the app "
                "answered when started with "
                + (ctx.served or "`" + " ".join(ctx.assignment.runtime.local_command) + "`")
                + ").",
            )
            for i in items
        ]
    return [
        Outcome(
            check="start",
            name=i.id,
            item=i.id,
            passed=ctx.started,
            message=ok if ctx.started else f"{why}",
            expected=None if ctx.started else ok,
        )
        for i in items
    ]


@check("concurrency", options=ConcurrencyOptions)
def concurrency(ctx: Context, items: list[Item]) -> list[Outcome]:
    """`requests` GETs of `path` sent at once (options; default 20 of the health path): every
    one must answer 2xx within `timeout` seconds."""
    import httpx

    from grader import appclient

    assert ctx.target is not None
    outcomes = []
    for item in items:
        options = ConcurrencyOptions.of(item)
        path = options.path if options.path is not None else ctx.assignment.runtime.health_path
        count = options.requests
        url = ctx.target.base_url + path
        start = threading.Barrier(count)

        def one(_: int, url: str = url, start: threading.Barrier = start) -> Exchange:
            start.wait(timeout=30)  # all requests leave together
            try:
                response = http.get(url)
            except appclient.NoAnswer as exc:
                return Exchange(method="GET", url=url, error=str(exc)[:300])
            except httpx.HTTPError as exc:
                return Exchange(method="GET", url=url, error=f"{type(exc).__name__}: {exc}"[:300])
            return Exchange(
                method="GET",
                url=url,
                status=response.status_code,
                response_body=cap(response.text, 300),
            )

        limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
        # timeouts of requests sent together are not "in a row": they do not trip the breaker
        with (
            appclient.client(
                ctx.target.guard,
                ctx.target.local_address,
                count=False,
                limits=limits,
                timeout=options.timeout,
            ) as http,
            ThreadPoolExecutor(max_workers=count) as pool,
        ):
            answers = list(pool.map(one, range(count)))
        bad = [a for a in answers if a.status is None or not 200 <= a.status < 300]
        got = Counter(str(a.status) if a.status is not None else "no answer" for a in answers)
        outcomes.append(
            Outcome(
                check="concurrency",
                name=f"{count} concurrent GET {path}",
                item=item.id,
                passed=not bad,
                message=f"{count} requests sent at once to GET {path}: "
                + ", ".join(f"{n}× {what}" for what, n in sorted(got.items())),
                expected=f"{count}× 2xx",
                actual=None if not bad else (bad[0].error or f"HTTP {bad[0].status}"),
                exchange=bad[0] if bad else None,
            )
        )
    return outcomes


@check("processes", options=ProcessesOptions)
def processes(ctx: Context, items: list[Item]) -> list[Outcome]:
    """At least `min` processes of the app whose command line matches the regex `match`
    (options), e.g. a process manager and its workers. Seen in the container's process list."""
    assert ctx.target is not None
    if ctx.target.processes is None:
        return [
            Outcome(
                check="processes",
                name=i.id,
                item=i.id,
                passed=False,
                skipped=True,
                message=f"Not checked in {ctx.runtime} mode: the container's process list "
                "is not available.",
            )
            for i in items
        ]
    running = ctx.target.processes()
    outcomes = []
    for item in items:
        options = ProcessesOptions.of(item)
        pattern = re.compile(options.match)
        need = options.min
        what = options.describe
        if what is None:
            what = f"processes matching {pattern.pattern}"
        found = [p for p in running if pattern.search(p)]
        outcomes.append(
            Outcome(
                check="processes",
                name=item.id,
                item=item.id,
                passed=len(found) >= need,
                message=f"{len(found)} of the container's {len(running)} processes are {what}.",
                expected=f"at least {need}: {what}",
                actual="; ".join(cap(p, 200) for p in running) or "none",
            )
        )
    return outcomes


@check(
    "contract",
    provides=ContractRun,
    warm=("grader.checks.contract", "grader.checks.differential", "grader.checks.exercised"),
)
def contract(ctx: Context, items: list[Item]) -> tuple[list[Outcome], ContractRun]:
    """The contract suite, once: its graded items' outcomes, and its run for the checks that
    credit only operations it showed working. With the reference's answers at hand, a failing
    test shows the reference's answer to its last request."""
    from grader.checks.contract import run_suite
    from grader.checks.differential import with_reference
    from grader.checks.exercised import Api

    assert ctx.target is not None
    wanted = {i.id for i in items}
    run = run_suite(ctx.assignment.tests_dir, ctx.target)
    outcomes = run.outcomes
    # only the graded items' tests go on to the differential check: a self-check must not show
    # hidden tests' requests through it
    graded = {o.name for o in outcomes if o.item in wanted}
    traces = {name: t for name, t in run.traces.items() if name in graded}
    implemented = Api.load(ctx.assignment.spec_path).implemented(run.traces, outcomes)
    known = {i.id for i in ctx.assignment.items if i.check == "contract"}
    unknown = sorted({o.item or "(none)" for o in outcomes} - known)
    if unknown:
        raise GraderFault(
            f"contract tests name rubric items that are not contract items: {unknown}"
        )
    mine = [o for o in outcomes if o.item in wanted]
    if ctx.reference_traces is not None:
        mine = with_reference(mine, traces, ctx.reference_traces)
    return mine, ContractRun(tuple(outcomes), traces, frozenset(implemented))


def _tested(run: ContractRun, name: str) -> None:
    """Checks that credit only operations a passing contract test showed working would silently
    earn nothing without a contract test."""
    if not run.outcomes:
        raise GraderFault(
            f"the {name} check credits only operations that worked in contract tests: "
            "the graded rubric items need a contract item with tests"
        )


def _given(api: Api, ctx: Context) -> set[str]:
    """The operations at the health path: neither earn nor block credit (checks/exercised.py)."""
    return api.at_path(ctx.assignment.runtime.health_path)


@check(
    "schemathesis",
    options=SchemathesisOptions,
    needs=ContractRun,
    rule=_one_owner,
    beside=True,
    warm=("grader.checks.exercised", "grader.checks.fuzz:prepare"),
)
def schemathesis(ctx: Context, items: list[Item], later: Later[ContractRun]) -> list[Outcome]:
    """One fuzzing run with the union of the items' checks; each check scores the item naming it,
    credited only where the operations work (the contract run's `implemented`). It sends anything
    the schema allows: beside the contract suite, it fuzzes an instance of the app of its own."""
    from grader.checks.exercised import Api
    from grader.checks.fuzz import run_fuzz_apart

    assert ctx.target is not None
    owner: dict[str, str] = {
        name: item.id for item in items for name in SchemathesisOptions.of(item).checks
    }
    fuzz = ctx.assignment.fuzz
    hooks = ctx.assignment.dir / fuzz.hooks if fuzz.hooks else None
    report = run_fuzz_apart(
        spec=ctx.assignment.spec_path,
        base_url=ctx.target.base_url,
        seed=ctx.seed,
        max_examples=fuzz.max_examples,
        checks=sorted(owner),
        stateful=fuzz.stateful,
        hooks=hooks,
        env=ctx.target.env,
        max_steps=fuzz.max_steps,
        guard=ctx.target.guard,
        local_address=ctx.target.local_address,
    )
    run = later.get()
    _tested(run, "schemathesis")
    given = _given(Api.load(ctx.assignment.spec_path), ctx)
    return report.outcomes(owner, implemented=run.implemented, given=given)


@check("differential", needs=ContractRun)
def differential(ctx: Context, items: list[Item], run: ContractRun) -> list[Outcome]:
    """The contract suite's requests answered like the reference answers them, credited only
    where the operations they reach work (`run.implemented`). The reference's answers were
    recorded alone, before this run's app started (grader.reference)."""
    from grader.checks.differential import compare, mask, secrets_of
    from grader.checks.exercised import Api, Credit

    if ctx.reference_traces is None:
        raise GraderFault(
            "the differential check needs the reference solution (`reference:` in assignment.yaml)"
        )
    assert ctx.target is not None
    _tested(run, "differential")
    mine = mask(run.traces, secrets_of(ctx.assignment.runtime, ctx.target.env))
    api = Api.load(ctx.assignment.spec_path)
    credit = Credit.of(run.implemented, _given(api, ctx))
    outcomes = []
    for item in items:
        outcomes += compare(mine, ctx.reference_traces, item.id, api=api, credit=credit)
    return outcomes
