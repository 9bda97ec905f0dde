"""The mutation benchmark's data (specs/<id>/mutants/, made by grader/variants.py): every mutant and
variant materializes from the reference, every edit applies exactly once, and the result is valid
Python; every sample (specs/<id>/examples/*.yaml) applies its mutants together (fast: nothing runs).
Then the mutants that fake the database's evidence (a hash that only looks like argon2, a revision
inserted by hand beside create_all) are served on a local Postgres and lose their rubric item, while
the correct variants keep every contract item.
"""

from __future__ import annotations

import py_compile
from pathlib import Path

import pytest
from conftest import benchmark_mutants

from grader import assignment as assignments
from grader import localpg, variants

ASSIGNMENT = "fastapi-db-auth"


mutants_mod = benchmark_mutants()
ALL = mutants_mod.load(ASSIGNMENT)
MUTANTS = [m for m in ALL if m.kind == "mutant"]
VARIANTS = [m for m in ALL if m.kind == "variant"]


def test_enough_mutants_and_variants() -> None:
    assert len(MUTANTS) >= 25, f"only {len(MUTANTS)} mutants"
    assert len(VARIANTS) >= 2, f"only {len(VARIANTS)} variants"


def test_names_are_unique() -> None:
    names = [m.name for m in ALL]
    assert len(names) == len(set(names))


def test_categories_are_rubric_categories() -> None:
    rubric = {c.id for c in assignments.load(ASSIGNMENT).categories}
    wrong = {m.name: m.category for m in MUTANTS if m.category not in rubric}
    assert not wrong, f"unknown categories (rubric has {sorted(rubric)}): {wrong}"
    assert all(m.category is None for m in VARIANTS)
    assert all(m.bug for m in MUTANTS), "every mutant says what its bug is"


@pytest.mark.parametrize("mutant", ALL, ids=lambda m: m.name)
def test_materializes_and_compiles(mutant, tmp_path: Path) -> None:
    dest = mutants_mod.materialize(mutant, tmp_path / "app")
    assert (dest / "app" / "main.py").is_file()
    assert not (dest / "tests").exists(), "the reference's own tests are not copied"
    assert not list(dest.rglob("__pycache__")), "caches are not copied"
    changed = mutants_mod.changed_files(mutant, dest)
    if mutant.kind == "mutant":
        assert changed, "the mutant changes no file"
    for path in dest.rglob("*.py"):
        py_compile.compile(str(path), cfile=str(tmp_path / "pyc" / (path.name + "c")), doraise=True)


def test_an_edit_that_does_not_apply_is_an_error(tmp_path: Path) -> None:
    base = MUTANTS[0]
    missing = mutants_mod.Edit(file="app/main.py", old="this text is nowhere", new="")
    twice = mutants_mod.Edit(file="app/main.py", old="import", new="import")
    for n, edit in enumerate((missing, twice)):
        broken = mutants_mod.Mutant(
            name="broken",
            bug="",
            category="users",
            kind="mutant",
            edits=(edit,),
            reference=base.reference,
        )
        with pytest.raises(mutants_mod.MutantError, match="exactly once"):
            mutants_mod.materialize(broken, tmp_path / str(n))


SAMPLES = [s for f in sorted(assignments.SPECS_DIR.glob("*/examples")) for s in variants.samples(f)]


def test_there_is_a_sample() -> None:
    assert SAMPLES, "no specs/*/examples/*.yaml"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_a_sample_is_its_base_with_every_mutant_applied(sample, tmp_path: Path) -> None:
    dest = variants.materialize(sample, tmp_path / sample.name)
    assert (dest / "app").is_dir()
    for pattern in sample.exclude:
        assert not list(dest.glob(pattern)), f"{pattern} is excluded"
    for rel, text in sample.files:
        assert (dest / rel).read_text(encoding="utf-8") == text
    for mutant in sample.mutants:
        for edit in mutant.edits:
            assert edit.new in (dest / edit.file).read_text(encoding="utf-8"), (mutant.name, edit)
    edited = {e.file for m in sample.mutants for e in m.edits}
    assert edited <= set(variants.changed_files(sample, dest))
    for path in dest.rglob("*.py"):
        py_compile.compile(str(path), cfile=str(tmp_path / "pyc" / (path.name + "c")), doraise=True)


def test_a_sample_whose_mutants_clash_is_an_error(tmp_path: Path) -> None:
    """Mutants compose on one tree: one whose anchor an earlier one removed fails, naming both."""
    mutant = next(m for m in MUTANTS if m.edits)
    twice = variants.Sample(name="twice", reference=mutant.reference, mutants=(mutant, mutant))
    with pytest.raises(variants.MutantError, match=f"twice: {mutant.name}, edit 1.*not found"):
        variants.materialize(twice, tmp_path / "twice")


# mutant -> the rubric item whose evidence it fakes (it scored full marks there when only the hash's
# prefix and the presence of an alembic_version row were looked at)
FAKES = {
    "argon2-look-alike-base64": "db-passwords",
    "argon2-look-alike-sha256": "db-passwords",
    "argon2-trivial-cost": "db-passwords",
    "bcrypt-trivial-cost": "db-passwords",
    "create-all-hand-stamped": "db-migrations",
    "create-all-empty-migration": "db-migrations",
}


@pytest.mark.postgres
@pytest.mark.parametrize("name", [*FAKES, *(v.name for v in VARIANTS)])
def test_faked_evidence_loses_its_item_and_variants_keep_theirs(
    name: str, postgres: localpg.LocalPostgres, tmp_path: Path
) -> None:
    mutant = next(m for m in ALL if m.name == name)
    result = mutants_mod.run_local(mutant, postgres, tmp_path)
    assert result.error is None, f"{name} did not start: {result.error}"
    failed = {o.item for o in result.failed}
    expected = {FAKES[name]} if name in FAKES else set()
    shown = "\n".join(f"  [{o.item}] {o.name}: {o.message.strip()[-300:]}" for o in result.failed)
    assert failed == expected, (
        f"{name}: failing items {sorted(failed)}, expected {sorted(expected)}:\n{shown}"
    )
