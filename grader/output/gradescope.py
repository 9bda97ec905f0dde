"""results.json: Gradescope's autograder format (phase timings in `extra_data`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from grader.core import Result, Status
from grader.output.views import cause_titles, item_output, late_line, summary

NAME = "results.json"


def results(result: Result) -> dict[str, Any]:
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
    if result.late is not None:  # its own line, never folded into an item's points
        data["extra_data"]["late"] = asdict(result.late)
        # 0 of 0, not a negative score (Gradescope documents none): the top-level score, which
        # Gradescope takes over the tests' sum, is the one with the penalty taken off
        penalty = f": −{result.late.penalty:g} points" if result.late.penalty else ": none"
        data["tests"].append(
            {
                "name": f"Late penalty{penalty}",
                "score": 0,
                "max_score": 0,
                "status": "failed" if result.late.penalty else "passed",
                "output": late_line(result),
                "tags": ["late"],
                "visibility": "visible",
            }
        )
    if result.status is not Status.NOT_GRADED:
        data["score"] = result.score  # never a score for a run the grader itself could not finish
    return data


def render(result: Result) -> str:
    return json.dumps(results(result), indent=2, ensure_ascii=False)
