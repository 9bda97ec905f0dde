"""Stage 5: checks. Each is a plain function registered under a name; the rubric switches it on.

A check gets the run's `Context` and the rubric items that name it, and returns Outcomes, each
naming one of those items. Checks that need a running app are not called when there is none (their
items get "not run" outcomes); they are called on an app that answers HTTP but never passed its
health check (`started` False: the start item fails, the rest counts for itself).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from grader.assignment import Assignment, Item
from grader.core import Exchange, GraderFault, Outcome, Target

CheckFn = Callable[["Context", list[Item]], list[Outcome]]


@dataclass
class Context:
    assignment: Assignment
    seed: int
    runtime: str  # "docker" or "local"
    built: bool | None  # None: not applicable (local mode)
    build_reason: str = ""
    started: bool = False  # healthy within the start deadline
    start_reason: str = ""
    served: str = (
        ""  # local mode: what started the app (the Dockerfile's command or the assignment's)
    )
    target: Target | None = None  # the app the checks talk to; None: there is none
    # the reference solution's answers to the contract suite, recorded alone (grader.reference)
    reference_traces: dict[str, list[Exchange]] | None = None
    # filled by the contract check, read by the ones after it (registration order)
    traces: dict[str, list[Exchange]] = field(default_factory=dict)
    contract_outcomes: list[Outcome] = field(default_factory=list)
    # spec operations that answered with a documented success in a contract test that passed
    # (checks/exercised.py), every one counted (hidden ones too: only the operations' names are kept)
    implemented: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Registered:
    fn: CheckFn
    needs_app: bool


CHECKS: dict[str, Registered] = {}


def check(name: str, *, needs_app: bool = True) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS[name] = Registered(fn, needs_app)
        return fn

    return register


def not_run(check: str, item: Item, why: str) -> Outcome:
    """The outcome of an item whose check could not run: it costs the item's points; reports show
    all such items in one line, since they share one cause."""
    return Outcome(
        check=check,
        name=f"{item.id} (not run)",
        item=item.id,
        passed=False,
        message=f"Not checked: {why}",
        not_run=True,
    )


def run_checks(
    ctx: Context, items: list[Item], timings: dict[str, float] | None = None
) -> list[Outcome]:
    """Run each check the items name, once; `timings` gets "check:<name>" seconds."""
    from grader.checks import builtin  # noqa: F401  (registers the built-in checks)

    by_check: dict[str, list[Item]] = {name: [] for name in CHECKS}  # registration order
    for item in items:
        if item.check not in CHECKS:
            raise GraderFault(
                f"rubric item {item.id!r} names an unknown check {item.check!r}; "
                f"known: {', '.join(sorted(CHECKS))}"
            )
        by_check.setdefault(item.check, []).append(item)
    outcomes: list[Outcome] = []
    for name, its in by_check.items():
        if not its:
            continue
        registered = CHECKS[name]
        if registered.needs_app and ctx.target is None:
            why = (
                ctx.build_reason
                if ctx.built is False
                else ctx.start_reason or "the app did not start"
            )
            outcomes += [not_run(name, item, why) for item in its]
            continue
        begin = time.monotonic()
        outcomes += registered.fn(ctx, its)
        if timings is not None:
            timings[f"check:{name}"] = round(time.monotonic() - begin, 2)
    return outcomes
