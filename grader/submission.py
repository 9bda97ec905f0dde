"""Stage 1: turn a submission (directory, .zip, .tar[.gz], git repository) into a private work tree.

Archives are hostile until proven otherwise: absolute paths, `..`, links that leave the tree,
devices, too many files and too many bytes are refused before anything is written.
The student's own tree is only ever read.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.core import GraderFault, SubmissionRejected


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 100 * 1024 * 1024  # uncompressed
    max_files: int = 5000
    clone_timeout: float = 120.0


SELF_CHECK_DIR = ".grader-report"  # where `grader check` writes inside a student's repo: never graded
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache",
             SELF_CHECK_DIR}
_GIT_URL = re.compile(r"^(https?://|ssh://|git@|file://|git://)")


def prepare(source: str | Path, *, workdir: Path, ref: str | None = None,
            limits: Limits = Limits()) -> Path:
    """Copy or extract `source` under `workdir`; return the folder holding the Dockerfile."""
    text = str(source)
    dest = workdir / "src"
    if _GIT_URL.match(text) or (Path(text).is_dir() and ref is not None):
        _clone(text, dest, ref, limits)
        return _root(dest)
    path = Path(text)
    if not path.exists():
        raise SubmissionRejected(f"submission not found: {text}")
    if path.is_dir():
        _copy_tree(path, dest, limits)
    elif zipfile.is_zipfile(path):
        _extract_zip(path, dest, limits)
    elif _is_tar(path):
        _extract_tar(path, dest, limits)
    else:
        raise SubmissionRejected(f"{path.name}: not a folder, a .zip or a .tar(.gz) archive")
    return _root(dest)


def tree_hash(root: Path) -> str:
    """A content hash of a prepared tree (names, modes and bytes), stable across copies."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest.update(f"L {rel} -> {os.readlink(path)}\n".encode())
        elif path.is_file():
            digest.update(f"F {rel} {path.stat().st_mode & 0o111:o}\n".encode())
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def _root(dest: Path) -> Path:
    """The folder with the Dockerfile: the top, or the only folder when an archive wraps one."""
    if (dest / "Dockerfile").is_file():
        return dest
    entries = [p for p in dest.iterdir() if p.name not in {"__MACOSX", ".DS_Store"}]
    if (len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink()
            and (entries[0] / "Dockerfile").is_file()):
        return entries[0]
    raise SubmissionRejected("no Dockerfile at the root of the submission")


def _check_name(name: str) -> PurePosixPath:
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or re.match(r"^[A-Za-z]:", name) or ".." in rel.parts:
        raise SubmissionRejected(f"archive entry {name!r} points outside the submission; refused")
    return rel


def _check_link(rel: PurePosixPath, target: str) -> None:
    """A symlink is allowed only when it resolves inside the tree."""
    if target.startswith("/") or PurePosixPath(os.path.normpath(rel.parent / target)).parts[:1] == ("..",):
        raise SubmissionRejected(f"link {rel} -> {target} points outside the submission; refused")


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits, self.files, self.bytes = limits, 0, 0

    def add_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise SubmissionRejected(f"more than {self.limits.max_files} files; refused")

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_bytes:
            raise SubmissionRejected(f"more than {self.limits.max_bytes // 2**20} MiB; refused")


def _copy_stream(src: object, dst: Path, budget: _Budget, mode: int = 0o644) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("wb") as out:
        while chunk := src.read(1 << 20):  # type: ignore[attr-defined]
            budget.add_bytes(len(chunk))
            out.write(chunk)
    dst.chmod(0o755 if mode & 0o111 else 0o644)


def _copy_tree(src: Path, dest: Path, limits: Limits) -> None:
    budget = _Budget(limits)
    dest.mkdir(parents=True)
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        here = Path(dirpath)
        rel_dir = here.relative_to(src)
        for name in dirnames:
            link = here / name
            if link.is_symlink():  # os.walk does not follow; treat like a file link
                _check_link(PurePosixPath(rel_dir.as_posix()) / name, os.readlink(link))
            (dest / rel_dir / name).mkdir(exist_ok=True)
        for name in sorted(filenames):
            path = here / name
            rel = PurePosixPath((rel_dir / name).as_posix())
            budget.add_file()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                _check_link(rel, target)
                os.symlink(target, dest / rel)
            elif stat.S_ISREG(st.st_mode):
                with path.open("rb") as fh:
                    _copy_stream(fh, dest / rel, budget, st.st_mode)
            # sockets, fifos, devices: silently not copied


def _extract_zip(path: Path, dest: Path, limits: Limits) -> None:
    budget = _Budget(limits)
    dest.mkdir(parents=True)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            for info in infos:  # validate everything before writing anything
                rel = _check_name(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    _check_link(rel, zf.read(info).decode("utf-8", "replace"))
            for info in infos:
                rel = _check_name(info.filename)
                mode = info.external_attr >> 16
                if info.is_dir():
                    (dest / rel).mkdir(parents=True, exist_ok=True)
                    continue
                budget.add_file()
                if stat.S_ISLNK(mode):
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(zf.read(info).decode(), dest / rel)
                    continue
                with zf.open(info) as fh:
                    _copy_stream(fh, dest / rel, budget, mode)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        if isinstance(exc, SubmissionRejected):
            raise
        raise SubmissionRejected(f"{path.name}: unreadable zip archive ({exc})") from exc


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _extract_tar(path: Path, dest: Path, limits: Limits) -> None:
    budget = _Budget(limits)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(path) as tf:
            members = tf.getmembers()
            for m in members:
                rel = _check_name(m.name)
                if m.issym():
                    _check_link(rel, m.linkname)
                elif m.islnk():
                    _check_name(m.linkname)
                elif not (m.isfile() or m.isdir()):
                    raise SubmissionRejected(f"archive entry {m.name!r} is a device or fifo; refused")
            for m in members:
                rel = _check_name(m.name)
                if m.isdir():
                    (dest / rel).mkdir(parents=True, exist_ok=True)
                    continue
                budget.add_file()
                if m.issym():
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(m.linkname, dest / rel)
                elif m.islnk():
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(dest / _check_name(m.linkname), dest / rel)
                else:
                    fh = tf.extractfile(m)
                    if fh is not None:
                        _copy_stream(fh, dest / rel, budget, m.mode)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SubmissionRejected(f"{path.name}: unreadable tar archive ({exc})") from exc


def _clone(url: str, dest: Path, ref: str | None, limits: Limits) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    base = ["git", "-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=always"]
    clone = [*base, "clone", "--quiet", "--no-recurse-submodules"]
    if ref is None:
        clone += ["--depth", "1"]
    tmp = dest.parent / "clone"
    try:
        subprocess.run([*clone, url, str(tmp)], check=True, capture_output=True, text=True,
                       timeout=limits.clone_timeout, env=env)
        if ref is not None:
            subprocess.run([*base, "-C", str(tmp), "checkout", "--quiet", ref], check=True,
                           capture_output=True, text=True, timeout=limits.clone_timeout, env=env)
    except FileNotFoundError as exc:
        raise GraderFault("git is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise SubmissionRejected(f"git clone of {url} took longer than {limits.clone_timeout:.0f} s") from exc
    except subprocess.CalledProcessError as exc:
        what = f"ref {ref!r} of {url}" if ref else url
        raise SubmissionRejected(f"cannot fetch {what}: {exc.stderr.strip()[-300:]}") from exc
    _copy_tree(tmp, dest, limits)
    shutil.rmtree(tmp, ignore_errors=True)
