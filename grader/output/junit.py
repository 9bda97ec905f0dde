"""JUnit XML (`--junit`): one testsuite per rubric category, one testcase per rubric item."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from grader.core import Result, Status
from grader.output.views import cause_titles, item_output


def render(result: Result) -> str:
    """JUnit XML: one testsuite per rubric category, one testcase per rubric item."""
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
