"""Stage 1: turn a submission (directory, .zip, .tar[.gz], git repository) into a private work tree.

Archives and folders are hostile until proven otherwise. The rules, for every kind of source:

* Names: absolute paths, Windows drive names and `..` (also spelled with backslashes) are refused.
* Links: a symbolic link is kept only if it stays inside the submission when resolved on disk,
  through every link it meets (a last pass checks each link of the finished tree that way), and
  nothing is ever written or read *through* a link: an entry one of whose parent folders is a link
  is refused. A hard link becomes a copy of a regular file extracted before it, found without
  following any link. Devices and fifos in archives are refused (a folder's are not copied).
* Every path is opened relative to its parent folder's descriptor with O_NOFOLLOW (openat style),
  on folders this module created, so no link can redirect a write, whenever it appears.
* Limits count files, folders, bytes (while writing, so a zip bomb stops at the cap) and nesting
  depth; every refusal names its reason.
* Running as root, the grader extracts an archive in a forked child that drops to uid/gid 65534
  (`Limits.extract_as`) inside a folder it owns, under a deadline and a memory cap; a child that
  dies becomes a named rejection. When the machine does not allow that drop (a user namespace
  without uid 65534), the same code runs in-process. Folders and git clones are copied by the
  grader's own user, which may be the only one able to read them, with the same writer.
* tarfile's 'data' filter vets every member that is not a symbolic link. Links are vetted here:
  the filter resolves them with realpath on host paths, which the unprivileged child cannot
  traverse and which long link chains defeat in older 3.11 releases; the last pass resolves them
  through descriptors instead.

The student's own tree is only ever read.
"""

from __future__ import annotations

# tarfile and zipfile import these lazily: load them before the extraction child drops its
# privileges, it may not be allowed to read the interpreter's files
import bz2  # noqa: F401
import encodings.cp437  # noqa: F401  (zip names without the UTF-8 flag)
import gzip  # noqa: F401
import hashlib
import lzma  # noqa: F401
import os
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

from grader.core import GraderFault, SubmissionRejected


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 100 * 1024 * 1024  # uncompressed
    max_files: int = 5000  # regular files and links
    max_dirs: int = 2000
    max_depth: int = 32  # path components of any entry
    clone_timeout: float = 120.0
    extract_timeout: float = 60.0
    # the uid/gid that extracts archives when the grader runs as root (None: the grader itself)
    extract_as: int | None = 65534
    extract_memory: int = 1 << 30  # address space the extraction child may add to what it inherits


# where `grader check` writes inside a student's repo: never graded
SELF_CHECK_DIR = ".grader-report"
SKIP_DIRS = {
    ".git",
    "__pycache__",
    ".venv",
    "venv",
    "node_modules",
    ".mypy_cache",
    ".pytest_cache",
    SELF_CHECK_DIR,
}
HASH_DEPTH = 64  # tree_hash does not read deeper folders (prepare refuses them long before)
LINK_RULE = "links may point only inside the submission and nothing is written through one"
_GIT_URL = re.compile(r"^(https?://|ssh://|git@|file://|git://)")
_DRIVE = re.compile(r"^[A-Za-z]:")
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a fifo swapped in for a file does not block the read
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_HOPS = 40  # links followed while resolving one, as the kernel's limit


def prepare(
    source: str | Path, *, workdir: Path, ref: str | None = None, limits: Limits = Limits()
) -> Path:
    """Copy or extract `source` under `workdir`; return the folder holding the Dockerfile."""
    text = str(source)
    dest = workdir / "src"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if _GIT_URL.match(text) or (Path(text).is_dir() and ref is not None):
            _clone(text, dest, ref, limits)
            return _root(dest)
        path = Path(text)
        if not path.exists():
            raise SubmissionRejected(f"submission not found: {text}")
        if path.is_dir():
            _copy_tree(path, dest, limits)
        elif zipfile.is_zipfile(path):
            _extract(path, dest, limits, _unpack_zip)
        elif _is_tar(path):
            _extract(path, dest, limits, _unpack_tar)
        else:
            raise SubmissionRejected(f"{path.name}: not a folder, a .zip or a .tar(.gz) archive")
        return _root(dest)
    except SubmissionRejected:
        shutil.rmtree(dest, ignore_errors=True)  # a refused tree may hold links out: never leave it
        raise


def tree_hash(root: Path) -> str:
    """A content hash of a prepared tree (names, modes and bytes), stable across copies.

    Links are hashed as their text, never followed; folders deeper than HASH_DEPTH are named,
    not read."""
    digest = hashlib.sha256()
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for parts, st, parent in _walk(top, max_depth=HASH_DEPTH):
            rel, name = "/".join(parts), parts[-1]
            if stat.S_ISLNK(st.st_mode):
                digest.update(_bytes(f"L {rel} -> {os.readlink(name, dir_fd=parent)}\n"))
            elif stat.S_ISREG(st.st_mode):
                digest.update(_bytes(f"F {rel} {st.st_mode & 0o111:o}\n"))
                with os.fdopen(os.open(name, _READ, dir_fd=parent), "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
            elif stat.S_ISDIR(st.st_mode) and len(parts) > HASH_DEPTH:
                digest.update(_bytes(f"D {rel} not read\n"))
    finally:
        os.close(top)
    return digest.hexdigest()


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")  # names that are not UTF-8 hash as their bytes


def _root(dest: Path) -> Path:
    """The folder with the Dockerfile: the top, or the only folder when an archive wraps one."""
    if (dest / "Dockerfile").is_file():
        return dest
    entries = [p for p in dest.iterdir() if p.name not in {"__MACOSX", ".DS_Store"}]
    if (
        len(entries) == 1
        and entries[0].is_dir()
        and not entries[0].is_symlink()
        and (entries[0] / "Dockerfile").is_file()
    ):
        return entries[0]
    raise SubmissionRejected("no Dockerfile at the root of the submission")


def _refuse(reason: str) -> NoReturn:
    raise SubmissionRejected(f"{reason}; refused")


def _show(name: str) -> str:
    """A name for a message: 1,500 nested folders are not printed whole."""
    return repr(name if len(name) <= 100 else f"{name[:60]}…{name[-30:]}")


def _parts(name: str, limits: Limits, what: str = "") -> tuple[str, ...]:
    """The path components of an archive entry's name; () for the top folder itself."""
    text = name.replace("\\", "/")
    parts = tuple(p for p in text.split("/") if p not in {"", "."})
    if text.startswith("/") or _DRIVE.match(text) or ".." in parts:
        _refuse(f"{what or 'archive entry'} {_show(name)} points outside the submission")
    if len(parts) > limits.max_depth:
        _refuse(f"entry {_show(name)} is nested more than {limits.max_depth} folders deep")
    return parts


def _check_link_text(parts: tuple[str, ...], target: str) -> None:
    """A first look at a link, as text; `_check_links` later resolves it on disk."""
    inside = os.path.normpath("/".join((*parts[:-1], target)) or ".")
    if not target or target.startswith("/") or inside == ".." or inside.startswith("../"):
        _link_refused(parts, target, "points outside the submission")


def _link_refused(parts: tuple[str, ...], target: str, why: str) -> NoReturn:
    _refuse(f"link {_show('/'.join(parts))} -> {_show(target)} {why} ({LINK_RULE})")


def _too_many(what: str, limit: int) -> NoReturn:
    _refuse(f"more than {limit} {what}")


def _too_big(limits: Limits) -> NoReturn:
    _refuse(f"more than {limits.max_bytes // 2**20} MiB uncompressed")


class _Census:
    """A source's whole listing, checked as text before anything is written: a refusal for its
    size costs no disk work, however slow the disk."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.entries = self.bytes = 0
        self.folders: set[tuple[str, ...]] = set()
        self.files: set[tuple[str, ...]] = set()

    def add(self, parts: tuple[str, ...], *, folder: bool, size: int = 0) -> None:
        limits = self.limits
        self.entries += 1
        if self.entries > limits.max_files + limits.max_dirs:
            _too_many("entries", limits.max_files + limits.max_dirs)
        for end in range(1, len(parts) + folder):  # every folder it needs, named or not
            self.folders.add(parts[:end])
        if len(self.folders) > limits.max_dirs:
            _too_many("folders", limits.max_dirs)
        if folder:
            return
        if parts in self.files:
            _refuse(f"entry {_show('/'.join(parts))} appears twice")
        self.files.add(parts)
        if len(self.files) > limits.max_files:
            _too_many("files", limits.max_files)
        self.bytes += size
        if self.bytes > limits.max_bytes:
            _too_big(limits)


class _Tree:
    """The work tree, written only through descriptors of folders it created, never through a
    link. It counts again what it writes (an archive's sizes may lie)."""

    def __init__(self, fd: int, limits: Limits) -> None:
        self.fd, self.limits = fd, limits
        self.files = self.dirs = self.bytes = 0

    def _add_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            _too_many("files", self.limits.max_files)

    def _add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_bytes:
            _too_big(self.limits)

    def folder(self, parts: tuple[str, ...], entry: str, *, create: bool = True) -> int:
        """A descriptor of the folder `parts`, its missing folders created; any link on the way
        refuses `entry`. The caller closes it."""
        fd = os.dup(self.fd)
        try:
            for i, name in enumerate(parts):
                try:
                    sub = os.open(name, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(name, 0o755, dir_fd=fd)
                    self.dirs += 1
                    if self.dirs > self.limits.max_dirs:
                        _too_many("folders", self.limits.max_dirs)
                    sub = os.open(name, _DIR, dir_fd=fd)
                    os.fchmod(sub, 0o755)
                except OSError:  # ELOOP or ENOTDIR: a link, or a file
                    where = "/".join(parts[: i + 1])
                    if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                        _refuse(
                            f"entry {_show(entry)} goes through the link {_show(where)} ({LINK_RULE})"
                        )
                    _refuse(
                        f"entry {_show(entry)} needs {_show(where)} to be a folder, it is a file"
                    )
                os.close(fd)
                fd = sub
        except BaseException:
            os.close(fd)
            raise
        return fd

    def mkdir(self, parts: tuple[str, ...], entry: str) -> None:
        os.close(self.folder(parts, entry))

    def write(self, parts: tuple[str, ...], src: IO[bytes] | None, mode: int, entry: str) -> None:
        """A new regular file `parts` with `src`'s bytes, executable when `mode` is."""
        self._add_file()
        parent = self.folder(parts[:-1], entry)
        try:
            fd = os.open(parts[-1], _CREATE, 0o644, dir_fd=parent)
        except FileExistsError:
            _refuse(f"entry {_show(entry)} appears twice")
        finally:
            os.close(parent)
        with os.fdopen(fd, "wb") as out:
            while src is not None and (chunk := src.read(1 << 20)):
                self._add_bytes(len(chunk))
                out.write(chunk)
            os.fchmod(fd, 0o755 if mode & 0o111 else 0o644)

    def symlink(self, parts: tuple[str, ...], target: str, entry: str) -> None:
        self._add_file()
        _check_link_text(parts, target)
        parent = self.folder(parts[:-1], entry)
        try:
            os.symlink(target, parts[-1], dir_fd=parent)
        except FileExistsError:
            _refuse(f"entry {_show(entry)} appears twice")
        finally:
            os.close(parent)

    def copy(self, parts: tuple[str, ...], source: tuple[str, ...], entry: str) -> None:
        """A hard link `parts` -> `source`: a copy of the regular file `source` of this tree."""
        refusal = (
            f"hard link {_show(entry)} -> {_show('/'.join(source))} must name a regular "
            "file extracted before it"
        )
        try:
            parent = self.folder(source[:-1], entry, create=False)
        except FileNotFoundError:
            _refuse(refusal)
        try:
            fd = os.open(source[-1], _READ, dir_fd=parent)
        except OSError:  # missing, or a link (O_NOFOLLOW)
            _refuse(refusal)
        finally:
            os.close(parent)
        with os.fdopen(fd, "rb") as src:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                _refuse(refusal)
            self.write(parts, src, st.st_mode, entry)


def _walk(
    top: int, *, max_depth: int, prune: Collection[str] = ()
) -> Iterator[tuple[tuple[str, ...], os.stat_result, int]]:
    """Every entry under the folder `top`, depth first, names sorted, never through a link:
    (path components, lstat, descriptor of its folder). Folders and links named in `prune` are
    left out; folders with more than `max_depth` components are yielded but not entered.
    Iterative, so no depth can exhaust the interpreter's stack."""
    first = os.dup(top)
    stack: list[tuple[int, tuple[str, ...], Iterator[str]]] = [
        (first, (), iter(sorted(os.listdir(first))))
    ]
    try:
        while stack:
            fd, where, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            kind = stat.S_IFMT(st.st_mode)
            if name in prune and kind in {stat.S_IFDIR, stat.S_IFLNK}:
                continue
            parts = (*where, name)
            yield parts, st, fd
            if kind == stat.S_IFDIR and len(parts) <= max_depth:
                sub = os.open(name, _DIR, dir_fd=fd)
                stack.append((sub, parts, iter(sorted(os.listdir(sub)))))
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _readlink_at(top: int, parts: list[str]) -> str | None:
    """The target of the link `parts` under `top`, or None when it is no link (or is missing)."""
    fd = os.dup(top)
    try:
        for name in parts[:-1]:
            sub = os.open(name, _DIR, dir_fd=fd)
            os.close(fd)
            fd = sub
        return os.readlink(parts[-1], dir_fd=fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def _resolve(top: int, where: list[str], target: str) -> str | None:
    """Why the link in folder `where` with `target` is refused, or None when it stays under
    `top`: followed on disk through every link it meets (as the kernel would), missing names as
    text."""
    todo = target.split("/")[::-1]  # a stack: the next component last
    hops = 0
    if target.startswith("/"):
        return "points outside the submission"
    while todo:
        name = todo.pop()
        if name in {"", "."}:
            continue
        if name == "..":
            if not where:
                return "points outside the submission"
            where.pop()
            continue
        link = _readlink_at(top, [*where, name])
        if link is None:
            where.append(name)
            continue
        hops += 1
        if hops > _MAX_HOPS:
            return f"goes through more than {_MAX_HOPS} links (a loop)"
        if link.startswith("/"):
            return "points outside the submission"
        todo.extend(link.split("/")[::-1])
    return None


def _check_links(top: int, limits: Limits) -> None:
    """Every link of the finished tree stays inside it, resolved on disk: links made before the
    ones they lean on (`e2 -> e1/..`, `e1 -> s/up/..`, `s/up -> ..`) are caught here."""
    for parts, st, parent in _walk(top, max_depth=limits.max_depth):
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(parts[-1], dir_fd=parent)
            why = _resolve(top, list(parts[:-1]), target)
            if why is not None:
                _link_refused(parts, target, why)


def _copy_tree(src: Path, dest: Path, limits: Limits) -> None:
    """Copy a folder (a student's, or a fresh clone) without following any link in it."""
    try:
        source = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        _refuse(f"the submission folder could not be read ({exc.strerror})")
    try:
        census = _Census(limits)
        for parts, st, _ in _walk(source, max_depth=limits.max_depth, prune=SKIP_DIRS):
            if len(parts) > limits.max_depth:
                _refuse(
                    f"entry {_show('/'.join(parts))} is nested more than {limits.max_depth} "
                    "folders deep"
                )
            census.add(parts, folder=stat.S_ISDIR(st.st_mode), size=st.st_size)
        os.mkdir(dest, 0o755)
        top = os.open(dest, _DIR)
        try:
            _copy_entries(source, _Tree(top, limits))
            _check_links(top, limits)
        finally:
            os.close(top)
    except OSError as exc:
        _refuse(f"the submission folder could not be copied ({exc.strerror})")
    finally:
        os.close(source)


def _copy_entries(source: int, tree: _Tree) -> None:
    for parts, st, parent in _walk(source, max_depth=tree.limits.max_depth, prune=SKIP_DIRS):
        entry = "/".join(parts)
        if stat.S_ISDIR(st.st_mode):
            tree.mkdir(parts, entry)
        elif stat.S_ISLNK(st.st_mode):
            tree.symlink(parts, os.readlink(parts[-1], dir_fd=parent), entry)
        elif stat.S_ISREG(st.st_mode):
            with os.fdopen(os.open(parts[-1], _READ, dir_fd=parent), "rb") as fh:
                if stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # not swapped meanwhile
                    tree.write(parts, fh, st.st_mode, entry)
        # sockets, fifos, devices: not copied


Unpack = Callable[[IO[bytes], _Tree], None]


def _unpack_zip(fh: IO[bytes], tree: _Tree) -> None:
    limits = tree.limits
    with zipfile.ZipFile(fh) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_files + limits.max_dirs:
            _too_many("entries", limits.max_files + limits.max_dirs)
        census = _Census(limits)
        plan: list[tuple[zipfile.ZipInfo, tuple[str, ...], str | None]] = []
        for info in infos:
            parts = _parts(info.filename, limits)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if not parts:
                continue
            if info.is_dir() or kind == stat.S_IFDIR:
                plan.append((info, parts, None))
            elif kind == stat.S_IFLNK:
                if info.file_size > 4096:
                    _refuse(f"link {_show(info.filename)} has a target of {info.file_size} bytes")
                link = zf.read(info).decode("utf-8")
                _check_link_text(parts, link)
                plan.append((info, parts, link))
            elif kind in {0, stat.S_IFREG}:  # 0: made where files have no Unix mode
                plan.append((info, parts, None))
            else:
                _refuse(f"archive entry {_show(info.filename)} is a device or fifo")
            census.add(parts, folder=kind == stat.S_IFDIR or info.is_dir(), size=info.file_size)
        for info, parts, target in plan:
            if target is not None:
                tree.symlink(parts, target, info.filename)
            elif info.is_dir() or stat.S_IFMT(info.external_attr >> 16) == stat.S_IFDIR:
                tree.mkdir(parts, info.filename)
            else:
                with zf.open(info) as src:
                    tree.write(parts, src, info.external_attr >> 16, info.filename)


def _unpack_tar(fh: IO[bytes], tree: _Tree) -> None:
    limits = tree.limits
    with tarfile.open(fileobj=fh, mode="r:*") as tf:
        census, plan = _Census(limits), []
        for m in tf:  # headers only: the census stops a 100,000-entry archive early
            parts = _parts(m.name, limits)
            if not parts:
                continue
            source: tuple[str, ...] = ()
            if m.issym():
                _check_link_text(parts, m.linkname)
            elif m.islnk():
                source = _parts(m.linkname, limits, f"hard link {_show(m.name)} ->")
            elif not (m.isfile() or m.isdir()):
                _refuse(f"archive entry {_show(m.name)} is a device or fifo")
            try:  # a destination that does not exist keeps the filter textual, the same in the
                # child and here: names, types and modes (what is on disk is this module's job)
                safe = tarfile.data_filter(m, "/nonexistent")
            except tarfile.FilterError as exc:
                _refuse(
                    f"archive entry {_show(m.name)} fails tarfile's data filter "
                    f"({type(exc).__name__})"
                )
            census.add(parts, folder=m.isdir(), size=m.size if m.isfile() else 0)
            plan.append((m, parts, source, safe.mode or 0))
        for m, parts, source, mode in plan:
            if m.issym():
                tree.symlink(parts, m.linkname, m.name)
            elif m.islnk():
                tree.copy(parts, source, m.name)
            elif m.isdir():
                tree.mkdir(parts, m.name)
            else:
                tree.write(parts, tf.extractfile(m), mode, m.name)


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _extract(path: Path, dest: Path, limits: Limits, unpack: Unpack) -> None:
    """Unpack the archive `path` into the new folder `dest`: as uid `limits.extract_as` in a
    child when the grader is root, else here; then check every link of the result."""
    if path.stat().st_size > limits.max_bytes:
        _refuse(f"the archive is larger than {limits.max_bytes // 2**20} MiB")
    os.mkdir(dest, 0o755)
    top = os.open(dest, _DIR)
    try:
        with path.open("rb") as fh:
            uid = limits.extract_as
            if (
                uid is None
                or os.geteuid() != 0
                or not _in_child(fh, top, path.name, uid, limits, unpack)
            ):
                _unpack(fh, _Tree(top, limits), path.name, unpack)
        _check_links(top, limits)
    finally:
        os.close(top)


def _unpack(fh: IO[bytes], tree: _Tree, name: str, unpack: Unpack) -> None:
    """`unpack`, its archive's read errors turned into a named rejection."""
    try:
        unpack(fh, tree)
    except SubmissionRejected:
        raise
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        RuntimeError,
        NotImplementedError,
        ValueError,
    ) as exc:
        # RuntimeError: an encrypted zip entry; NotImplementedError: an unknown compression
        _refuse(f"{name}: unreadable archive ({type(exc).__name__}: {exc})")


def _in_child(fh: IO[bytes], top: int, name: str, uid: int, limits: Limits, unpack: Unpack) -> bool:
    """Unpack in a forked child running as `uid`/`uid`, into `top` (given to it). Its rejection
    is raised here; False when the machine does not allow the privilege drop (nothing was done)."""
    os.fchown(top, uid, uid)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(read)
            os.write(write, _child(fh, top, uid, limits, unpack, name).encode("utf-8", "replace"))
        finally:
            os._exit(0)
    os.close(write)
    answer: str | None = None
    try:
        answer = _answer(read, limits.extract_timeout)
    finally:
        os.close(read)
        if answer is None:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if answer is None:
        _refuse(f"extracting {name} took longer than {limits.extract_timeout:g} s")
    if answer == "":
        why = (
            f"signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit code {os.waitstatus_to_exitcode(status)}"
        )
        _refuse(f"extracting {name} crashed ({why})")
    if answer.startswith("R"):
        raise SubmissionRejected(answer[1:])
    if answer.startswith("P"):
        os.fchown(top, os.getuid(), os.getgid())
        return False
    return True


def _child(fh: IO[bytes], top: int, uid: int, limits: Limits, unpack: Unpack, name: str) -> str:
    """In the child: drop privileges and unpack. The answer: "O" done, "R<reason>" refused,
    "P<error>" the privilege drop failed."""
    try:
        with open("/proc/self/statm") as statm:  # the memory cap adds to what the fork inherited
            inherited = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = inherited + limits.extract_memory
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (OSError, ValueError):
        pass  # no /proc: no cap, the deadline still holds
    try:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    except OSError as exc:
        return f"P{exc}"
    try:
        _unpack(fh, _Tree(top, limits), name, unpack)
    except SubmissionRejected as exc:
        return f"R{exc}"
    except MemoryError:
        return f"R{name} needs more than {limits.extract_memory // 2**20} MiB of memory to extract; refused"
    except BaseException as exc:
        return f"R{name} could not be extracted ({type(exc).__name__}: {exc}); refused"
    return "O"


def _answer(fd: int, timeout: float) -> str | None:
    """Everything the child writes to `fd` until it closes it, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poll.poll(left * 1000):
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return data.decode("utf-8", "replace")
        data += chunk


def _clone(url: str, dest: Path, ref: str | None, limits: Limits) -> None:
    if url.startswith("-"):
        _refuse(f"git source {url!r} starts with '-'")
    if ref is not None and (
        ref.startswith("-")
        or not ref.strip()
        or any(c.isspace() or not c.isprintable() for c in ref)
    ):
        _refuse(f"git ref {ref!r} is not a branch, tag or commit name")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    base = ["git", "-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=always"]
    tmp = dest.parent / "clone"

    def git(*args: str) -> str:
        return subprocess.run(
            [*base, *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=limits.clone_timeout,
            env=env,
        ).stdout.strip()

    depth = ["--depth", "1"] if ref is None else []
    try:
        git("clone", "--quiet", "--no-recurse-submodules", *depth, "--", url, str(tmp))
        if ref is not None:
            try:  # after --end-of-options nothing is an option, whatever it starts with
                commit = git(
                    *("-C", str(tmp), "rev-parse", "--verify", "--quiet", "--end-of-options"),
                    f"{ref}^{{commit}}",
                )
            except subprocess.CalledProcessError:
                _refuse(f"cannot fetch ref {ref!r} of {url}: no such branch, tag or commit")
            git("-C", str(tmp), "checkout", "--quiet", "--detach", commit)
        _copy_tree(tmp, dest, limits)
    except FileNotFoundError as exc:
        raise GraderFault("git is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise SubmissionRejected(
            f"git clone of {url} took longer than {limits.clone_timeout:.0f} s"
        ) from exc
    except subprocess.CalledProcessError as exc:
        what = f"ref {ref!r} of {url}" if ref else url
        raise SubmissionRejected(f"cannot fetch {what}: {exc.stderr.strip()[-300:]}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # it may hold links out: never leave it
