"""Every output format, byte for byte, for real results (full.json files of real grades, cut down,
in tests/golden/results/): what the writers produced before they were split into one module per
format (tests/golden/expected/). A change to any format shows here as a diff; when it is meant,
regenerate the expected files and review the diff."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from grader.console import SafeConsole
from grader.core import Result
from grader.output import full, index, junit, markdown, terminal, write

GOLDEN = Path(__file__).parent / "golden"
RESULTS = sorted((GOLDEN / "results").glob("*.json"))


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("path", RESULTS, ids=[p.stem for p in RESULTS])
def test_every_format_is_what_it_was(path: Path, tmp_path: Path) -> None:
    result = full.read(path)
    expected = GOLDEN / "expected" / path.stem
    out = tmp_path / path.stem
    write(result, out)
    (out / "summary.md").write_text(markdown.render(result))
    (out / "junit.xml").write_text(junit.render(result))
    for kind, show in (("grade", terminal.grade), ("check", terminal.check)):
        buf = io.StringIO()
        show(
            SafeConsole(file=buf, width=100, force_terminal=True, color_system="standard"),
            result,
            Path("OUT"),
        )
        (out / f"terminal-{kind}.txt").write_text(buf.getvalue())
    written = _files(out)
    assert written.pop("full.json") == path.read_bytes()  # full.json gives back what it read
    assert written == _files(expected)


def test_class_index_is_what_it_was(tmp_path: Path) -> None:
    entries = json.loads((GOLDEN / "expected" / "entries.json").read_text())
    for path in RESULTS:
        (tmp_path / path.stem).mkdir()
        shutil.copy(path, tmp_path / path.stem / "full.json")
    assert (
        index.render("Golden class", entries, tmp_path)
        == (GOLDEN / "expected" / "index.html").read_text()
    )


def test_the_class_index_reads_a_report_again_only_once_it_changed(tmp_path: Path) -> None:
    entries = json.loads((GOLDEN / "expected" / "entries.json").read_text())
    for path in RESULTS:
        (tmp_path / path.stem).mkdir()
        shutil.copy(path, tmp_path / path.stem / "full.json")
    cache: dict[Path, index.Seen] = {}
    first = index.render("Golden class", entries, tmp_path, cache)
    assert first == (GOLDEN / "expected" / "index.html").read_text()
    assert index.render("Golden class", entries, tmp_path, cache) == first
    changed = (tmp_path / entries[0]["report"]).with_name("full.json")
    data = json.loads(changed.read_text())
    for item in data["items"]:
        item["title"] += " (renamed)"
    changed.write_text(json.dumps(data))
    assert index.render("Golden class", entries, tmp_path, cache) == index.render(
        "Golden class", entries, tmp_path
    ), "the changed report is read again"
    assert index.render("Golden class", entries, tmp_path, cache) != first


@pytest.mark.parametrize("path", RESULTS, ids=[p.stem for p in RESULTS])
def test_a_result_read_back_is_the_result(path: Path) -> None:
    """Result.from_dict inverts to_dict: every nested type, enum and link comes back."""
    data = json.loads(path.read_text())
    result = Result.from_dict(data)
    assert result.to_dict() == data
    # a cause's outcomes are the items' own objects, not copies
    mine = {id(o) for item in result.items for o in item.outcomes}
    assert all(id(o) in mine for c in result.causes for o in c.outcomes)
