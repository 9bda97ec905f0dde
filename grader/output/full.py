"""full.json: the whole Result (every outcome, request and answer); `read` gives it back."""

from __future__ import annotations

import json
from pathlib import Path

from grader.core import Result

NAME = "full.json"


def render(result: Result) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False)


def read(path: Path) -> Result:
    """The Result a `full.json` holds; OSError, ValueError (not JSON), KeyError or TypeError (not
    a result) when there is none."""
    return Result.from_dict(json.loads(path.read_text(encoding="utf-8")))
