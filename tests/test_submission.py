"""Stage 1 on hostile and ordinary inputs (no Docker needed)."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

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
