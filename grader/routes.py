"""The operations of an OpenAPI document and the one a request reaches ("POST /things/17" reaches
"POST /things/{thing_id}"): what the checks credit (checks/exercised.py) and what root causes
group failures by (causes.py). Reads only the document's `paths`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class Operation:
    label: str  # "POST /things/", as Schemathesis names it
    method: str  # upper case
    path: str  # the template: "/things/{thing_id}"
    pointer: str  # JSON pointer of the operation object in the spec
    pattern: re.Pattern[str]  # the template, one group per path parameter
    names: tuple[str, ...]  # the path parameters, in order
    literal: int  # characters outside {…}: a concrete path wins over a template (OpenAPI)


def escape(segment: str) -> str:
    """A JSON pointer segment."""
    return segment.replace("~", "~0").replace("/", "~1")


class Routes:
    """The operations of a document's `paths`, and which one a request reaches."""

    def __init__(self, paths: Mapping[str, Any]) -> None:
        self.operations: list[Operation] = []
        for path, item in paths.items():
            for method in METHODS:
                if isinstance(item, dict) and method in item:
                    pieces = re.split(r"(\{[^}/]+\})", path)
                    params = [p for p in pieces if p.startswith("{")]
                    regex = "".join("([^/]+)" if p in params else re.escape(p) for p in pieces)
                    self.operations.append(
                        Operation(
                            label=f"{method.upper()} {path}",
                            method=method.upper(),
                            path=path,
                            pointer=f"/paths/{escape(path)}/{method}",
                            pattern=re.compile(regex),
                            names=tuple(p[1:-1] for p in params),
                            literal=len(path) - sum(len(p) for p in params),
                        )
                    )

    @classmethod
    def read(cls, spec: Path) -> Routes:
        """The routes of the spec file; none when it cannot be read (a report is still written)."""
        try:
            document = yaml.safe_load(spec.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return cls({})
        paths = document.get("paths") if isinstance(document, dict) else None
        return cls(paths if isinstance(paths, dict) else {})

    def operation(self, method: str, url: str) -> Operation | None:
        """The spec operation a request reaches: its method, and the most concrete template that
        matches its path (`/things/mine` before `/things/{thing_id}`)."""
        path = urlsplit(url).path or "/"
        found = [
            op
            for op in self.operations
            if op.method == method.upper() and op.pattern.fullmatch(path)
        ]
        return max(found, key=lambda op: op.literal) if found else None

    def template(self, path: str) -> str:
        """The most concrete template of a concrete path, any method (`/people/17/things/` →
        `/people/{person_id}/things/`); else the path itself."""
        found = [op for op in self.operations if op.pattern.fullmatch(path)]
        return max(found, key=lambda op: op.literal).path if found else path

    def at_path(self, path: str) -> set[str]:
        """The operations served at exactly `path` (the health path: given, not earned)."""
        return {op.label for op in self.operations if op.path == path}
