"""Submissions made from a base tree by exact text edits, kept as specs instead of copies.

A mutants file (`specs/<id>/mutants/mutants.yaml`) names a base tree (`reference:`, relative to the
file) and lists *mutants* (one student mistake each: edits, and the rubric category it must cost)
and *variants* (correct work written differently: an `overlay` folder of whole files and/or
edits). A sample file (`specs/<id>/examples/<name>.yaml`) applies several mutants of one mutants
file to its base, one after the other, and may leave files out or write whole files:

    mutants: ../mutants/mutants.yaml
    apply: [a-mutant, another-mutant]
    exclude: [pytest.ini]          # not copied from the base (besides IGNORED)
    files: {README.md: "..."}      # written last, whole

`materialize` writes either kind into a folder. Every edit's `old` must occur exactly once in its
file at the moment it is applied, so mutants compose on one tree and a stale anchor fails loudly.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from grader.core import GraderFault

# Never copied from the base: its own tests, caches, local state.
IGNORED = (
    "tests",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".venv",
    "venv",
    ".env",
    "*.pyc",
    "*.db",
    "*.sqlite3",
)


class MutantError(GraderFault):
    """A mutants or sample file is wrong: an edit does not apply, a name or folder is missing."""


@dataclass(frozen=True)
class Edit:
    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    category: str | None  # the rubric category it must lose points in; None for variants
    kind: Literal["mutant", "variant"]
    reference: Path  # the base tree
    edits: tuple[Edit, ...] = ()
    overlay: Path | None = None  # a folder of whole files laid over the base copy


@dataclass(frozen=True)
class Sample:
    """Several mutants of one base applied together: a demo submission, made on demand."""

    name: str
    reference: Path
    mutants: tuple[Mutant, ...]
    exclude: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # (relative path, whole text), written last


def _yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MutantError(f"{path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MutantError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise MutantError(f"{path}: a mapping is expected")
    return data


def _edits(name: str, raw: Any) -> tuple[Edit, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MutantError(f"{name}: edits must be a list")
    result = []
    for n, e in enumerate(raw, 1):
        if not isinstance(e, dict) or set(e) != {"file", "old", "new"}:
            raise MutantError(f"{name}: edit {n} must have exactly file, old, new")
        if not all(isinstance(e[k], str) for k in ("file", "old", "new")):
            raise MutantError(f"{name}: edit {n}: file, old and new must be strings")
        if not e["old"]:
            raise MutantError(f"{name}: edit {n} ({e['file']}): old is empty")
        result.append(Edit(e["file"], e["old"], e["new"]))
    return tuple(result)


def load(path: Path) -> list[Mutant]:
    """Every mutant, then every variant, of the mutants file at `path`."""
    data = _yaml(path)
    if not isinstance(data.get("reference"), str):
        raise MutantError(f"{path}: `reference:` (the base tree, relative to the file) is missing")
    reference = (path.parent / data["reference"]).resolve()
    if not reference.is_dir():
        raise MutantError(f"{path}: reference {reference} is not a folder")
    result: list[Mutant] = []
    for kind, key in (("mutant", "mutants"), ("variant", "variants")):
        for entry in data.get(key) or []:
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                raise MutantError(f"{path}: a {kind} without a name: {entry!r}")
            unknown = set(entry) - {"name", "bug", "category", "edits", "overlay"}
            if unknown:
                raise MutantError(f"{name}: unknown fields {sorted(unknown)}")
            category = entry.get("category")
            if kind == "mutant" and not category:
                raise MutantError(f"{name}: a mutant needs the category its bug belongs to")
            if kind == "variant" and category:
                raise MutantError(f"{name}: a variant is correct and has no category")
            overlay = path.parent / entry["overlay"] if entry.get("overlay") else None
            if overlay is not None and not overlay.is_dir():
                raise MutantError(f"{name}: overlay {overlay} is not a folder")
            edits = _edits(name, entry.get("edits"))
            if kind == "mutant" and not edits and overlay is None:
                raise MutantError(f"{name}: a mutant needs edits or an overlay")
            result.append(
                Mutant(
                    name=name,
                    bug=str(entry.get("bug", "")),
                    category=category,
                    kind=kind,  # type: ignore[arg-type]
                    edits=edits,
                    overlay=overlay,
                    reference=reference,
                )
            )
    names = [m.name for m in result]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise MutantError(f"{path}: duplicate names {dupes}")
    return result


def load_sample(path: Path) -> Sample:
    """The sample file at `path`; its name is the file's stem."""
    data = _yaml(path)
    unknown = set(data) - {"mutants", "apply", "exclude", "files"}
    if unknown:
        raise MutantError(f"{path}: unknown fields {sorted(unknown)}")
    if not isinstance(data.get("mutants"), str):
        raise MutantError(f"{path}: `mutants:` (the mutants file, relative to this one) is missing")
    known = {m.name: m for m in load(path.parent / data["mutants"])}
    names = data.get("apply")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise MutantError(f"{path}: `apply:` must list the mutants to apply")
    missing = [n for n in names if n not in known]
    if missing:
        raise MutantError(f"{path}: no mutants named {missing} in {data['mutants']}")
    exclude = data.get("exclude") or []
    files = data.get("files") or {}
    if not isinstance(exclude, list) or not all(isinstance(p, str) for p in exclude):
        raise MutantError(f"{path}: `exclude:` must be a list of file name patterns")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise MutantError(f"{path}: `files:` must map relative paths to their text")
    chosen = tuple(known[n] for n in names)
    return Sample(
        name=path.stem,
        reference=chosen[0].reference,
        mutants=chosen,
        exclude=tuple(exclude),
        files=tuple(files.items()),
    )


def samples(folder: Path) -> list[Sample]:
    """Every sample file (`*.yaml`) of `folder`, by name; none when there is no such folder."""
    return [load_sample(p) for p in sorted(folder.glob("*.yaml"))]


def apply_edit(text: str, edit: Edit, where: str) -> str:
    count = text.count(edit.old)
    if count != 1:
        found = "not found" if count == 0 else f"found {count} times"
        raise MutantError(
            f"{where}: the text to replace is {found} in {edit.file} "
            f"(it must occur exactly once):\n{edit.old}"
        )
    return text.replace(edit.old, edit.new, 1)


def materialize(made: Mutant | Sample, dest: Path) -> Path:
    """Copy the base to `dest` (without IGNORED, nor a sample's `exclude`), then for each mutant in
    turn lay its overlay and apply its edits; a sample's `files` are written last."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise MutantError(f"{dest} exists and is not empty")
    mutants = made.mutants if isinstance(made, Sample) else (made,)
    exclude = made.exclude if isinstance(made, Sample) else ()
    shutil.copytree(
        made.reference, dest, ignore=shutil.ignore_patterns(*IGNORED, *exclude), dirs_exist_ok=True
    )
    for mutant in mutants:
        if mutant.reference != made.reference:
            raise MutantError(f"{made.name}: {mutant.name} is made from another base")
        if mutant.overlay is not None:
            shutil.copytree(
                mutant.overlay,
                dest,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                dirs_exist_ok=True,
            )
        where = mutant.name if mutant is made else f"{made.name}: {mutant.name}"
        for n, edit in enumerate(mutant.edits, 1):
            target = dest / edit.file
            if not target.is_file():
                raise MutantError(f"{where}, edit {n}: {edit.file} does not exist")
            text = apply_edit(target.read_text(encoding="utf-8"), edit, f"{where}, edit {n}")
            target.write_text(text, encoding="utf-8")
    if isinstance(made, Sample):
        for rel, text in made.files:
            target = dest / rel
            if not target.resolve().is_relative_to(dest.resolve()):
                raise MutantError(f"{made.name}: {rel} is outside the sample")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return dest


def changed_files(made: Mutant | Sample, dest: Path) -> list[str]:
    """Files of a materialized copy that differ from (or are not in) the base."""
    changed = []
    for path in sorted(p for p in dest.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = path.relative_to(dest)
        original = made.reference / rel
        if not original.is_file() or original.read_bytes() != path.read_bytes():
            changed.append(str(rel))
    return changed
