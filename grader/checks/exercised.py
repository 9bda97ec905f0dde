"""Which of the spec's operations an app really implements, so that checks which found nothing
(fuzzing, the differential comparison) give credit only for behaviour that was exercised.

An operation ("POST /things/", a path template of the assignment's `openapi.yaml` and a method)
counts as implemented only when a contract test that passed (not failed, not blocked by a step,
not skipped) sent it a valid request (its parameters and JSON or form body as the operation
documents them) and got a success status the spec documents for it (a 2xx listed under its
`responses`) with a body that the documented schema of that response accepts (a catch-all app's
`200 {}` is no success). A success alone proves nothing either: an app with no logic can answer
each operation a static schema-valid body, so a success counts only inside a test whose checks of
the behaviour passed. Fuzzing adds no evidence for that reason: it judges answers by status and
schema. Operations at the runtime's health path are "given": the `start` item scores them, and a
starter repo ships them, so they neither earn nor block robustness credit.

Everything comes from the spec; schemas are checked with `jsonschema`, the spec's `$ref`s resolved
in place (OpenAPI 3.0's `nullable` rewritten to JSON Schema first).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml
from jsonschema import Draft4Validator, Draft202012Validator
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT4, DRAFT202012

from grader.core import CUT, Exchange, GraderFault, Outcome
from grader.routes import Operation, Routes, escape

_BASE = "urn:api-grader:spec"  # the spec's URI for `$ref` resolution; never fetched


def not_credited(operations: Iterable[str]) -> str:
    """The report's words for operations whose clean results earn nothing."""
    names = ", ".join(sorted(set(operations)))
    return f"not credited: {names} never succeeded in a contract test that passed"


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) and value else value)
    return None


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema (3.1 dropped the keyword)."""
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    if node.pop("nullable", False) is not True:
        return node
    if isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        if isinstance(node.get("enum"), list):
            node["enum"] = [*node["enum"], None]
        return node
    return {"anyOf": [node, {"type": "null"}]}


class Api(Routes):
    """An OpenAPI document: its operations, and what counts as a success of one of them."""

    def __init__(self, document: dict[str, Any]) -> None:
        legacy = str(document.get("openapi", "3.1")).startswith("3.0")
        self.document: dict[str, Any] = _nullable(document) if legacy else document
        self._validator: type[Validator] = Draft4Validator if legacy else Draft202012Validator
        resource = Resource.from_contents(
            self.document, default_specification=DRAFT4 if legacy else DRAFT202012
        )
        self._registry: Registry[Any] = Registry().with_resource(_BASE, resource)
        self._validators: dict[str, Validator] = {}
        super().__init__(self.document.get("paths") or {})

    @classmethod
    def load(cls, path: Path) -> Api:
        return _load(path.resolve(), path.stat().st_mtime_ns)

    # --- the document -----------------------------------------------------------------------

    def _at(self, pointer: str) -> Any:
        node: Any = self.document
        for raw in pointer.split("/")[1:]:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list):
                node = node[int(key)]
            elif isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, dict) and key.isdigit() and int(key) in node:
                node = node[int(key)]  # YAML read an unquoted status code as a number
            else:
                raise GraderFault(f"the spec has nothing at #{pointer}")
        return node

    def _follow(self, pointer: str) -> str:
        """The pointer of the object at `pointer`, local `$ref`s followed (parameters, responses…)."""
        for _ in range(20):
            node = self._at(pointer)
            ref = node.get("$ref") if isinstance(node, dict) else None
            if not isinstance(ref, str):
                return pointer
            if not ref.startswith("#/"):
                raise GraderFault(f"the spec's {ref!r} is not a local reference")
            pointer = unquote(ref[1:])
        raise GraderFault(f"the spec's references loop at #{pointer}")

    def _valid(self, schema_pointer: str, value: Any) -> bool:
        validator = self._validators.get(schema_pointer)
        if validator is None:
            ref = f"{_BASE}#{quote(schema_pointer, safe='/~')}"
            validator = self._validator({"$ref": ref}, registry=self._registry)
            self._validators[schema_pointer] = validator
        try:
            return bool(validator.is_valid(value))
        except Unresolvable as exc:
            raise GraderFault(
                f"the spec's schema at #{schema_pointer} has a broken $ref: {exc}"
            ) from exc

    # --- success ----------------------------------------------------------------------------

    def success(
        self, op: Operation, status: int | None, content_type: str | None, body: str | bytes | None
    ) -> bool:
        """A success status the spec documents for `op`, with a body its schema accepts."""
        if status is None or not 200 <= status < 300:
            return False
        responses = self._at(op.pointer).get("responses") or {}
        keys = [k for k in responses if str(k) == str(status)] or [
            k for k in responses if str(k).upper() == f"{str(status)[0]}XX"
        ]
        if not keys:
            return False
        pointer = self._follow(f"{op.pointer}/responses/{escape(str(keys[0]))}")
        content = self._at(pointer).get("content")
        if not content:  # nothing documented to check the body against (a 204)
            return True
        media = _media(content_type)
        ranges = (media, f"{media.split('/')[0]}/*", "*/*")  # the most specific entry first
        documented = next((m for r in ranges for m in content if _media(m) == r), None)
        if documented is None:
            return False
        media_pointer = self._follow(f"{pointer}/content/{escape(documented)}")
        if "schema" not in self._at(media_pointer) or not _is_json(media):
            return True  # no schema, or a text body: the status and media type are the evidence
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
        if CUT in text:
            return False  # cut for the report: unknowable, so no evidence
        try:
            value = json.loads(text)
        except ValueError:
            return False
        return self._valid(f"{media_pointer}/schema", value)

    def valid_request(
        self, op: Operation, url: str, headers: Mapping[str, str], body: str | None
    ) -> bool:
        """The request fits `op`'s parameters (path, query, header, cookie) and its JSON or form
        body. Security (credentials) is not judged: an app that answers without them still did."""
        parts = urlsplit(url)
        matched = op.pattern.fullmatch(parts.path or "/")
        if matched is None:
            return False
        path_values = {n: unquote(v) for n, v in zip(op.names, matched.groups(), strict=True)}
        query = parse_qs(parts.query, keep_blank_values=True)
        cookies: dict[str, str] = {}
        try:
            cookie = SimpleCookie(_header(headers, "cookie") or "")
            cookies = {name: morsel.value for name, morsel in cookie.items()}
        except CookieError:
            pass
        for pointer in self._parameters(op):
            param = self._at(pointer)
            name, where = str(param.get("name", "")), param.get("in")
            values: list[str] | None
            if where == "path":
                values = [path_values[name]] if name in path_values else None
            elif where == "query":
                values = query.get(name)
            elif where == "header":
                found = _header(headers, name.lower())
                values = None if found is None else [found]
            elif where == "cookie":
                values = [cookies[name]] if name in cookies else None
            else:
                continue
            if values is None:
                if param.get("required") or where == "path":
                    return False
                continue
            if "schema" in param and not self._fits(f"{pointer}/schema", values):
                return False
        return self._body_fits(op, headers, body)

    def _parameters(self, op: Operation) -> list[str]:
        """Pointers of `op`'s parameters: the path item's, overridden by the operation's own."""
        path_item = op.pointer.rsplit("/", 1)[0]
        found: dict[tuple[str, str], str] = {}
        for owner in (path_item, op.pointer):
            for i, _ in enumerate(self._at(owner).get("parameters") or []):
                pointer = self._follow(f"{owner}/parameters/{i}")
                param = self._at(pointer)
                found[(str(param.get("name")), str(param.get("in")))] = pointer
        return list(found.values())

    def _fits(self, schema_pointer: str, values: list[str]) -> bool:
        """Parameters travel as text: "5" is valid for an integer. Any reading the schema takes."""
        schema = self._at(self._follow(schema_pointer))
        if isinstance(schema, dict) and schema.get("type") == "array":
            candidates: list[Any] = [values, *([_typed(v)[i] for v in values] for i in range(3))]
        else:
            candidates = [values[0], *_typed(values[0])]
        return any(self._valid(schema_pointer, c) for c in candidates)

    def _body_fits(self, op: Operation, headers: Mapping[str, str], body: str | None) -> bool:
        operation = self._at(op.pointer)
        if "requestBody" not in operation:
            return True
        pointer = self._follow(f"{op.pointer}/requestBody")
        request_body = self._at(pointer)
        if not body:
            return not request_body.get("required", False)
        if CUT in body:
            return False
        content = request_body.get("content") or {}
        media = _media(_header(headers, "content-type"))
        documented = next((m for m in content if _media(m) == media), None)
        if documented is None:
            return False
        media_pointer = self._follow(f"{pointer}/content/{escape(documented)}")
        if "schema" not in self._at(media_pointer):
            return True
        schema_pointer = f"{media_pointer}/schema"
        if _is_json(media):
            try:
                return self._valid(schema_pointer, json.loads(body))
            except ValueError:
                return False
        if media == "application/x-www-form-urlencoded":
            # fields travel as text, like parameters: each takes the reading its property accepts
            schema = self._follow(schema_pointer)
            properties = self._at(schema).get("properties") or {}
            form: dict[str, Any] = {}
            for name, values in parse_qs(body, keep_blank_values=True).items():
                text, prop = values[0], f"{schema}/properties/{escape(name)}"
                readings = [text, *_typed(text)] if name in properties else []
                form[name] = next((r for r in readings if self._valid(prop, r)), text)
            return self._valid(schema_pointer, form)
        return True  # multipart and other bodies: their media type is the evidence

    def succeeded(self, exchanges: Iterable[Exchange]) -> set[str]:
        """The operations that some exchange shows answering a valid request with a documented
        success (one piece of evidence; `implemented` says which exchanges count)."""
        found: set[str] = set()
        for ex in exchanges:
            op = self.operation(ex.method, ex.url)
            if (
                op is not None
                and op.label not in found
                and self.success(
                    op, ex.status, _header(ex.response_headers, "content-type"), ex.response_body
                )
                and self.valid_request(op, ex.url, ex.request_headers, ex.request_body)
            ):
                found.add(op.label)
        return found

    def implemented(
        self, traces: Mapping[str, list[Exchange]], outcomes: Iterable[Outcome]
    ) -> set[str]:
        """The operations that succeeded in the contract tests that passed: `traces` maps a test's
        name to its exchanges, `outcomes` are the tests' results (named alike)."""
        results = list(outcomes)
        # a name two tests share (in two files) counts only if every one of them passed
        doubtful = {o.name for o in results if not verified(o)}
        return self.succeeded(
            ex for o in results if o.name not in doubtful for ex in traces.get(o.name, ())
        )

    def labels(self, exchanges: Iterable[Exchange]) -> set[str]:
        """The spec operations these requests reached (requests to no spec operation left out)."""
        return {op.label for ex in exchanges if (op := self.operation(ex.method, ex.url))}


def verified(outcome: Outcome) -> bool:
    """A contract test that checked what it set out to and passed: not failed, not blocked by a
    step before its check, not skipped (a skipped test counts as passed but verified nothing)."""
    return outcome.passed and not outcome.skipped and outcome.blocked_by is None


def _typed(text: str) -> list[Any]:
    """`text` read as an integer, a number and a boolean (itself where it is none of them)."""
    readings: list[Any] = []
    for read in (int, float):
        try:
            readings.append(read(text))
        except ValueError:
            readings.append(text)
    readings.append({"true": True, "false": False}.get(text.lower(), text))
    return readings


@functools.lru_cache(maxsize=8)
def _load(path: Path, mtime: int) -> Api:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GraderFault(f"cannot read the spec {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise GraderFault(f"the spec {path} is not an OpenAPI document")
    return Api(document)


@dataclass(frozen=True)
class Credit:
    """Which operations earn credit: those implemented (see the module's doc); those `given`
    (the health path's) neither earn nor block it."""

    implemented: frozenset[str]
    given: frozenset[str] = frozenset()

    @classmethod
    def of(cls, implemented: Collection[str], given: Collection[str] = ()) -> Credit:
        return cls(frozenset(implemented), frozenset(given))

    def missing(self, operations: Iterable[str]) -> list[str]:
        """The operations that never succeeded, given ones left out."""
        return sorted(set(operations) - self.implemented - self.given)

    def at_stake(self, operations: Iterable[str]) -> bool:
        """Something to credit: at least one operation that is not given."""
        return bool(set(operations) - self.given)
