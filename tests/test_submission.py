"""Stage 1 on hostile and ordinary inputs (no Docker needed)."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
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
    archive = _zip(tmp_path / "s.zip", {"Dockerfile": b"FROM x\n"}, links={"secrets": "/etc/passwd"})
    with pytest.raises(SubmissionRejected, match="link"):
        prepare(archive, workdir=tmp_path / "w")


def test_tar_symlink_escaping_is_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "s.tar.gz", {"Dockerfile": b"FROM x\n"}, links={"up": "../../outside"})
    with pytest.raises(SubmissionRejected, match="outside"):
        prepare(archive, workdir=tmp_path / "w")


def test_tar_wrapped_in_a_folder(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "s.tar.gz", {"proj/Dockerfile": b"FROM x\n", "proj/a.py": b"1"},
                   links={"proj/link": "a.py"})
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
