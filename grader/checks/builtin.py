"""The built-in checks: build, start, contract tests."""

from __future__ import annotations

from grader.assignment import Item
from grader.checks import Context, check
from grader.checks.contract import run_suite
from grader.checks.differential import compare
from grader.checks.fuzz import run_fuzz
from grader.core import GraderFault, Outcome


@check("build", needs_app=False)
def build(ctx: Context, items: list[Item]) -> list[Outcome]:
    if ctx.built is None:
        return [Outcome(check="build", name=i.id, item=i.id, passed=False, skipped=True,
                        message=f"Not checked in {ctx.runtime} mode: the Dockerfile was not built.")
                for i in items]
    return [Outcome(check="build", name=i.id, item=i.id, passed=bool(ctx.built),
                    message="The image builds from the Dockerfile." if ctx.built else ctx.build_reason)
            for i in items]


@check("start", needs_app=False)
def start(ctx: Context, items: list[Item]) -> list[Outcome]:
    health = ctx.assignment.runtime.health_path
    deadline = ctx.assignment.runtime.start_deadline
    ok = f"GET {health} answered 2xx within {deadline:.0f} s of start."
    why = ctx.build_reason if ctx.built is False else ctx.start_reason
    if ctx.runtime == "local" and ctx.started:  # it answered, but not as the image would start it
        return [Outcome(check="start", name=i.id, item=i.id, passed=False, skipped=True,
                        message="Not checked in local mode: the container was not run (the app "
                                "answered when started with `" + " ".join(ctx.assignment.runtime.local_command)
                                + "`).") for i in items]
    return [Outcome(check="start", name=i.id, item=i.id, passed=ctx.started,
                    message=ok if ctx.started else f"{why}", expected=None if ctx.started else ok)
            for i in items]


@check("contract")
def contract(ctx: Context, items: list[Item]) -> list[Outcome]:
    assert ctx.target is not None
    wanted = {i.id for i in items}
    run = run_suite(ctx.assignment.tests_dir, ctx.target)
    outcomes = run.outcomes
    ctx.traces.update(run.traces)
    ctx.contract_outcomes = outcomes
    known = {i.id for i in ctx.assignment.items if i.check == "contract"}
    unknown = sorted({o.item or "(none)" for o in outcomes} - known)
    if unknown:
        raise GraderFault(f"contract tests name rubric items that are not contract items: {unknown}")
    return [o for o in outcomes if o.item in wanted]


@check("schemathesis")
def schemathesis(ctx: Context, items: list[Item]) -> list[Outcome]:
    """One fuzzing run with the union of the items' checks; each check scores the item naming it."""
    assert ctx.target is not None
    owner: dict[str, str] = {}
    for item in items:
        for name in item.options.get("checks", []):
            if name in owner:
                raise GraderFault(f"check {name!r} is in two rubric items: {owner[name]}, {item.id}")
            owner[name] = item.id
    fuzz = ctx.assignment.fuzz
    hooks = ctx.assignment.dir / fuzz.hooks if fuzz.hooks else None
    report = run_fuzz(spec=ctx.assignment.spec_path, base_url=ctx.target.base_url, seed=ctx.seed,
                      max_examples=fuzz.max_examples, checks=sorted(owner), stateful=fuzz.stateful,
                      hooks=hooks, env=ctx.target.env, max_steps=fuzz.max_steps)
    return report.outcomes(owner)


@check("differential")
def differential(ctx: Context, items: list[Item]) -> list[Outcome]:
    """The contract suite's requests answered like the reference answers them (needs `contract`)."""
    from grader import reference

    traces = ctx.reference_traces
    if traces is None:
        if ctx.reference is None:
            raise GraderFault("the differential check needs the reference solution (`reference:` "
                              "in assignment.yaml)")
        run = run_suite(ctx.assignment.tests_dir, ctx.reference)
        failing = [o.name for o in run.outcomes if not o.passed]
        if failing:  # the spec and its model solution disagree: not the student's problem
            raise GraderFault(f"the reference solution fails {len(failing)} contract test(s), "
                              f"e.g. {failing[:3]}; fix the assignment before grading")
        traces = run.traces
        reference.save_traces(ctx.reference_key, traces)
    outcomes = []
    for item in items:
        outcomes += compare(ctx.traces, traces, ctx.contract_outcomes, item.id)
    return outcomes
