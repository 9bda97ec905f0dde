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

A check registered `beside=True` must not share the app's state with the others (fuzzing sends
anything; the contract suite counts rows and restarts the app): when the runtime started a second
instance of the app on a database of its own (`Context.twin`), it runs there in a thread of its
own, at the same time as the others, and gets what it needs as a `Later` (`get()` waits for the
provider). Without a twin, or when the assignment lists it under `alone:`, it runs after the
others on the app they used, as any check.

This module and `builtin` import nothing heavy (pytest, Schemathesis, HTTP clients): loading an
assignment registers the checks to validate its rubric, before anything is built.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

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
    # a second instance of the app on a database of its own, for the checks registered
    # `beside=True`; None: the runtime started none (they run on `target`, after the others)
    twin: Target | None = None
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
    beside: bool
    warm: tuple[str, ...]


CHECKS: dict[str, Registered] = {}
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Later(Generic[T]):
    """What a check running beside the others needs from one of them: `get()` waits until the
    provider has run, and raises GraderFault when it could not."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: T | None = None
        self._failed = ""

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def set(self, value: T) -> None:
        self._value = value
        self._done.set()

    def fail(self, why: str) -> None:
        self._failed = why
        self._done.set()

    def get(self) -> T:
        self._done.wait()
        if self._failed:
            raise GraderFault(self._failed)
        assert self._value is not None
        return self._value


def check(
    name: str,
    *,
    options: type[Options] = Options,
    needs_app: bool = True,
    provides: type | None = None,
    needs: type | None = None,
    rule: RubricRule | None = None,
    beside: bool = False,
    warm: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """Register a check. `rule`: a validation across its rubric items, run when the rubric loads.
    `beside`: it runs on a second instance of the app, at the same time as the others, when the
    runtime offers one (its `needs` value then comes as a `Later`, in every case). `warm`: the
    heavy modules it imports when it runs, or "module:function" to call (`warm_up` does it while
    the app starts)."""

    def register(fn: F) -> F:
        if provides is not None:
            other = _provider(provides)
            assert other is None or other.name == name, f"{provides} has two providers"
        CHECKS[name] = Registered(name, fn, needs_app, options, provides, needs, rule, beside, warm)
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
    items: list[Item], *, subsets: Iterable[tuple[str, list[Item]]] = (), alone: Iterable[str] = ()
) -> list[str]:
    """What is wrong with these rubric items, each naming its item and field: an unknown check, an
    option its check does not take or of the wrong type, a rule across a check's items broken, a
    value an item needs that no item provides (also within each of the named `subsets`, such as
    the visible items a self-check grades alone); a name under `alone:` that is no check running
    beside the others."""
    checks = _registry()
    problems: list[str] = []
    beside = sorted(name for name, r in checks.items() if r.beside)
    for name in alone:
        if name not in beside:
            problems.append(
                f"alone: {name!r} is not a check that runs beside the others; those are: "
                f"{', '.join(beside) or 'none'}"
            )
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


def warm_up(items: list[Item]) -> threading.Thread:
    """Import the modules these items' checks import when they run (pytest, Schemathesis: a
    second or more), in a thread, while the grade waits for the build and the app; join it before
    running the checks."""
    registry = _registry()
    modules = [
        m for name in {i.check for i in items} if name in registry for m in registry[name].warm
    ]

    def load() -> None:
        for name in sorted(set(modules)):
            module, _, function = name.partition(":")
            with contextlib.suppress(ImportError):  # moved in a new version: loaded when used
                loaded = importlib.import_module(module)
                if function:
                    getattr(loaded, function)()

    thread = threading.Thread(target=load, name="warm-up", daemon=True)
    thread.start()
    return thread


def wants_twin(assignment: Assignment, items: list[Item]) -> bool:
    """Whether a check of these items runs beside the others, on a second instance of the app."""
    _registry()
    return any(_beside(name, assignment) for name in {i.check for i in items})


def _beside(name: str, assignment: Assignment) -> bool:
    """Check `name` runs beside the others, on a twin (if the runtime starts one)."""
    registered = CHECKS.get(name)
    return registered is not None and registered.beside and name not in assignment.alone


def run_checks(
    ctx: Context, items: list[Item], timings: dict[str, float] | None = None
) -> list[Outcome]:
    """Run each check the items name, once, a provider before the checks that need its value, and
    the checks registered `beside=True` on `ctx.twin` at the same time as the others (when there
    is one); `timings` gets "check:<name>" seconds. The outcomes come in the same order either way."""
    problems = rubric_problems(items)
    if problems:
        raise GraderFault("the rubric's items cannot be graded: " + "; ".join(problems))
    by_check: dict[str, list[Item]] = {name: [] for name in CHECKS}  # registration order
    for item in items:
        by_check[item.check].append(item)
    names = _order([name for name, its in by_check.items() if its])
    twin = ctx.twin
    beside = [n for n in names if twin is not None and _beside(n, ctx.assignment)]
    laters: dict[type, Later[Any]] = {}
    for name in beside:
        needs = CHECKS[name].needs
        if needs is not None:
            laters.setdefault(needs, Later())
    got: dict[str, list[Outcome]] = {}
    values: dict[type, object] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(beside)), thread_name_prefix="beside") as pool:
        there = dataclasses.replace(ctx, target=twin)
        futures: dict[str, Future[list[Outcome]]] = {
            name: pool.submit(_run, there, name, by_check[name], laters, timings) for name in beside
        }
        finished = False
        try:
            for name in names:
                if name not in futures:
                    got[name] = _run(ctx, name, by_check[name], values, timings, laters)
            finished = True
        finally:
            for needs, later in laters.items():  # a provider that failed: nothing to wait for
                if not later.done:
                    provider = _provider(needs)
                    later.fail(f"the {provider.name if provider else needs.__name__} check failed")
            if twin is not None and not finished:
                twin.guard.stop("the other checks stopped")  # the checks beside end soon
        for name, future in futures.items():
            got[name] = future.result()
    return [o for name in names for o in got[name]]


def _run(
    ctx: Context,
    name: str,
    its: list[Item],
    values: dict[type, Any],
    timings: dict[str, float] | None,
    laters: dict[type, Later[Any]] | None = None,
) -> list[Outcome]:
    """One check on `ctx.target`; what it provides goes into `values`, and to `laters` at once.
    `values` maps a needed type to its value, or (for a check running beside) to its `Later`."""
    registered = CHECKS[name]
    if registered.needs_app and ctx.target is None:
        why = (
            ctx.build_reason if ctx.built is False else ctx.start_reason or "the app did not start"
        )
        return [not_run(name, item, why) for item in its]
    begin = time.monotonic()
    given = []
    if registered.needs is not None:
        if registered.needs not in values:
            raise GraderFault(
                f"the {name} check needs a {registered.needs.__name__}: none was made"
            )
        value = values[registered.needs]
        if registered.beside and not isinstance(value, Later):
            value, ready = Later(), value
            value.set(ready)
        given.append(value)
    got = registered.fn(ctx, its, *given)
    if registered.provides is not None:
        got, values[registered.provides] = got
        if laters and registered.provides in laters:
            laters[registered.provides].set(values[registered.provides])
    if timings is not None:
        timings[f"check:{name}"] = round(time.monotonic() - begin, 2)
    return list(got)
