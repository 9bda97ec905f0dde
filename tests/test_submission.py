"""Stage 1 on hostile and ordinary inputs (no Docker needed)."""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from grader.core import SubmissionRejected
from grader.submission import Limits, prepare, tree_hash


def _zip(path: Path, entries: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, entries: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


def test_folder_is_copied_and_never_written(tmp_path: Path) -> None:
    src = tmp_path / "student"
    (src / "app").mkdir(parents=True)
    (src / "Dockerfile").write_text("FROM scratch\n")
    (src / "app" / "main.py").write_text("print(1)\n")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref")
    before = tree_hash(src)
    root = prepare(src, workdir=tmp_path / "w")
    assert (root / "app" / "main.py").read_text() == "print(1)\n"
    assert not (root / ".git").exists()
    assert tree_hash(src) == before


def test_zip_with_parent_entry_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "s.zip", {"Dockerfile": b"FROM x\n", "../evil.txt": b"pwned"})
    with pytest.raises(SubmissionRejected, match="outside the submission"):
        prepare(archive, workdir=tmp_path / "w")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "w" / "evil.txt").exists()


def test_zip_with_absolute_entry_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "s.zip", {"Dockerfile": b"FROM x\n", "/tmp/abs.txt": b"x"})
    with pytest.raises(SubmissionRejected, match="outside"):
        prepare(archive, workdir=tmp_path / "w")


def test_zip_symlink_out_is_refused(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "s.zip", {"Dockerfile": b"FROM x\n"}, links={"secrets": "/etc/passwd"}
    )
    with pytest.raises(SubmissionRejected, match="link"):
        prepare(archive, workdir=tmp_path / "w")


def test_tar_symlink_escaping_is_refused(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "s.tar.gz", {"Dockerfile": b"FROM x\n"}, links={"up": "../../outside"}
    )
    with pytest.raises(SubmissionRejected, match="outside"):
        prepare(archive, workdir=tmp_path / "w")


def test_tar_wrapped_in_a_folder(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "s.tar.gz",
        {"proj/Dockerfile": b"FROM x\n", "proj/a.py": b"1"},
        links={"proj/link": "a.py"},
    )
    root = prepare(archive, workdir=tmp_path / "w")
    assert root.name == "proj" and (root / "Dockerfile").is_file()
    assert os.readlink(root / "link") == "a.py"


def test_size_and_count_caps(tmp_path: Path) -> None:
    big = _zip(tmp_path / "big.zip", {"Dockerfile": b"x", "blob": b"0" * 200_000})
    with pytest.raises(SubmissionRejected, match="MiB"):
        prepare(big, workdir=tmp_path / "w1", limits=Limits(max_bytes=100_000))
    many = _zip(tmp_path / "many.zip", {"Dockerfile": b"x", **{f"f{i}": b"" for i in range(20)}})
    with pytest.raises(SubmissionRejected, match="files"):
        prepare(many, workdir=tmp_path / "w2", limits=Limits(max_files=10))


def test_missing_dockerfile_and_garbage(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SubmissionRejected, match="no Dockerfile"):
        prepare(empty, workdir=tmp_path / "w1")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01not an archive")
    with pytest.raises(SubmissionRejected, match="not a folder"):
        prepare(junk, workdir=tmp_path / "w2")


def test_git_repository_at_a_ref(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "Dockerfile").write_text("FROM one\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    (repo / "Dockerfile").write_text("FROM two\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    root = prepare(repo, workdir=tmp_path / "w", ref="v1")
    assert (root / "Dockerfile").read_text() == "FROM one\n"
    latest = prepare(f"file://{repo}", workdir=tmp_path / "w2")
    assert (latest / "Dockerfile").read_text() == "FROM two\n"
    with pytest.raises(SubmissionRejected, match="cannot fetch"):
        prepare(repo, workdir=tmp_path / "w3", ref="no-such-ref")
    # a branch other than the default one: a fresh clone has it as origin/<name> only
    subprocess.run([*git, "switch", "-qc", "feature", "v1"], check=True)
    (repo / "Dockerfile").write_text("FROM three\n")
    subprocess.run([*git, "commit", "-qam", "three"], check=True)
    subprocess.run([*git, "switch", "-q", "-"], check=True)
    for source in (repo, f"file://{repo}"):
        branch = prepare(source, workdir=tmp_path / f"w4-{len(str(source))}", ref="feature")
        assert (branch / "Dockerfile").read_text() == "FROM three\n"


def _git_repo(repo: Path, links: dict[str, str]) -> Path:
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "Dockerfile").write_text("FROM one\n")
    (repo / "s").mkdir()
    (repo / "s" / "x").write_text("x")
    for name, target in links.items():
        os.symlink(target, repo / name)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    return repo


CHAIN = {
    "s/up": "..",
    "e1": "s/up/..",
    "e2": "e1/..",
}  # each looks inside as text, e2 is two levels up


def test_folder_with_a_link_chain_out_is_refused(tmp_path: Path) -> None:
    """The old copy kept these links (each stays inside as text): the tree then led out of itself."""
    src = tmp_path / "student"
    (src / "s").mkdir(parents=True)
    (src / "Dockerfile").write_text("FROM x\n")
    for name, target in CHAIN.items():
        os.symlink(target, src / name)
    with pytest.raises(SubmissionRejected, match=r"link 'e1' -> 's/up/\.\.' points outside"):
        prepare(src, workdir=tmp_path / "w")
    assert list((tmp_path / "w").iterdir()) == []


def test_folder_links_inside_are_kept_as_links(tmp_path: Path) -> None:
    src = tmp_path / "student"
    (src / "app").mkdir(parents=True)
    (src / "Dockerfile").write_text("FROM x\n")
    (src / "app" / "main.py").write_text("print(1)\n")
    os.symlink("app", src / "lib")  # a link to a folder (the old copy made it an empty folder)
    os.symlink("lib/main.py", src / "main.py")
    os.mkfifo(src / "pipe")  # not copied, and never opened
    root = prepare(src, workdir=tmp_path / "w")
    assert os.readlink(root / "lib") == "app"
    assert (root / "main.py").read_text() == "print(1)\n"
    assert not (root / "pipe").exists()


def test_deep_folder_is_refused_by_name_and_hashes(tmp_path: Path) -> None:
    """1,500 nested folders: a RecursionError traceback before (os.walk, rglob)."""
    src = tmp_path / "student"
    src.mkdir()
    (src / "Dockerfile").write_text("FROM x\n")
    fd = os.open(src, os.O_RDONLY)
    for _ in range(1500):  # pathlib's mkdir(parents=True) recurses too
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(parent)
    os.close(os.open("f.txt", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    os.close(fd)
    try:
        assert len(tree_hash(src)) == 64
        started = time.monotonic()
        with pytest.raises(SubmissionRejected, match="nested more than 32 folders deep"):
            prepare(src, workdir=tmp_path / "w")
        assert time.monotonic() - started < 5
    finally:  # pytest's own clean-up would recurse as deep
        deepest = src.joinpath(*["d"] * 1500)
        (deepest / "f.txt").unlink()
        for level in range(1500, 0, -1):
            os.rmdir(src.joinpath(*["d"] * level))


def test_folders_count_toward_the_limits(tmp_path: Path) -> None:
    src = tmp_path / "student"
    src.mkdir()
    (src / "Dockerfile").write_text("FROM x\n")
    for i in range(60):
        (src / f"d{i}").mkdir()
    with pytest.raises(SubmissionRejected, match="more than 50 folders"):
        prepare(src, workdir=tmp_path / "w", limits=Limits(max_dirs=50))
    archive = _zip(
        tmp_path / "dirs.zip", {"Dockerfile": b"x", **{f"d{i}/": b"" for i in range(60)}}
    )
    with pytest.raises(SubmissionRejected, match="more than 50 folders"):
        prepare(archive, workdir=tmp_path / "w2", limits=Limits(max_dirs=50))


def test_tree_hash_is_unchanged_for_ordinary_trees(tmp_path: Path) -> None:
    """The hash keys caches (reference traces, images, the batch journal): the value the old
    rglob-based hash gave for this tree."""
    t = tmp_path / "tree"
    (t / "app" / "sub").mkdir(parents=True)
    (t / "Dockerfile").write_text("FROM x\n")
    (t / "app" / "main.py").write_text("print(1)\n")
    (t / "run.sh").write_text("#!/bin/sh\n")
    (t / "run.sh").chmod(0o755)
    (t / "app" / "sub" / "z.txt").write_bytes(b"\x00\x01" * 1000)
    os.symlink("app/main.py", t / "alias.py")
    os.symlink("app", t / "lib")
    (t / "a-b").write_text("sorts after a/")
    (t / ".hidden").write_text("h")
    assert tree_hash(t) == "d4fdc42e1d128c62e5e70b329391a9cc681c43baf25e1a058deda7c80a1b9f31"


def test_git_ref_that_is_an_option_is_refused(tmp_path: Path) -> None:
    """`--pathspec-from-file=FILE` as a ref put FILE's first line into the report."""
    repo = _git_repo(tmp_path / "repo", {})
    secret = tmp_path / "host-secret.txt"
    secret.write_text("TOP-SECRET-line\n")
    for ref in [f"--pathspec-from-file={secret}", "-b", "--orphan=x", "v1 --", ""]:
        with pytest.raises(SubmissionRejected, match="not a branch, tag or commit") as refused:
            prepare(repo, workdir=tmp_path / "w", ref=ref)
        assert "TOP-SECRET" not in str(refused.value)
    with pytest.raises(SubmissionRejected, match="no such branch, tag or commit"):
        prepare(repo, workdir=tmp_path / "w", ref="Dockerfile")  # a path, not a commit


def test_git_source_that_is_an_option_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _git_repo(tmp_path / "-repo", {})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SubmissionRejected, match="starts with '-'"):
        prepare("-repo", workdir=tmp_path / "w", ref="v1")


def test_git_clone_with_a_link_chain_out_is_refused(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "repo", CHAIN)
    with pytest.raises(SubmissionRejected, match="points outside"):
        prepare(f"file://{repo}", workdir=tmp_path / "w")


def _chain(src: Path, length: int, pad: str) -> str:
    """Links l1..l<length> in `src`, l<i> -> <pad>l<i-1>, l1 -> <pad>f (a file); the last name."""
    (src / "x").mkdir()
    (src / "f").write_text("end\n")
    os.symlink(f"{pad}f", src / "l1")
    for i in range(2, length + 1):
        os.symlink(f"{pad}l{i - 1}", src / f"l{i}")
    return f"l{length}"


def test_link_chains_are_followed_once_each(tmp_path: Path) -> None:
    """A chain of 40 links (4 KB targets) is followed, 41 are a loop (the kernel's limit), and
    each link is resolved once, its end reused by the links that go through it: walked again
    for each link, this chain alone would take 1.3 million steps (the budget is 100,000)."""
    pad = "x/../" * 800
    for length, ok in [(40, True), (41, False)]:
        src = tmp_path / f"chain{length}"
        src.mkdir()
        (src / "Dockerfile").write_text("FROM x\n")
        last = _chain(src, length, pad)
        started = time.monotonic()
        if ok:
            root = prepare(src, workdir=tmp_path / f"w{length}")
            assert os.readlink(root / last) == f"{pad}l{length - 1}"
        else:
            with pytest.raises(SubmissionRejected, match="more than 40 links"):
                prepare(src, workdir=tmp_path / f"w{length}")
        assert time.monotonic() - started < 1


def test_link_resolution_has_a_budget_for_the_whole_tree(tmp_path: Path) -> None:
    src = tmp_path / "student"
    src.mkdir()
    (src / "Dockerfile").write_text("FROM x\n")
    for i in range(10):  # 10 links of 12 steps each: the link, then 11 names
        os.symlink("a/" * 10 + "b", src / f"l{i}")
    assert prepare(src, workdir=tmp_path / "w1", limits=Limits(max_link_steps=120))
    with pytest.raises(SubmissionRejected, match="links take more than 119 steps to resolve"):
        prepare(src, workdir=tmp_path / "w2", limits=Limits(max_link_steps=119))
    archive = _tar(tmp_path / "s.tar.gz", {"Dockerfile": b"FROM x\n"}, links={"l": "a/" * 200})
    with pytest.raises(SubmissionRejected, match="links take more than 100 steps to resolve"):
        prepare(archive, workdir=tmp_path / "w3", limits=Limits(max_link_steps=100))


def _forged_zip(path: Path, directory: bytes, entries: int) -> Path:
    """A zip of a central directory `directory` only, whose end record counts `entries`."""
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, entries, entries, len(directory), 0, 0)
    path.write_bytes(directory + end)
    return path


def test_zip_entry_count_is_read_before_the_directory(tmp_path: Path) -> None:
    """The end record's count refuses a zip before zipfile reads its directory: this one's is
    garbage, which zipfile would report as unreadable."""
    counted = _forged_zip(tmp_path / "count.zip", b"\xff" * 70_000, 10_000)
    with pytest.raises(SubmissionRejected, match="more than 7000 entries"):
        prepare(counted, workdir=tmp_path / "w1")
    sized = _forged_zip(tmp_path / "size.zip", b"\xff" * 70_000, 1)
    with pytest.raises(SubmissionRejected, match="unreadable archive"):  # what zipfile says
        prepare(sized, workdir=tmp_path / "w2")
    with pytest.raises(SubmissionRejected, match="central directory is larger than 10240 bytes"):
        prepare(sized, workdir=tmp_path / "w3", limits=Limits(max_files=5, max_dirs=5))


def test_zips_with_a_comment_or_zip64_end_records_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end record is found where zipfile finds it: after a comment, or with a zip64 record."""
    commented = _zip(tmp_path / "c.zip", {"Dockerfile": b"FROM c\n"})
    with zipfile.ZipFile(commented, "a") as zf:
        zf.comment = b"a comment after the end record"
    assert (prepare(commented, workdir=tmp_path / "w1") / "Dockerfile").read_text() == "FROM c\n"
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # zipfile then writes zip64 records
    many = {"Dockerfile": b"FROM z\n", **{f"f{i}": b"" for i in range(20)}}
    zip64 = _zip(tmp_path / "z.zip", many)
    monkeypatch.undo()
    assert b"PK\x06\x06" in zip64.read_bytes()
    assert (prepare(zip64, workdir=tmp_path / "w2") / "Dockerfile").read_text() == "FROM z\n"
    with pytest.raises(SubmissionRejected, match="more than 10 entries"):
        prepare(zip64, workdir=tmp_path / "w3", limits=Limits(max_files=5, max_dirs=5))


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE, tarfile.XGLTYPE])
def test_tar_extended_headers_are_capped_before_they_are_read(tmp_path: Path, kind: bytes) -> None:
    """A long-name or pax header of 1 GiB is refused by name, before tarfile reads it into memory
    (the child ran out of memory, the grader's own user had no cap)."""
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = kind, 2**30
    archive = tmp_path / "s.tar.gz"
    archive.write_bytes(gzip.compress(header.tobuf(tarfile.GNU_FORMAT) + b"a" * 2**20))
    started = time.monotonic()
    with pytest.raises(SubmissionRejected, match=r"extended headers .* more than 8 MiB"):
        prepare(archive, workdir=tmp_path / "w", limits=Limits(extract_as=None))
    assert time.monotonic() - started < 1


def _git(repo: Path, files: dict[str, bytes]) -> Path:
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], check=True)
    for name, data in {"Dockerfile": b"FROM one\n", **files}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    return repo


@pytest.fixture
def git_commands(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Each git command prepare runs (its verb), then what the clone's work tree holds after it."""
    seen: list[list[str]] = []
    run = subprocess.run

    def spy(args: list[str], **kwargs: Any) -> Any:
        done = run(args, **kwargs)
        verb = next((a for a in args if a in {"clone", "rev-parse", "checkout"}), None)
        if verb is None:  # the test's own commands
            return done
        clone = Path(args[-1] if verb == "clone" else args[args.index("-C") + 1])
        tree = (p.relative_to(clone) for p in clone.rglob("*"))
        seen.append([verb, *sorted(str(p) for p in tree if p.parts[0] != ".git")])
        return done

    monkeypatch.setattr(subprocess, "run", spy)
    return seen


@pytest.mark.parametrize("ref", [None, "v1"])
def test_git_commit_is_counted_before_it_is_checked_out(
    tmp_path: Path, git_commands: list[list[str]], ref: str | None
) -> None:
    """A clone was checked out whole, then counted: a committed bomb was written first."""
    files = {"a.bin": bytes(2 * 2**20), "b.txt": b"", "z/" * 40 + "f": b""}  # in ls-tree order
    repo = _git(tmp_path / "repo", files)
    url = f"file://{repo}"
    cases: list[tuple[Limits, str]] = [
        (Limits(max_bytes=2**20), "more than 1 MiB"),
        (Limits(max_files=2), "more than 2 files"),
        (Limits(max_dirs=10), "more than 10 folders"),
        (Limits(), "nested more than 32 folders deep"),
    ]
    for i, (limits, reason) in enumerate(cases):
        git_commands.clear()
        with pytest.raises(SubmissionRejected, match=reason):
            prepare(url, workdir=tmp_path / f"w{i}", ref=ref, limits=limits)
        assert git_commands == [["clone"], ["rev-parse"]], "nothing was checked out"
        assert list((tmp_path / f"w{i}").iterdir()) == []


def test_git_skipped_folders_are_neither_counted_nor_checked_out(
    tmp_path: Path, git_commands: list[list[str]]
) -> None:
    """A committed virtual environment is skipped, as in a folder: not counted, never written."""
    venv = {f"app/venv/lib/m{i}.py": b"x" * 1000 for i in range(50)}
    repo = _git(tmp_path / "repo", {**venv, "app/main.py": b"print(1)\n", "node_modules/x": b""})
    limits = Limits(max_files=5, max_bytes=10_000)
    root = prepare(f"file://{repo}", workdir=tmp_path / "w", limits=limits)
    assert sorted(p.name for p in (root / "app").iterdir()) == ["main.py"]
    assert git_commands[-1] == ["checkout", "Dockerfile", "app", "app/main.py"]
