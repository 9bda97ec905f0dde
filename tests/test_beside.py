"""Checks that run beside the others (`@check(beside=True)`) on a second instance of the app:
at the same time as the others when the runtime started one, after them on the first instance
otherwise or when the assignment says `alone:`; the outcomes in the same order either way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from grader import assignment as assignments
from grader.assignment import Item
from grader.checks import CHECKS, Context, Later, check, run_checks, wants_twin
from grader.core import GraderFault, Outcome, Target


@dataclass(frozen=True)
class Token:
    value: str


class Seen:
    """What the fake checks saw: which app each talked to, and whether they overlapped."""

    def __init__(self) -> None:
        self.beside_started = threading.Event()
        self.overlapped = False
        self.apps: dict[str, str] = {}
        self.order: list[str] = []
        self.fail_provider = False
        self.got: Token | None = None
        self.later_error = ""


SEEN = Seen()


def _outcome(name: str, item: Item) -> Outcome:
    return Outcome(check=name, name=name, item=item.id, passed=True)


@pytest.fixture
def fakes() -> Iterator[Seen]:
    global SEEN
    SEEN = Seen()

    @check("t-provider", provides=Token)
    def provider(ctx: Context, items: list[Item]) -> tuple[list[Outcome], Token]:
        assert ctx.target is not None
        SEEN.apps["t-provider"] = ctx.target.base_url
        # beside the other, it has started by now; one after the other, it never starts here
        SEEN.overlapped = SEEN.beside_started.wait(timeout=2)
        SEEN.order.append("t-provider")
        if SEEN.fail_provider:
            raise GraderFault("the provider broke")
        return [_outcome("t-provider", i) for i in items], Token("made by the provider")

    @check("t-beside", needs=Token, beside=True)
    def beside(ctx: Context, items: list[Item], later: Later[Token]) -> list[Outcome]:
        assert ctx.target is not None
        SEEN.apps["t-beside"] = ctx.target.base_url
        SEEN.beside_started.set()
        try:
            SEEN.got = later.get()
        except GraderFault as exc:
            SEEN.later_error = str(exc)
            raise
        SEEN.order.append("t-beside")
        return [_outcome("t-beside", i) for i in items]

    yield SEEN
    for name in ("t-provider", "t-beside"):
        CHECKS.pop(name)


def _ctx(*, twin: bool, alone: list[str] | None = None) -> tuple[Context, list[Item]]:
    spec = assignments.load("fastapi-basics").model_copy(update={"alone": alone or []})
    items = [
        Item(id="b", title="b", category="deploy", points=1, check="t-beside"),
        Item(id="p", title="p", category="deploy", points=1, check="t-provider"),
    ]
    ctx = Context(
        assignment=spec,
        seed=0,
        runtime="docker",
        built=True,
        started=True,
        target=Target(base_url="http://first:1"),
        twin=Target(base_url="http://second:1") if twin else None,
    )
    return ctx, items


def test_with_a_twin_it_runs_there_at_the_same_time(fakes: Seen) -> None:
    ctx, items = _ctx(twin=True)
    assert wants_twin(ctx.assignment, items)
    timings: dict[str, float] = {}
    outcomes = run_checks(ctx, items, timings)
    assert fakes.overlapped
    assert fakes.apps == {"t-provider": "http://first:1", "t-beside": "http://second:1"}
    assert fakes.got == Token("made by the provider")
    # the provider's first, as one after the other: the order never depends on timing
    assert [o.check for o in outcomes] == ["t-provider", "t-beside"]
    assert set(timings) == {"check:t-provider", "check:t-beside"}


@pytest.mark.parametrize("how", ["no twin", "alone"])
def test_without_a_twin_or_alone_it_runs_after_the_others_on_the_first(
    fakes: Seen, how: str
) -> None:
    ctx, items = _ctx(twin=how == "alone", alone=["t-beside"] if how == "alone" else None)
    assert wants_twin(ctx.assignment, items) is (how == "no twin")  # asked for, none offered
    outcomes = run_checks(ctx, items)
    assert not fakes.overlapped and fakes.order == ["t-provider", "t-beside"]
    assert fakes.apps == {"t-provider": "http://first:1", "t-beside": "http://first:1"}
    assert fakes.got == Token("made by the provider")
    assert [o.check for o in outcomes] == ["t-provider", "t-beside"]


def test_a_provider_that_fails_ends_the_check_beside_it(fakes: Seen) -> None:
    fakes.fail_provider = True
    ctx, items = _ctx(twin=True)
    with pytest.raises(GraderFault, match="the provider broke"):
        run_checks(ctx, items)
    assert fakes.later_error == "the t-provider check failed"
    assert ctx.twin is not None and ctx.twin.guard.stopped == "the other checks stopped"


def test_alone_must_name_a_check_that_runs_beside(tmp_path: object) -> None:
    from grader.checks import rubric_problems

    basics = assignments.load("fastapi-basics")
    said = rubric_problems(basics.items, alone=["contract", "schemathesis"])
    assert said == [
        "alone: 'contract' is not a check that runs beside the others; those are: schemathesis"
    ]


def test_every_module_a_check_warms_up_exists() -> None:
    """warm_up ignores a module that is gone (a library's internals moved): this notices it."""
    import importlib

    from grader.checks import _registry

    for registered in _registry().values():
        for name in registered.warm:
            module, _, function = name.partition(":")
            assert not function or callable(getattr(importlib.import_module(module), function))
