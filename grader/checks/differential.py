"""Differential check: the contract suite's request sequences, sent to the reference solution too.

The suite runs once against the reference (its traces are cached per reference build and
assignment version) and once against the submission; each test's exchanges are paired in order
and compared after normalising volatile values (ids, tokens). The first divergence of a test is an
outcome; every failing contract outcome also gets the reference's answer to the same request.

Equivalence is deliberately loose where the contract is: same status code; for 2xx JSON bodies,
every field of the reference's body present with an equal (normalised) value — extra fields and
key order are free; error bodies are not compared (their texts are often free).

A test whose answers match earns credit only for behaviour that was exercised
(`grader.checks.exercised`): every spec operation it reached (in either run) must be implemented
(have succeeded in a contract test that passed), else it fails "not credited" naming those that
did not (a starter's 404s and 422s match the reference's, and prove nothing). A test that reached
no operation but the given ones (the health path's) compares nothing the assignment asks for: it
is left out.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from grader.assignment import Runtime
from grader.checks.exercised import Api, Credit, not_credited
from grader.core import CUT, Exchange, Outcome

CHECK = "differential"
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def normalize(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: normalize(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v, key) for v in value]
    if isinstance(value, str) and _JWT.match(value) and value.count(".") == 2 and len(value) > 30:
        return "<token>"
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (key == "id" or key.endswith("_id"))
    ):
        return "<id>"
    return value


def secrets_of(runtime: Runtime, env: dict[str, str]) -> dict[str, str]:
    """The run's random env values (`${random_...}`) and what stands for them in traces: `<NAME>`.
    They differ between the submission's run and the (cached) reference run, and may be echoed."""
    return {
        env[name]: f"<{name}>"
        for name, template in runtime.env.items()
        if "${random_" in template and env.get(name)
    }


def mask(traces: dict[str, list[Exchange]], secrets: dict[str, str]) -> dict[str, list[Exchange]]:
    """The traces with every secret value replaced by its placeholder."""
    if not secrets:
        return traces

    def text(value: str | None) -> str | None:
        if value is None:
            return None
        for secret, placeholder in secrets.items():
            value = value.replace(secret, placeholder)
        return value

    def one(ex: Exchange) -> Exchange:
        return dataclasses.replace(
            ex,
            url=text(ex.url) or "",
            request_body=text(ex.request_body),
            response_body=text(ex.response_body),
            request_headers={k: text(v) or "" for k, v in ex.request_headers.items()},
            response_headers={k: text(v) or "" for k, v in ex.response_headers.items()},
        )

    return {test: [one(ex) for ex in exchanges] for test, exchanges in traces.items()}


def _json(body: str | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def _covers(reference: Any, student: Any) -> bool:
    """Every part of the reference's value is in the student's (extra dict keys allowed)."""
    if isinstance(reference, dict):
        return isinstance(student, dict) and all(
            k in student and _covers(v, student[k]) for k, v in reference.items()
        )
    if isinstance(reference, list):
        return (
            isinstance(student, list)
            and len(student) == len(reference)
            and all(_covers(r, s) for r, s in zip(reference, student, strict=True))
        )
    return bool(reference == student)


def diverges(student: Exchange, reference: Exchange) -> str | None:
    """Why the two answers differ, or None when they are equivalent."""
    if student.status != reference.status:
        return f"status {student.status} where the reference answers {reference.status}"
    cut = any(CUT in (ex.response_body or "") for ex in (student, reference))
    if student.status is not None and 200 <= student.status < 300 and not cut:  # cut: unknowable
        mine, theirs = (
            normalize(_json(student.response_body)),
            normalize(_json(reference.response_body)),
        )
        if not _covers(theirs, mine):
            return "the body differs from the reference's"
    return None


def with_reference(
    outcomes: list[Outcome],
    student: dict[str, list[Exchange]],
    reference: dict[str, list[Exchange]],
) -> list[Outcome]:
    """The contract `outcomes`, each failing one (new) with the reference's answer to the same
    request as its test's last (the `student` traces by test name)."""
    result = []
    for outcome in outcomes:
        mine, theirs = student.get(outcome.name), reference.get(outcome.name)
        if not outcome.passed and mine and theirs is not None and len(theirs) >= len(mine):
            outcome = dataclasses.replace(outcome, reference=theirs[len(mine) - 1])
        result.append(outcome)
    return result


def compare(
    student: dict[str, list[Exchange]],
    reference: dict[str, list[Exchange]],
    item: str,
    *,
    api: Api,
    credit: Credit,
) -> list[Outcome]:
    """Differential outcomes for `item`, one per test both runs made that reached an operation
    `credit` does not count as given."""
    result = []
    for name in sorted(set(student) & set(reference)):
        mine, theirs = student[name], reference[name]
        found = None
        for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            why = diverges(a, b)
            if why:
                said = (
                    f"{a.error}; the reference answers {b.status}"
                    if a.status is None and a.error
                    else f"{a.method} {_path(a.url)}: {why}"
                )
                found = Outcome(
                    check=CHECK,
                    name=f"{name} · request {i + 1}",
                    item=item,
                    passed=False,
                    message=f"{said}.",
                    expected=_answer(b),
                    actual=_answer(a),
                    exchange=a,
                    reference=b,
                )
                break
        if found is not None:
            result.append(found)
            continue
        reached = api.labels(mine[: len(theirs)] + theirs)
        if not credit.at_stake(reached):
            continue
        missing = credit.missing(reached)
        result.append(
            Outcome(
                check=CHECK,
                name=name,
                item=item,
                passed=not missing,
                message=f"{not_credited(missing)}: matching the reference's answers earns "
                "nothing while an operation the test reaches does not work."
                if missing
                else "",
            )
        )
    return result


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1] if "://" in url else url


def _answer(ex: Exchange) -> str:
    body = (ex.response_body or "").strip()
    return f"{ex.status} {body[:300]}".strip()
