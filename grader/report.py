"""Stage 7: render a Result — results.json (Gradescope's format) and report.html (jinja2)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from grader import logtext, reproduce
from grader.causes import SHOWN
from grader.core import Cause, ItemScore, Outcome, Result, Status

_env = Environment(
    loader=PackageLoader("grader", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["plain"] = logtext.plain  # logs without colour codes

STATUS_TEXT = {
    Status.GRADED: "Graded",
    Status.REJECTED: "Submission refused",
    Status.BUILD_FAILED: "The Docker image did not build",
    Status.START_FAILED: "The app did not start",
    Status.NOT_GRADED: "Not graded (grader problem, not yours)",
}


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file, fsync and rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # errors: a lone surrogate that slipped past core.scrub is written as its escape
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def item_output(item: ItemScore, titles: dict[int, str] | None = None) -> str:
    if item.not_checked:
        return "\n".join(o.message for o in item.outcomes)
    lines = [zeroed(item)] if item.zeroed_by else []
    total = sum(1 for o in item.outcomes if not o.skipped)
    passed = sum(1 for o in item.outcomes if o.passed and not o.skipped)
    if total:
        lines.append(f"{passed}/{total} checks passed.")
    for why, blocked in blocked_groups(item, titles):
        lines.append(
            f"\nNot checked ({len(blocked)}): {why} — " + ", ".join(o.name for o in blocked)
        )
    for o in checked_failures(item):
        lines.append(f"\n✗ {o.name}: {o.message}".rstrip())
        if o.expected is not None:
            lines.append(f"  expected: {o.expected}")
        if o.actual is not None:
            lines.append(f"  actual:   {o.actual}")
        if o.exchange is not None:
            lines.append(f"  reproduce: {o.exchange.curl()}")
        if o.reference is not None and o.reference.status is not None:
            lines.append(
                f"  reference solution answered {o.reference.status}: {o.reference.response_body or ''}"
            )
    return "\n".join(lines)


def zeroed(item: ItemScore) -> str:
    """Why a security hole cost the whole item, in one line."""
    return f"0 points: a critical check failed — {item.zeroed_by}"


def gradescope(result: Result) -> dict[str, Any]:
    titles = cause_titles(result)
    data: dict[str, Any] = {
        "execution_time": round(result.timings.get("total", 0.0), 2),
        "output": summary(result),
        "output_format": "text",
        "extra_data": {
            "status": str(result.status),
            "reason": result.reason,
            "assignment": result.assignment,
            "assignment_version": result.assignment_version,
            "seed": result.seed,
            "runtime": result.runtime,
            "timings": result.timings,
            "categories": [c.to_dict() for c in result.categories],
        },
        "tests": [
            {
                "name": f"{item.category}: {item.title}",
                "score": item.points,
                "max_score": item.max_points,
                "status": "passed" if item.passed else "failed",
                "output": item_output(item, titles),
                "tags": [item.category, item.id],
                "visibility": item.visibility,
            }
            for item in result.items
        ],
    }
    if result.status is not Status.NOT_GRADED:
        data["score"] = result.score  # never a score for a run the grader itself could not finish
    return data


def summary(result: Result) -> str:
    head = f"{result.assignment}: {status_text(result)}"
    if result.status is Status.NOT_GRADED:
        return f"{head}. {result.reason}"
    text = f"{head}. Score {result.score:g}/{result.max_score:g}."
    unchecked = sum(i.max_points for i in result.items if i.not_checked)
    if unchecked:
        text += f" {unchecked:g} points not checked in {result.runtime} mode."
    if result.hidden:
        text += (
            f" {result.hidden} hidden check(s) ({result.hidden_points:g} points) are run "
            "when your instructor grades."
        )
    if result.reason:
        text += f" {result.reason}"
    return text


def status_text(result: Result) -> str:
    if result.answered_unhealthy:
        return "The app never passed its health check"
    return STATUS_TEXT[result.status]


def not_run(result: Result) -> list[tuple[str, list[ItemScore]]]:
    """The items none of whose checks could run (no image, no app), by reason: (reason, items).
    Each group is one line in a report: the reason is the same for all its items."""
    groups: dict[str, list[ItemScore]] = {}
    for item in result.items:
        if item.outcomes and all(o.not_run for o in item.outcomes):
            groups.setdefault(item.outcomes[0].message, []).append(item)
    return list(groups.items())


def not_run_line(why: str, items: list[ItemScore]) -> str:
    """E.g. "Not run: 21 rubric items (96 points) — the app exited with code 1 before answering.
    Items: …" (the HTML report says the same)."""
    points = sum(i.max_points for i in items)
    return (
        f"Not run: {len(items)} rubric item{'s' if len(items) != 1 else ''} ({points:g} points) — "
        f"{why.removeprefix('Not checked: ')} Items: " + "; ".join(i.title for i in items) + "."
    )


def to_fix(result: Result) -> list[ItemScore]:
    """The failed items a student has something to look at in: not those unchecked in this mode,
    nor those that could not run (one line says why, see `not_run`)."""
    skipped = {id(i) for _, items in not_run(result) for i in items}
    return [i for i in result.items if not i.passed and not i.not_checked and id(i) not in skipped]


def html(result: Result) -> str:
    template = _env.get_template("report.html.j2")
    shown, rest = top_causes(result)
    scripts = reproducers(result)
    return template.render(
        r=result,
        status_text=status_text(result),
        not_run=not_run(result),
        to_fix=to_fix(result),
        item_output=item_output,
        zeroed=zeroed,
        failure_groups=failure_groups,
        causes=shown,
        other_causes=rest,
        cause_line=cause_line,
        example=example,
        blocked_groups=blocked_groups,
        checked_failures=checked_failures,
        titles=cause_titles(result),
        reproducer_path=lambda o: scripts.get(id(o), (None,))[0],
    )


def top_causes(result: Result) -> tuple[list[Cause], list[Cause]]:
    """(the root causes a report opens with, the smaller ones). None when nothing ran: the
    reason and the log say it all (a build or start failure)."""
    ran = result.status is Status.GRADED or result.answered_unhealthy
    causes = [c for c in result.causes if c.points > 0 or c.critical] if ran else []
    return causes[:SHOWN], causes[SHOWN:]


def cause_line(c: Cause, items: list[ItemScore]) -> str:
    """What a cause stopped, e.g. "82 checks not checked and 9 failed, in 3 rubric items: Token;
    Users me; Items" (item titles cut short past the third)."""
    blocked, failed = c.blocked, len(c.outcomes) - c.blocked
    parts = [f"{blocked} check{'s' if blocked != 1 else ''} not checked"] if blocked else []
    if failed:
        parts.append(
            f"{failed} failed" if parts else f"{failed} check{'s' if failed != 1 else ''} failed"
        )
    titles = {i.id: i.title for i in items}
    mine = {o.item for o in c.outcomes}
    ids = [i.id for i in items if i.id in mine]  # in the rubric's order
    names = "; ".join(titles.get(i, i) for i in ids[:3]) + ("; …" if len(ids) > 3 else "")
    where = f", in {len(ids)} rubric item{'s' if len(ids) != 1 else ''}: {names}" if ids else ""
    return " and ".join(parts) + where


def example(c: Cause) -> Outcome | None:
    """The outcome that shows a cause best: a failure with a request, else any."""
    with_request = [o for o in c.outcomes if o.exchange is not None]
    return next((o for o in with_request if not o.blocked_by), None) or next(
        iter(with_request or c.outcomes), None
    )


def cause_titles(result: Result) -> dict[int, str]:
    """id(outcome) -> the title of its root cause."""
    return {id(o): c.title for c in result.causes for o in c.outcomes}


def blocked_groups(
    item: ItemScore, titles: dict[int, str] | None = None
) -> list[tuple[str, list[Outcome]]]:
    """An item's tests not checked because a step failed, by root cause ("could not log in (POST
    /login answered 404)"; `titles` from `cause_titles`, else each test's own words): one line
    each in a report, not a failure of what the tests check."""
    groups: dict[str, list[Outcome]] = {}
    for o in item.failures:
        if o.blocked_by:
            groups.setdefault((titles or {}).get(id(o), o.blocked_by), []).append(o)
    return list(groups.items())


def checked_failures(item: ItemScore) -> list[Outcome]:
    """An item's failures of what its tests check (not those a failed step stopped)."""
    return [o for o in item.failures if not o.blocked_by]


def cause(o: Outcome) -> str:
    """What failed, in one line: the last line of the message (or the outcome's name)."""
    return o.message.strip().splitlines()[-1] if o.message.strip() else o.name


def failure_groups(item: ItemScore) -> list[tuple[Outcome, list[Outcome]]]:
    """An item's failures, those with one cause together: (first, the others with the same cause).

    Same cause = the same expectation failed the same way (last message line and expected value),
    e.g. twelve tests that all stop at "POST /things/ status: expected 201".
    """
    groups: dict[tuple[str, str, str | None], list[Outcome]] = {}
    for o in checked_failures(item):
        last = re.sub(
            r"\d+", "N", cause(o)
        )  # "GET /things/1 status" and "GET /things/42 status": one cause
        key = (o.check, last, o.expected) if o.expected is not None else (o.check, o.name, None)
        groups.setdefault(key, []).append(o)
    return [(group[0], group[1:]) for group in groups.values()]


def write(result: Result, out: Path) -> dict[str, Path]:
    paths = {
        "results.json": out / "results.json",
        "report.html": out / "report.html",
        "full.json": out / "full.json",
    }
    write_atomic(
        paths["results.json"], json.dumps(gradescope(result), indent=2, ensure_ascii=False)
    )
    write_atomic(paths["full.json"], json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    write_atomic(paths["report.html"], html(result))
    scripts = dict(reproducers(result).values())
    folder = out / reproduce.FOLDER
    for old in folder.glob("*.py") if folder.is_dir() else ():  # an earlier grade's, same folder
        if f"{reproduce.FOLDER}/{old.name}" not in scripts:
            old.unlink()
    for relative, text in scripts.items():
        write_atomic(out / relative, text)
    return paths


def reproducers(result: Result) -> dict[int, tuple[str, str]]:
    """id(outcome) -> (its script's path relative to report.html, the script): grader.reproduce."""
    return reproduce.files(o for item in result.items for o in item.outcomes)


def class_index(title: str, entries: list[dict[str, Any]], out: Path) -> str:
    """The class summary of a batch: histogram, pass rate per rubric item, slowest, links."""
    scores = [e["score"] for e in entries if e["score"] is not None]
    bins = [0] * 10
    for s in scores:
        bins[min(int(s // 10), 9)] += 1
    items: dict[str, list[bool]] = {}
    for e in entries:
        try:
            data = json.loads((out / e["report"]).with_name("results.json").read_text())
        except (OSError, ValueError):
            continue
        for t in data.get("tests", []):
            items.setdefault(t["name"], []).append(t["status"] == "passed")
    rates = sorted(
        ((name, sum(v) / len(v), len(v)) for name, v in items.items()), key=lambda r: r[1]
    )
    slowest = sorted((e for e in entries if e.get("seconds")), key=lambda e: -e["seconds"])[:5]
    template = _env.get_template("index.html.j2")
    return template.render(
        title=title,
        entries=entries,
        bins=bins,
        rates=rates,
        slowest=slowest,
        graded=len(scores),
        mean=(sum(scores) / len(scores)) if scores else None,
    )


def markdown(result: Result) -> str:
    """A short summary for CI job pages (e.g. GitHub's $GITHUB_STEP_SUMMARY)."""
    lines = [f"## {summary(result)}", ""]
    if result.categories:
        lines += ["| category | points |", "|---|---|"]
        lines += [f"| {c.title} | {c.points:g} / {c.max_points:g} |" for c in result.categories]
        lines.append("")
    failed = to_fix(result)
    titles = cause_titles(result)
    scripts = reproducers(result)
    unchecked = [i for i in result.items if i.not_checked]
    if unchecked:
        lines.append(
            f"Not checked in {result.runtime} mode: " + "; ".join(i.title for i in unchecked)
        )
        lines.append("")
    for why, items in not_run(result):
        lines += [not_run_line(why, items)[:1000], ""]
    shown, rest = top_causes(result)
    if shown:
        lines.append("### Where the points went")
        for n, c in enumerate(shown, 1):
            lines.append(
                f"{n}. **−{c.points:g} points: {c.title}** — {cause_line(c, result.items)}"[:600]
            )
            if c.critical:
                lines.append("   - a security hole: the rubric item it belongs to scores 0")
        if rest:
            lines.append(
                f"\n… and {len(rest)} smaller cause{'s' if len(rest) != 1 else ''} "
                f"({sum(c.points for c in rest):g} points), below."
            )
        lines.append("")
    if failed:
        lines.append("### To fix")
        for item in failed:
            lines.append(f"- **{item.title}** ({item.points:g}/{item.max_points:g})")
            if item.zeroed_by:
                lines.append(f"  - {zeroed(item)}"[:400])
            for why, blocked in blocked_groups(item, titles):
                lines.append(f"  - not checked ({len(blocked)}): {why}"[:400])
            for first, same in failure_groups(item)[:3]:
                what = cause(first)
                detail = (
                    f": expected {first.expected}, got {first.actual}" if first.expected else ""
                )
                lines.append(f"  - `{first.name}` — {what}{detail}"[:400])
                if first.exchange is not None:
                    lines.append(f"    `{first.exchange.curl()}`"[:600])
                if id(first) in scripts:
                    lines.append(
                        f"    whole sequence, next to report.html: `python {scripts[id(first)][0]}`"
                    )
                if same:
                    lines.append(f"  - … and {len(same)} more with the same cause")
    return "\n".join(lines) + "\n"


def junit(result: Result) -> str:
    """JUnit XML: one testsuite per rubric category, one testcase per rubric item."""
    from xml.etree import ElementTree as ET

    suites = ET.Element(
        "testsuites",
        name=result.assignment,
        tests=str(len(result.items)),
        failures=str(sum(not i.passed for i in result.items)),
        time=f"{result.timings.get('total', 0.0):.2f}",
    )
    if result.status is Status.NOT_GRADED:
        suite = ET.SubElement(suites, "testsuite", name="grader", tests="1", errors="1")
        case = ET.SubElement(suite, "testcase", name="grading", classname=result.assignment)
        ET.SubElement(case, "error", message=result.reason)
    for cat in result.categories:
        items = [i for i in result.items if i.category == cat.id]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=cat.title,
            tests=str(len(items)),
            failures=str(sum(not i.passed for i in items)),
        )
        for item in items:
            case = ET.SubElement(
                suite, "testcase", name=item.title, classname=f"{result.assignment}.{cat.id}"
            )
            if item.not_checked:
                ET.SubElement(case, "skipped", message=item_output(item)[:500])
            elif not item.passed:
                failure = ET.SubElement(
                    case, "failure", message=f"{item.points:g}/{item.max_points:g} points"
                )
                failure.text = item_output(item, cause_titles(result))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
