"""The `fastapi-db-auth` contract suite against the reference solution (passes every test) and the
student starter template (fails most of them), each running on a real local Postgres.

The fixtures `reference_app` and `template_app` (tests/conftest.py) yield a `grader.core.Target`.
"""

from __future__ import annotations

import collections

from grader import assignment as assignment_mod
from grader.checks.contract import run_suite
from grader.core import Outcome, Target

NAME = "fastapi-db-auth"
TEMPLATE_MIN_FAILING = 0.70  # the starter must fail more than this share of the tests


def _show(outcomes: list[Outcome]) -> str:
    lines = []
    for o in outcomes:
        lines.append(
            f"- [{o.item}] {o.name}: {o.message.strip().splitlines()[-1] if o.message else ''}"
        )
        if o.expected is not None or o.actual is not None:
            lines.append(f"    expected: {o.expected}\n    actual:   {o.actual}")
        if o.exchange is not None:
            lines.append(f"    last request: {o.exchange.curl()}")
    return "\n".join(lines)


def test_reference_passes_every_contract_test(reference_app: Target) -> None:
    a = assignment_mod.load(NAME)
    outcomes = run_suite(a.tests_dir, reference_app).outcomes
    assert outcomes, "the contract suite ran no test"
    failures = [o for o in outcomes if not o.passed]
    assert not failures, (
        f"{len(failures)} of {len(outcomes)} contract tests fail on the reference:\n"
        + _show(failures)
    )
    # every contract rubric item was exercised
    seen = {o.item for o in outcomes}
    items = {i.id for i in a.items if i.check == "contract"}
    assert items <= seen, f"contract items without outcomes: {sorted(items - seen)}"


def test_template_fails_most_contract_tests(template_app: Target) -> None:
    a = assignment_mod.load(NAME)
    outcomes = [o for o in run_suite(a.tests_dir, template_app).outcomes if not o.skipped]
    assert outcomes, "the contract suite ran no test"
    failed = [o for o in outcomes if not o.passed]
    share = len(failed) / len(outcomes)
    passed_by_item = collections.Counter(o.item for o in outcomes if o.passed)
    assert share > TEMPLATE_MIN_FAILING, (
        f"the starter template fails only {len(failed)}/{len(outcomes)} ({share:.0%}) contract tests; "
        f"passing per item: {dict(passed_by_item)}"
    )
    # a fresh fork scores above 0: its /health already works
    health = [o for o in outcomes if o.item == "health"]
    assert health and all(o.passed for o in health), _show([o for o in health if not o.passed])
