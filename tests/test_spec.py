"""The `fastapi-db-auth` assignment folder is consistent: a valid OpenAPI 3.1 spec that the reference
solution declares in full, an assignment.yaml that loads, and a contract suite whose tests and rubric
items name each other."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader import assignment as assignment_mod
from grader.checks.contract import ContractPlugin
from grader.core import GraderFault, Target

ROOT = Path(__file__).resolve().parent.parent
NAME = "fastapi-db-auth"
SPEC_DIR = ROOT / "specs" / NAME
SPEC_PATH = SPEC_DIR / "openapi.yaml"
REFERENCE_DIR = ROOT / "reference_solution" / NAME
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def operations(document: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(METHOD, path) -> the status codes its responses declare."""
    found: dict[tuple[str, str], set[str]] = {}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in METHODS:
                found[(method.upper(), path)] = {
                    str(code) for code in operation.get("responses", {})
                }
    return found


def node_ref(ref: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in ref.lstrip("#/").split("/")]


def deref(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node_ref(node["$ref"]):
            target = target[part]
        node = target
    return node


# the spec itself ----------------------------------------------------------------------------------
def test_spec_is_openapi_3_1(spec: dict[str, Any]) -> None:
    assert str(spec.get("openapi", "")).startswith("3.1"), spec.get("openapi")
    try:
        from openapi_spec_validator import validate
    except ImportError:  # pragma: no cover - the validator is a test dependency
        assert isinstance(spec.get("paths"), dict) and spec["paths"]
        assert isinstance(spec.get("components", {}).get("schemas"), dict)
        for (method, path), codes in operations(spec).items():
            assert codes, f"{method} {path} declares no responses"
    else:
        validate(spec)


def test_schemathesis_loads_the_spec() -> None:
    import schemathesis

    schema = schemathesis.openapi.from_path(str(SPEC_PATH))
    loaded = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert loaded == set(operations(yaml.safe_load(SPEC_PATH.read_text()))), loaded


def test_spec_covers_the_contract_table(spec: dict[str, Any]) -> None:
    """Every row of the assignment's table, with every status code it names (plus FastAPI's own 400
    for a JSON body that is not UTF-8 on the two protected routes with a body; POST /users/ has 400)."""
    table = {
        ("GET", "/health"): {"200", "503"},
        ("POST", "/users/"): {"201", "400", "422"},
        ("GET", "/users/"): {"200", "422"},
        ("GET", "/users/{user_id}"): {"200", "404", "422"},
        ("POST", "/token"): {"200", "401", "422"},
        ("GET", "/users/me"): {"200", "401"},
        ("GET", "/users/me/basic"): {"200", "401"},
        ("GET", "/users/me/items/"): {"200", "401"},
        ("POST", "/users/{user_id}/items/"): {"201", "400", "401", "403", "404", "422"},
        ("GET", "/items/"): {"200", "422"},
        ("GET", "/items/{item_id}"): {"200", "404", "422"},
        ("PATCH", "/items/{item_id}"): {"200", "400", "401", "403", "404", "422"},
        ("DELETE", "/items/{item_id}"): {"204", "401", "403", "404", "422"},
    }
    assert operations(spec) == table


def test_spec_401s_declare_www_authenticate(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in METHODS or "401" not in operation["responses"]:
                continue
            response = deref(spec, operation["responses"]["401"])
            header = deref(spec, response.get("headers", {}).get("WWW-Authenticate"))
            assert header and header.get("required"), (
                f"{method.upper()} {path}: 401 without WWW-Authenticate"
            )
            scheme = "Basic" if path == "/users/me/basic" else "Bearer"
            assert header["schema"]["pattern"].lower().startswith(f"^[{scheme[0].lower()}"), (
                path,
                header,
            )


def test_spec_delete_204_has_no_content(spec: dict[str, Any]) -> None:
    assert "content" not in spec["paths"]["/items/{item_id}"]["delete"]["responses"]["204"]


def test_spec_links_name_existing_operations(spec: dict[str, Any]) -> None:
    ids = {
        op["operationId"]
        for item in spec["paths"].values()
        for m, op in item.items()
        if m in METHODS
    }
    links = [
        (link["operationId"], set(link.get("parameters", {})))
        for item in spec["paths"].values()
        for m, op in item.items()
        if m in METHODS
        for response in op["responses"].values()
        for link in deref(spec, response).get("links", {}).values()
    ]
    assert {"get_user", "get_item", "update_item", "delete_item"} <= {op for op, _ in links}
    for op, params in links:
        assert op in ids, op
        assert params, op


# the reference declares everything the spec does ------------------------------------------------
@pytest.fixture(scope="module")
def reference_openapi() -> dict[str, Any]:
    main = REFERENCE_DIR / "app" / "main.py"
    if not main.is_file():
        pytest.skip(f"{main} does not exist yet")
    # A fresh interpreter: the reference and the student template both name their package `app`.
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "from app.main import app; print(json.dumps(app.openapi()))"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://user:password@127.0.0.1:1/unused",  # never connected to
        "SECRET_KEY": "spec-test-secret-key-0123456789abcdef",
        "ACCESS_TOKEN_EXPIRE_MINUTES": "30",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REFERENCE_DIR)],
        cwd=REFERENCE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"could not import the reference app:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_reference_declares_every_operation_and_status(
    spec: dict[str, Any], reference_openapi: dict[str, Any]
) -> None:
    ours, theirs = operations(spec), operations(reference_openapi)
    missing = []
    for key, codes in sorted(ours.items()):
        if key not in theirs:
            missing.append(f"{key[0]} {key[1]}: not in the reference's /openapi.json")
            continue
        for code in sorted(codes - theirs[key]):
            missing.append(f"{key[0]} {key[1]}: status {code} not declared by the reference")
    assert not missing, "\n".join(missing)


# assignment.yaml and the contract suite -----------------------------------------------------------
def test_assignment_loads() -> None:
    a = assignment_mod.load(NAME)
    assert a.id == NAME
    assert a.spec_path == SPEC_PATH.resolve()
    assert a.spec_path.is_file() and a.tests_dir.is_dir()
    assert sum(i.points for i in a.items) == pytest.approx(100)
    assert a.services.postgres
    assert {"DATABASE_URL", "SECRET_KEY", "ACCESS_TOKEN_EXPIRE_MINUTES"} <= set(a.runtime.env)
    assert {i.visibility for i in a.items} >= {"visible", "hidden"}


class _Collector:
    def __init__(self) -> None:
        self.items: list[tuple[str, str | None, str]] = []  # nodeid, rubric item, docstring

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("rubric")
            rubric = str(marker.args[0]) if marker and marker.args else None
            function = getattr(item, "function", None)
            doc = (function.__doc__ or "").strip() if function else ""
            self.items.append((item.nodeid, rubric, doc))


@pytest.fixture(scope="module")
def collected() -> list[tuple[str, str | None, str]]:
    a = assignment_mod.load(NAME)
    collector = _Collector()
    code = pytest.main(
        [
            str(a.tests_dir),
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
            "-o",
            "addopts=",
            "--rootdir",
            str(a.tests_dir),
            "-p",
            "no:randomly",
        ],
        plugins=[ContractPlugin(Target("http://127.0.0.1:9")), collector],
    )
    assert code == pytest.ExitCode.OK, f"collecting {a.tests_dir} failed (exit {int(code)})"
    return collector.items


def test_every_test_names_an_existing_contract_item(
    collected: list[tuple[str, str | None, str]],
) -> None:
    a = assignment_mod.load(NAME)
    contract_items = {i.id for i in a.items if i.check == "contract"}
    bad = [
        f"{nodeid}: rubric {rubric!r}"
        for nodeid, rubric, _ in collected
        if rubric not in contract_items
    ]
    assert not bad, "tests naming no (or an unknown) contract item:\n" + "\n".join(bad)


def test_every_contract_item_has_a_test(collected: list[tuple[str, str | None, str]]) -> None:
    a = assignment_mod.load(NAME)
    named = {rubric for _, rubric, _ in collected}
    orphans = [i.id for i in a.items if i.check == "contract" and i.id not in named]
    assert not orphans, f"contract items no test names: {orphans}"


def test_every_test_explains_itself(collected: list[tuple[str, str | None, str]]) -> None:
    """The docstring is what a student reads when the test fails."""
    bare = [nodeid for nodeid, _, doc in collected if not doc]
    assert not bare, "tests without a docstring:\n" + "\n".join(bare)


def test_fuzzing_without_contract_items_fails_at_load(tmp_path: Path) -> None:
    """Fuzzing credits only operations a passing contract test showed working: a rubric with a
    schemathesis item and no contract item is refused when loaded, before any build."""
    raw = yaml.safe_load((SPEC_PATH.parent / "assignment.yaml").read_text())
    raw["items"] = [i for i in raw["items"] if i["check"] != "contract"]
    raw["total"] = sum(i["points"] for i in raw["items"])
    folder = tmp_path / "no-contract"
    shutil.copytree(SPEC_PATH.parent, folder, ignore=shutil.ignore_patterns("examples", "tests"))
    (folder / "assignment.yaml").write_text(yaml.safe_dump({**raw, "reference": None}))
    with pytest.raises(GraderFault, match="needs a contract item"):
        assignment_mod.load(folder)


def test_fingerprint_follows_what_grades_only(tmp_path: Path) -> None:
    """A changed test or rubric is a new assignment version (stale grades); a changed sample or
    benchmark mutant is not (it grades nothing)."""
    folder = tmp_path / "spec"
    shutil.copytree(assignment_mod.load("fastapi-basics").dir, folder)
    before = assignment_mod.load(folder).fingerprint
    (folder / "mutants").mkdir(exist_ok=True)
    (folder / "mutants" / "extra.yaml").write_text("mutants: []\n")
    (folder / "examples").mkdir(exist_ok=True)
    (folder / "examples" / "sample.yaml").write_text("base: reference\n")
    assert assignment_mod.load(folder).fingerprint == before
    test = next((folder / "tests").glob("test_*.py"))
    test.write_text(test.read_text() + "\n# changed\n")
    assert assignment_mod.load(folder).fingerprint != before


def test_fingerprint_follows_the_reference_solution(tmp_path: Path) -> None:
    """The differential check compares with the reference: a changed reference is a new version
    (stale grades, `--regrade`); a cache beside its code is not."""
    spec = assignment_mod.load("fastapi-basics")
    folder, reference = tmp_path / "spec", tmp_path / "reference"
    shutil.copytree(spec.dir, folder)
    assert spec.reference_dir is not None
    shutil.copytree(spec.reference_dir, reference)
    raw = yaml.safe_load((folder / "assignment.yaml").read_text())
    (folder / "assignment.yaml").write_text(yaml.safe_dump({**raw, "reference": str(reference)}))
    before = assignment_mod.load(folder).fingerprint
    (reference / "app" / "__pycache__").mkdir(exist_ok=True)
    (reference / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    assert assignment_mod.load(folder).fingerprint == before
    main = reference / "app" / "main.py"
    main.write_text(main.read_text() + "\n# changed\n")
    assert assignment_mod.load(folder).fingerprint != before
