"""Stage 5: checks. Each is a plain function registered under a name; the rubric switches it on.

A check gets the run's `Context` and the rubric items that name it, and returns Outcomes, each
naming one of those items. Checks that need a running app are not called when there is none (their
items get "not run" outcomes); they are called on an app that answers HTTP but never passed its
health check (`started` False: the start item fails, the rest counts for itself).

A check declares, when it registers, what the rubric may say to it (`options`: a pydantic model,
checked when the assignment loads, read with `Model.of(item)`) and the values it hands to or takes
from other checks: `provides=T` (it returns `(outcomes, T)`) and `needs=T` (it is called with the
provider's T as a third argument, after the provider ran). A rubric whose items need a value no
item provides is refused when it loads.

This module and `builtin` import nothing heavy (pytest, Schemathesis, HTTP clients): loading an
assignment registers the checks to validate its rubric, before anything is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from grader.assignment import Assignment, Item
from grader.core import Exchange, GraderFault, Outcome, Target


@dataclass
class Context:
    """What the stages before the checks made: inputs only, never values between checks."""

    assignment: Assignment
    seed: int
    runtime: str  # its name, for messages only: what it offers shows in `built` and `target`
    built: bool | None  # None: no image is built in this runtime
    build_reason: str = ""
    started: bool = False  # healthy within the start deadline
    start_reason: str = ""
    served: str = (
        ""  # without an image: what started the app (the Dockerfile's command or the assignment's)
    )
    target: Target | None = None  # the app the checks talk to; None: there is none
    # the reference solution's answers to the contract suite, recorded alone (grader.reference)
    reference_traces: dict[str, list[Exchange]] | None = None


class Options(BaseModel):
    """A check's options in the rubric (`options:` of an item); a check without any takes this."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def of(cls, item: Item) -> Self:
        """The item's options, typed (the assignment's load already refused invalid ones)."""
        return cls.model_validate(item.options)


# Given the items of one check (their options valid), what is wrong across them.
RubricRule = Callable[[list[Item]], list[str]]


@dataclass(frozen=True)
class Registered:
    name: str
    fn: Callable[..., Any]  # (ctx, items[, needed]) -> outcomes, or (outcomes, provided)
    needs_app: bool
    options: type[Options]
    provides: type | None
    needs: type | None
    rule: RubricRule | None


CHECKS: dict[str, Registered] = {}
F = TypeVar("F", bound=Callable[..., Any])


def check(
    name: str,
    *,
    options: type[Options] = Options,
    needs_app: bool = True,
    provides: type | None = None,
    needs: type | None = None,
    rule: RubricRule | None = None,
) -> Callable[[F], F]:
    """Register a check. `rule`: a validation across its rubric items, run when the rubric loads."""

    def register(fn: F) -> F:
        if provides is not None:
            other = _provider(provides)
            assert other is None or other.name == name, f"{provides} has two providers"
        CHECKS[name] = Registered(name, fn, needs_app, options, provides, needs, rule)
        return fn

    return register


def _provider(value: type) -> Registered | None:
    return next((r for r in CHECKS.values() if r.provides is value), None)


def _registry() -> dict[str, Registered]:
    from grader.checks import builtin  # noqa: F401  (registers the built-in checks)

    return CHECKS


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


def _option_errors(item: Item, registered: Registered) -> list[str]:
    try:
        registered.options.model_validate(item.options)
    except ValidationError as exc:
        takes = ", ".join(registered.options.model_fields) or "no options"
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "options"
            said = error["msg"]
            if error["type"] == "extra_forbidden":
                said += f" (the {item.check} check takes: {takes})"
            problems.append(f"item {item.id!r} (check {item.check!r}), option {where!r}: {said}")
        return problems
    return []


def rubric_problems(
    items: list[Item], *, subsets: Iterable[tuple[str, list[Item]]] = ()
) -> list[str]:
    """What is wrong with these rubric items, each naming its item and field: an unknown check, an
    option its check does not take or of the wrong type, a rule across a check's items broken, a
    value an item needs that no item provides (also within each of the named `subsets`, such as
    the visible items a self-check grades alone)."""
    checks = _registry()
    problems: list[str] = []
    for item in items:
        registered = checks.get(item.check)
        if registered is None:
            problems.append(
                f"item {item.id!r}: unknown check {item.check!r}; known: {', '.join(sorted(checks))}"
            )
        else:
            problems += _option_errors(item, registered)
    if problems:
        return problems
    for registered in checks.values():
        its = [i for i in items if i.check == registered.name]
        if its and registered.rule is not None:
            problems += registered.rule(its)
    for what, subset in [("rubric", items), *subsets]:
        problems += _missing_providers(subset, what)
    return problems


def _missing_providers(items: list[Item], what: str) -> list[str]:
    present = {i.check for i in items}
    problems = []
    for item in items:
        needs = CHECKS[item.check].needs
        provider = _provider(needs) if needs is not None else None
        if needs is not None and (provider is None or provider.name not in present):
            name = provider.name if provider else needs.__name__
            problems.append(
                f"item {item.id!r}: the {item.check} check needs what the {name} check finds: "
                f"the {what} needs a {name} item"
            )
    return problems


def _order(names: list[str]) -> list[str]:
    """`names` in registration order, except that a check comes after the provider of what it
    needs (the rubric's validation made sure that provider is among them)."""
    order: list[str] = []
    provided: set[type] = set()
    pending = list(names)
    while pending:
        ready = next(n for n in pending if CHECKS[n].needs is None or CHECKS[n].needs in provided)
        pending.remove(ready)
        order.append(ready)
        provides = CHECKS[ready].provides
        if provides is not None:
            provided.add(provides)
    return order


def run_checks(
    ctx: Context, items: list[Item], timings: dict[str, float] | None = None
) -> list[Outcome]:
    """Run each check the items name, once, a provider before the checks that need its value;
    `timings` gets "check:<name>" seconds."""
    problems = rubric_problems(items)
    if problems:
        raise GraderFault("the rubric's items cannot be graded: " + "; ".join(problems))
    by_check: dict[str, list[Item]] = {name: [] for name in CHECKS}  # registration order
    for item in items:
        by_check[item.check].append(item)
    outcomes: list[Outcome] = []
    values: dict[type, object] = {}
    for name in _order([name for name, its in by_check.items() if its]):
        its = by_check[name]
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
        given = []
        if registered.needs is not None:
            if registered.needs not in values:
                raise GraderFault(
                    f"the {name} check needs a {registered.needs.__name__}: none was made"
                )
            given.append(values[registered.needs])
        got = registered.fn(ctx, its, *given)
        if registered.provides is not None:
            got, values[registered.provides] = got
        outcomes += got
        if timings is not None:
            timings[f"check:{name}"] = round(time.monotonic() - begin, 2)
    return outcomes
