"""The built-in checks: build, start, concurrency, processes, contract, schemathesis, differential."""

from __future__ import annotations

import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from grader import appclient
from grader.assignment import Item
from grader.checks import Context, check, not_run
from grader.checks.contract import run_suite
from grader.checks.differential import compare, mask, secrets_of
from grader.checks.exercised import Api, Credit
from grader.checks.fuzz import run_fuzz
from grader.core import Exchange, GraderFault, Outcome, cap


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
    if ctx.runtime == "local" and ctx.started:  # it answered, but not as the image would start it
        return [
            Outcome(
                check="start",
                name=i.id,
                item=i.id,
                passed=False,
                skipped=True,
                message="Not checked in local mode: the container was not run (the app "
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


@check("concurrency")
def concurrency(ctx: Context, items: list[Item]) -> list[Outcome]:
    """`requests` GETs of `path` sent at once (options; default 20 of the health path): every
    one must answer 2xx within `timeout` seconds."""
    assert ctx.target is not None
    outcomes = []
    for item in items:
        path = str(item.options.get("path", ctx.assignment.runtime.health_path))
        count = int(item.options.get("requests", 20))
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
                timeout=float(item.options.get("timeout", 10)),
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


@check("processes")
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
        pattern = re.compile(str(item.options["match"]))
        need = int(item.options.get("min", 2))
        what = str(item.options.get("describe", f"processes matching {pattern.pattern}"))
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


@check("contract")
def contract(ctx: Context, items: list[Item]) -> list[Outcome]:
    assert ctx.target is not None
    wanted = {i.id for i in items}
    run = run_suite(ctx.assignment.tests_dir, ctx.target)
    outcomes = run.outcomes
    # only the graded items' tests go on to the differential check: a self-check must not show
    # hidden tests' requests through it
    graded = {o.name for o in outcomes if o.item in wanted}
    ctx.traces.update({name: t for name, t in run.traces.items() if name in graded})
    ctx.contract_outcomes = outcomes
    ctx.implemented |= Api.load(ctx.assignment.spec_path).implemented(run.traces, outcomes)
    known = {i.id for i in ctx.assignment.items if i.check == "contract"}
    unknown = sorted({o.item or "(none)" for o in outcomes} - known)
    if unknown:
        raise GraderFault(
            f"contract tests name rubric items that are not contract items: {unknown}"
        )
    return [o for o in outcomes if o.item in wanted]


def _after_contract(ctx: Context, name: str) -> None:
    """Checks that credit only operations a passing contract test showed working (`ctx.implemented`)
    would silently earn nothing without the contract suite's run before them."""
    if not ctx.contract_outcomes:
        raise GraderFault(
            f"the {name} check credits only operations that worked in contract tests: "
            "the graded rubric items need a contract item with tests"
        )


@check("schemathesis")
def schemathesis(ctx: Context, items: list[Item]) -> list[Outcome]:
    """One fuzzing run with the union of the items' checks; each check scores the item naming it,
    credited only where the operations work (`ctx.implemented`: needs `contract`)."""
    assert ctx.target is not None
    _after_contract(ctx, "schemathesis")
    owner: dict[str, str] = {}
    for item in items:
        for name in item.options.get("checks", []):
            if name in owner:
                raise GraderFault(
                    f"check {name!r} is in two rubric items: {owner[name]}, {item.id}"
                )
            owner[name] = item.id
    fuzz = ctx.assignment.fuzz
    hooks = ctx.assignment.dir / fuzz.hooks if fuzz.hooks else None
    report = run_fuzz(
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
    given = Api.load(ctx.assignment.spec_path).at_path(ctx.assignment.runtime.health_path)
    return report.outcomes(owner, implemented=ctx.implemented, given=given)


@check("differential")
def differential(ctx: Context, items: list[Item]) -> list[Outcome]:
    """The contract suite's requests answered like the reference answers them (needs `contract`),
    credited only where the operations they reach work (`ctx.implemented`). The reference's answers
    were recorded alone, before this run's app started (grader.reference)."""
    if ctx.reference_traces is None:
        raise GraderFault(
            "the differential check needs the reference solution (`reference:` in assignment.yaml)"
        )
    assert ctx.target is not None
    _after_contract(ctx, "differential")
    mine = mask(ctx.traces, secrets_of(ctx.assignment.runtime, ctx.target.env))
    api = Api.load(ctx.assignment.spec_path)
    credit = Credit.of(ctx.implemented, api.at_path(ctx.assignment.runtime.health_path))
    outcomes = []
    for item in items:
        outcomes += compare(
            mine, ctx.reference_traces, ctx.contract_outcomes, item.id, api=api, credit=credit
        )
    return outcomes
