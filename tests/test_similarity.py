"""`grader similarity`: a generated class of fastapi-db-auth submissions, compared with copydetect.

The class is made from specs, not stored trees: the reference solution; the held variants
(specs/<id>/mutants/variants) as correct work written over the starter — each variant's own files
on the starter repo, since laid over the reference (as `grader demo` does) they keep most of the
reference's files byte for byte, which is copying; a copy of the reference disguised with `ast`
(names renamed, functions reordered, comments and layout gone); the untouched starter, twice.
"""

from __future__ import annotations

import ast
import dataclasses
import html.parser
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REFERENCE_DIR, ROOT, TEMPLATE_DIR

from grader import similarity, variants
from grader.batch import Journal
from grader.core import GraderFault
from grader.output import similarity as page

SPEC = ROOT / "specs" / "fastapi-db-auth"
EVIL = "</script><script>alert(1)</script>"
EVIL_NAME = "<img src=x onerror=alert(2)>"


class _Rename(ast.NodeTransformer):
    """In every function: its parameters and the names it assigns get new names."""

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        args = node.args
        names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
        names |= {
            n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        table = {name: f"renamed_{i}" for i, name in enumerate(sorted(names - {"self", "cls"}))}
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in table:
                sub.id = table[sub.id]
            elif isinstance(sub, ast.arg) and sub.arg in table:
                sub.arg = table[sub.arg]
        return node

    visit_AsyncFunctionDef = visit_FunctionDef


def disguise(source: str) -> str:
    """`source` with its functions' names renamed and its top-level functions in reverse order."""
    tree = _Rename().visit(ast.parse(source))
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    tree.body = [n for n in tree.body if n not in functions] + functions[::-1]
    return ast.unparse(tree) + "\n"


def _variant(name: str) -> variants.Mutant:
    found = [m for m in variants.load(SPEC / "mutants" / "mutants.yaml") if m.name == name]
    assert found, f"no variant {name}"
    return found[0]


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*variants.IGNORED))
    return dest


def _zip(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(src).as_posix())
    return dest


def _batch_out(out: Path, sources: dict[str, Path]) -> Path:
    """A `grader batch` output folder for `sources`: its journal, one line per student (a grade's
    first lines too: the last one per student counts)."""
    journal = Journal(out / "journal.jsonl")
    for student, source in sources.items():
        for attempt in ("not_graded", "graded"):
            journal.add(
                {
                    "key": f"{student}|{attempt}",
                    "student": student,
                    "source": str(source),
                    "ref": None,
                    "report": f"{student}/report.html",
                    "status": attempt,
                    "reason": "",
                    "score": 50.0 if attempt == "graded" else None,
                    "max_score": 100.0,
                    "seconds": 1.0,
                    "run_id": "r",
                }
            )
    return out


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> Path:
    subs = tmp_path_factory.mktemp("submissions")
    sources = {"reference": _copy(REFERENCE_DIR, subs / "reference")}
    for name in ("sync-psycopg", "reordered-extra"):
        own = dataclasses.replace(_variant(name), reference=TEMPLATE_DIR)
        sources[name] = variants.materialize(own, subs / name)
    sources["reordered-on-reference"] = variants.materialize(
        _variant("reordered-extra"), subs / "reordered-on-reference"
    )
    copycat = _copy(REFERENCE_DIR, subs / "copycat")
    for path in copycat.rglob("*.py"):
        path.write_text(disguise(path.read_text(encoding="utf-8")), encoding="utf-8")
    sources["copycat"] = copycat
    sources["starter-a"] = _copy(TEMPLATE_DIR, subs / "starter-a")
    sources["starter-b"] = _zip(TEMPLATE_DIR, subs / "starter-b.zip")
    with zipfile.ZipFile(subs / "escapes.zip", "w") as zf:
        zf.writestr("Dockerfile", "FROM python:3.11-slim\n")
        zf.writestr("../outside.py", "x = 1\n")
    sources["escapes"] = subs / "escapes.zip"
    return _batch_out(tmp_path_factory.mktemp("out"), sources)


@pytest.fixture(scope="module")
def report(klass: Path) -> similarity.Report:
    return similarity.find_similar(out=klass, assignment="fastapi-db-auth")


def _pair(report: similarity.Report, a: str, b: str) -> similarity.Pair | None:
    first, second = sorted((a, b))
    found = [p for p in report.pairs if (p.first, p.second) == (first, second)]
    return found[0] if found else None


def test_the_disguised_copy_is_found(report: similarity.Report) -> None:
    original = (REFERENCE_DIR / "app" / "crud.py").read_text(encoding="utf-8")
    assert disguise(original) != original  # the copy is not the same text
    pair = _pair(report, "reference", "copycat")
    assert pair is not None and pair.flagged
    assert min(pair.first_share, pair.second_share) > 0.75
    assert pair.score >= report.threshold + 0.15  # not found by a hair


def test_independent_correct_solutions_are_not_flagged(report: similarity.Report) -> None:
    independent = ["reference", "sync-psycopg", "reordered-extra"]
    for n, a in enumerate(independent):
        for b in independent[n + 1 :]:
            pair = _pair(report, a, b)
            assert pair is None or not pair.flagged, pair
            assert pair is None or pair.score < report.threshold - 0.05, pair
    for other in ("sync-psycopg", "reordered-extra"):  # the copy is only the reference's
        pair = _pair(report, "copycat", other)
        assert pair is None or not pair.flagged, pair


def test_a_variant_that_keeps_the_references_files_is_flagged(report: similarity.Report) -> None:
    """reordered-extra laid over the reference (as the mutants machinery makes it) keeps nine of
    its files unchanged: that is copying, and it is found."""
    pair = _pair(report, "reference", "reordered-on-reference")
    assert pair is not None and pair.flagged and pair.score > 0.8


def test_the_starters_code_never_counts(report: similarity.Report) -> None:
    assert not [p for p in report.pairs if {p.first, p.second} & {"starter-a", "starter-b"}]
    assert {"starter-a", "starter-b"} <= set(report.codes)  # compared, only nothing matched
    # the reference's files that are the starter's, byte for byte, never hold a match
    pair = _pair(report, "copycat", "reference")
    assert pair is not None and pair.second == "reference"
    code = report.codes["reference"]
    unchanged = [
        rel
        for rel, _, _ in code.files
        if (TEMPLATE_DIR / rel).read_bytes() == (REFERENCE_DIR / rel).read_bytes()
    ]
    assert len(unchanged) >= 3, unchanged
    for rel, start, end in code.files:
        if rel in unchanged:
            assert not [s for s in pair.second_spans if s[0] < end and s[1] > start], rel
    # without the starter as boilerplate, the two untouched starters would be a perfect match
    starters = [similarity.collect(TEMPLATE_DIR, name) for name in ("a", "b")]
    bare = similarity.compare(starters, [], 0.6, 100)
    assert bare and bare[0].flagged and bare[0].score > 0.99
    excused = similarity.compare(starters, [starters[0]], 0.6, 100)
    assert excused == []


def test_boilerplate_that_is_not_there_is_a_fault(klass: Path, tmp_path: Path) -> None:
    for given in ({"starter": tmp_path / "none"}, {"boilerplate": [tmp_path / "none"]}):
        with pytest.raises(GraderFault, match="not a folder"):
            similarity.find_similar(out=klass, assignment="fastapi-db-auth", **given)


def test_a_submission_that_cannot_be_prepared_is_listed_not_compared(
    report: similarity.Report,
) -> None:
    assert "escapes" not in report.codes
    assert "outside the submission" in report.skipped["escapes"]


def test_the_page_the_csv_and_the_index(klass: Path, report: similarity.Report) -> None:
    text = (klass / page.NAME).read_text(encoding="utf-8")
    assert 'id="pair-1"' in text and "copycat" in text and "<mark>" in text
    rows = (klass / page.CSV_NAME).read_text(encoding="utf-8").splitlines()
    assert rows[0] == "first,second,first_share,second_share,first_tokens,second_tokens,flagged"
    assert "copycat,reference," in (klass / page.CSV_NAME).read_text(encoding="utf-8")
    assert rows[1].endswith(",yes")  # most similar first
    assert len(rows) == len(report.pairs) + 1
    index = (klass / "index.html").read_text(encoding="utf-8")
    assert 'href="similarity.html"' in index


@pytest.mark.usefixtures("report")  # written in this process
def test_the_same_class_gives_the_same_files(klass: Path, tmp_path: Path) -> None:
    """In another process too, whose str hashes are salted otherwise."""
    again = tmp_path / "again"
    shutil.copytree(klass, again, ignore=shutil.ignore_patterns("similarity.*", "index.html"))
    done = subprocess.run(
        [sys.executable, "-m", "grader.cli", "similarity", str(again), "-a", "fastapi-db-auth"],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in (page.NAME, page.CSV_NAME):
        assert (again / name).read_bytes() == (klass / name).read_bytes(), name


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text += data


def _evil_class(root: Path) -> Path:
    """Two students, one named like markup, whose same code carries a script in a string and a
    comment, in a file named like markup."""
    code = (REFERENCE_DIR / "app" / "crud.py").read_text(encoding="utf-8")
    code += f'\n\nBANNER = "{EVIL}"  # {EVIL}\n'
    sources = {}
    for student in (EVIL_NAME, "mallory"):
        tree = _copy(TEMPLATE_DIR, root / "subs" / student)
        (tree / "app" / f"{EVIL_NAME}.py").write_text(code, encoding="utf-8")
        sources[student] = tree
    return _batch_out(root / "out", sources)


def test_student_code_never_becomes_markup(tmp_path: Path) -> None:
    out = _evil_class(tmp_path)
    found = similarity.find_similar(out=out, assignment="fastapi-db-auth")
    assert found.flagged  # the page shows the evil code side by side
    parser = _Tags()
    parser.feed((out / page.NAME).read_text(encoding="utf-8"))
    assert not [t for t, _ in parser.tags if t in {"script", "img", "iframe", "object"}]
    assert not [(t, a) for t, attrs in parser.tags for a, _ in attrs if a.startswith("on")]
    assert EVIL in parser.text and f"app/{EVIL_NAME}.py" in parser.text
    assert EVIL_NAME in parser.text  # the student's name, as text


def test_cli(tmp_path: Path) -> None:
    out = _evil_class(tmp_path)
    (out / "mallory").mkdir()  # the assignment is read from a grade's full.json
    (out / "mallory" / "full.json").write_text(json.dumps({"assignment": "fastapi-db-auth"}))
    done = subprocess.run(
        [sys.executable, "-m", "grader.cli", "similarity", str(out), "--threshold", "0.9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "2 submissions compared, 1 pairs flagged" in " ".join(done.stderr.split())
    rows = (out / page.CSV_NAME).read_text(encoding="utf-8").splitlines()
    assert rows[1].endswith(",yes") and EVIL_NAME in rows[1]
    missing = subprocess.run(
        [sys.executable, "-m", "grader.cli", "similarity", str(tmp_path / "nothing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert missing.returncode == 2 and "journal" in missing.stderr


def test_what_is_compared(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    files = {
        "app/main.py": "def main():\n    return 1\n",
        "app/__init__.py": "",
        "app/proto_pb2.py": "x = 1\n",
        "app/made.py": "# Code generated by a tool. DO NOT EDIT.\nx = 1\n",
        "alembic/env.py": "context = 1\n",
        "alembic/script.py.mako": "${upgrades}\n",
        "alembic/versions/0001_init.py": (
            '"""init\n\nRevision ID: 0001\n"""\nfrom alembic import op\n\nrevision = "0001"\n\n'
            "def upgrade():\n    op.create_table('t')\n"
        ),
        "alembic/versions/0002_auto.py": (
            "def upgrade():\n    # ### commands auto generated by Alembic - please adjust! ###\n"
            "    op.add_column('t')\n"
        ),
        ".venv/lib/site.py": "x = 1\n",
        "myenv/pyvenv.cfg": "home = /usr\n",
        "myenv/lib/site.py": "x = 1\n",
        "node_modules/x.py": "x = 1\n",
        "README.md": "# not code\n",
        "Dockerfile": "FROM python:3.11-slim\n",
    }
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    (tree / "app" / "windows.py").write_bytes(b"def f():\r\n    return 2\r\n")
    (tree / "app" / "linked.py").symlink_to("main.py")
    code = similarity.collect(tree, "x")
    assert [rel for rel, _, _ in code.files] == [
        "alembic/versions/0001_init.py",
        "app/made.py",  # a "DO NOT EDIT" of the student's own opts nothing out
        "app/main.py",
        "app/proto_pb2.py",
        "app/windows.py",
    ]
    migration = code.files[0]
    assert code.text[migration[1] : migration[2]] == "def upgrade():\n    op.create_table('t')\n"
    assert "\r" not in code.text


def test_nothing_the_student_writes_hides_their_code(tmp_path: Path) -> None:
    """A pyvenv.cfg at the root, or files padded up to the size limits, leave the code compared."""
    tree = tmp_path / "tree"
    (tree / "app").mkdir(parents=True)
    (tree / "pyvenv.cfg").write_text("home = /usr\n")
    (tree / "app" / "main.py").write_text("def main():\n    return 1\n")
    for n in range(8):  # each under MAX_FILE, together past MAX_SUBMISSION, first by name
        (tree / f"aaa_{n}.py").write_text("x = 1\n" * (similarity.MAX_FILE // 7))
    kept = [rel for rel, _, _ in similarity.collect(tree, "x").files]
    assert "app/main.py" in kept


def test_batch_similarity_runs_after_the_batch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from grader import batch
    from grader.cli import app

    calls: list[str] = []
    monkeypatch.setattr(batch, "run_batch", lambda **kwargs: calls.append("batch") or {})

    def similar(**kwargs: object) -> similarity.Report:
        calls.append(f"similarity {kwargs}")
        return similarity.Report([], {})

    monkeypatch.setattr(similarity, "find_similar", similar)
    command = ["batch", str(tmp_path), "-a", "fastapi-db-auth", "-o", str(tmp_path / "out")]
    assert CliRunner().invoke(app, command).exit_code == 0
    assert calls == ["batch"]
    assert CliRunner().invoke(app, [*command, "--similarity"]).exit_code == 0
    assert calls[1:] == [
        "batch",
        f"similarity {{'out': {tmp_path / 'out'!r}, 'assignment': 'fastapi-db-auth'}}",
    ]


def test_a_git_source_is_compared_at_the_graded_ref(tmp_path: Path) -> None:
    """The journal keeps the ref a batch graded: its tree is compared, not the default branch."""
    code = (REFERENCE_DIR / "app" / "crud.py").read_text(encoding="utf-8")
    repo = _copy(TEMPLATE_DIR, tmp_path / "repo")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "starter"]):
        subprocess.run([*git, *args], check=True)
    subprocess.run([*git, "checkout", "-qb", "work"], check=True)
    (repo / "app" / "crud.py").write_text(code, encoding="utf-8")
    subprocess.run([*git, "commit", "-qam", "work"], check=True)
    # the journal may name a tag as the ref
    subprocess.run([*git, "tag", "graded"], check=True)
    subprocess.run([*git, "checkout", "-q", "main"], check=True)
    other = _copy(TEMPLATE_DIR, tmp_path / "other")
    (other / "app" / "crud.py").write_text(code, encoding="utf-8")
    out = _batch_out(tmp_path / "out", {"git-student": repo, "other": other})
    assert not similarity.find_similar(out=out, assignment="fastapi-db-auth").flagged
    lines = (out / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    with (out / "journal.jsonl").open("w", encoding="utf-8") as fh:
        for line in lines:
            entry = json.loads(line)
            fh.write(
                json.dumps({**entry, "ref": "graded" if entry["source"] == str(repo) else None})
            )
            fh.write("\n")
    found = similarity.find_similar(out=out, assignment="fastapi-db-auth")
    assert not found.skipped
    assert [(p.first, p.second) for p in found.flagged] == [("git-student", "other")]

    # graded at a commit of a branch, which then moved on (the copy taken out again): the graded
    # commit, named in the journal's key, is compared
    subprocess.run([*git, "checkout", "-q", "work"], check=True)
    graded = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    (repo / "app" / "crud.py").write_text((TEMPLATE_DIR / "app" / "crud.py").read_text())
    subprocess.run([*git, "commit", "-qam", "nothing to see"], check=True)
    with (out / "journal.jsonl").open("a", encoding="utf-8") as fh:
        key = f"git-student|git-{graded.stdout.strip()[:16]}|fp|0"
        fh.write(
            json.dumps(
                {
                    **json.loads(lines[-1]),
                    "key": key,
                    "student": "git-student",
                    "source": str(repo),
                    "ref": "work",
                }
            )
            + "\n"
        )
    found = similarity.find_similar(out=out, assignment="fastapi-db-auth")
    assert [(p.first, p.second) for p in found.flagged] == [("git-student", "other")]


def test_a_batch_journals_folder_sources_as_absolute_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`grader similarity` reads them again, maybe from another folder than the batch's."""
    from grader.batch import discover

    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "bob.zip").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    found = {s.student: s.source for s in discover(Path("subs"))}
    assert found == {
        "ann": str(tmp_path / "subs" / "ann"),
        "bob": str(tmp_path / "subs" / "bob.zip"),
    }
