"""Stage 1: turn a submission (directory, .zip, .tar[.gz], git repository) into a private work tree.

Archives and folders are hostile until proven otherwise. The rules, for every kind of source:

* Names: absolute paths, Windows drive names and `..` (also spelled with backslashes) are refused.
* Links: a symbolic link is kept only if it stays inside the submission when resolved on disk,
  through every link it meets, and nothing is ever written or read *through* a link: an entry one
  of whose parent folders is a link is refused. A last pass reads the finished tree's links once
  and resolves each of them in memory as the kernel would (at most 40 links per resolution); a
  link's end is reused by the links that go through it, and all of them together may take
  `Limits.max_link_steps` path components. A hard link becomes a copy of a regular file extracted
  before it, found without following any link. Devices and fifos in archives are refused (a
  folder's are not copied).
* Every path is opened relative to its parent folder's descriptor with O_NOFOLLOW (openat style),
  on folders this module created, so no link can redirect a write, whenever it appears.
* Limits count files, folders, bytes (while writing, so a zip bomb stops at the cap) and nesting
  depth, from the listing before anything is written: a zip's entry count and central directory
  size from its end record before zipfile reads the directory, a tar's extended headers (pax
  records, long names) before tarfile reads them, a git commit's tree (`git ls-tree`) before it is
  checked out. Every refusal names its reason.
* An archive is extracted, and its links checked, in a forked child under a deadline and a memory
  cap; a child that dies or overruns becomes a named rejection. Running as root, the child also
  drops to uid/gid 65534 (`Limits.extract_as`) inside a folder it owns; where the machine does not
  allow that (a user namespace without uid 65534) it keeps the grader's user. Folders and git
  clones are copied by the grader's own user, which may be the only one able to read them, with
  the same writer; the folders the copy skips (`SKIP_DIRS`) are never checked out.
* tarfile's 'data' filter (Python 3.11.4+, used where present: a second opinion on what this
  module checks itself) vets every member but symbolic links, against a destination that does not
  exist, so it stays textual (names, link names, types). Links are vetted here, as text and then
  on disk through descriptors: the filter resolves their targets with realpath, which on real
  host paths the unprivileged child cannot traverse and long link chains defeat in older 3.11
  releases, and which costs an lstat per name of a target. A file is executable when its owner
  may run it, as the filter decides.

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
import struct
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
    max_link_steps: int = 100_000  # path components the link check may walk, for the whole tree


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
# Python 3.11.4+ (Debian 12's 3.11.2 has none: this module's own checks cover what it vets)
_DATA_FILTER = getattr(tarfile, "data_filter", None)
# a tar's extended headers (pax records, GNU long names), all together: tarfile reads each whole
# into memory and parses pax records one by one (about 0.2 s per MiB of tiny records)
_MAX_TAR_HEADERS = 8 * 2**20
_TAR_EXTENDED = {
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
}
# a zip's central directory, per entry the limits allow (zipfile reads and parses it whole, as
# many entries as its bytes hold, whatever count the end record gives)
_ZIP_BYTES_PER_ENTRY = 1024
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_MAX_GIT_RECORD = 16 * 1024  # one line of `git ls-tree`: a path of 32 names of 255 bytes fits


@dataclass(frozen=True)
class Prepared:
    root: Path  # the folder holding the Dockerfile
    # a git source's graded commit: its committer date (ISO 8601, the committer's offset), which
    # the student's own machine sets; None for a folder or an archive
    committed_at: str | None = None


def prepare(
    source: str | Path, *, workdir: Path, ref: str | None = None, limits: Limits = Limits()
) -> Path:
    """Copy or extract `source` under `workdir`; return the folder holding the Dockerfile."""
    return prepare_source(source, workdir=workdir, ref=ref, limits=limits).root


def prepare_source(
    source: str | Path, *, workdir: Path, ref: str | None = None, limits: Limits = Limits()
) -> Prepared:
    """`prepare`, and what the source says of itself (a git commit's date)."""
    text = str(source)
    dest = workdir / "src"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if _GIT_URL.match(text) or (Path(text).is_dir() and ref is not None):
            committed_at = _clone(text, dest, ref, limits)
            return Prepared(_root(dest), committed_at)
        path = Path(text)
        if not path.exists():
            raise SubmissionRejected(f"submission not found: {text}")
        if path.is_dir():
            _copy_tree(path, dest, limits)
        elif zipfile.is_zipfile(path):  # reads the end record only
            _extract(path, dest, limits, _unpack_zip)
        else:  # a tar, or nothing: told in the child (a tar's first header may be a bomb too)
            _extract(path, dest, limits, _unpack_tar)
        return Prepared(_root(dest))
    except SubmissionRejected:
        shutil.rmtree(dest, ignore_errors=True)  # a refused tree may hold links out: never leave it
        raise


def is_git_url(source: str) -> bool:
    """Whether `source` names a git repository to clone rather than a path."""
    return bool(_GIT_URL.match(source))


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
        """A new regular file `parts` with `src`'s bytes, executable when `mode` is for its
        owner."""
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
            os.fchmod(fd, 0o755 if mode & stat.S_IXUSR else 0o644)  # as tarfile's data filter

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


def _check_links(top: int, limits: Limits) -> None:
    """Every link of the finished tree stays inside it, resolved on disk: links made before the
    ones they lean on (`e2 -> e1/..`, `e1 -> s/up/..`, `s/up -> ..`) are caught here."""
    links = _Links(top, limits)
    for link, target in links.targets.items():
        why = links.follow(link)
        if why is not None:
            _link_refused(link, target, why)


class _Links:
    """The links of the tree under `top`, read in one walk and followed in memory as the kernel
    would (missing names as text). The end of each link followed is kept for the links that go
    through it, and all of them together may take `limits.max_link_steps` path components: a
    tree of links with long targets that lean on each other costs milliseconds, not minutes."""

    def __init__(self, top: int, limits: Limits) -> None:
        self.limit = limits.max_link_steps
        self.targets: dict[tuple[str, ...], str] = {}
        for parts, st, parent in _walk(top, max_depth=limits.max_depth):
            if stat.S_ISLNK(st.st_mode):
                self.targets[parts] = os.readlink(parts[-1], dir_fd=parent)
        # no name deeper than this is a link: longer paths are text, never looked up
        self.deepest = max(map(len, self.targets), default=0)
        # a link -> where it ends (path components, no link among them) and the links it followed
        self.ends: dict[tuple[str, ...], tuple[tuple[str, ...], int]] = {}
        self.steps = 0

    def follow(self, link: tuple[str, ...]) -> str | None:
        """Why `link` is refused, or None when it ends inside the tree."""
        where, hops = list(link[:-1]), 0
        # what is left, the next last: a name, or (a link met, hops before it) once its target
        # has been walked and `where` is its end
        todo: list[str | tuple[tuple[str, ...], int]] = [link[-1]]
        while todo:
            item = todo.pop()
            if isinstance(item, tuple):
                if len(where) <= self.deepest:  # longer ends would make every reuse costly
                    self.ends[item[0]] = (tuple(where), hops - item[1])
                continue
            self.steps += 1
            if self.steps > self.limit:
                _refuse(f"the links take more than {self.limit} steps to resolve")
            if item in {"", "."}:
                continue
            if item == "..":
                if not where:
                    return "points outside the submission"
                where.pop()
                continue
            here = (*where, item) if len(where) < self.deepest else ()
            if here in self.ends:
                end, used = self.ends[here]
                where, hops = list(end), hops + used
            elif here in self.targets:
                target = self.targets[here]
                if target.startswith("/"):
                    return "points outside the submission"
                todo.append((here, hops))
                hops += 1
                todo.extend(reversed(target.split("/")))
            else:
                where.append(item)
            if hops > _MAX_HOPS:
                return f"goes through more than {_MAX_HOPS} links (a loop)"
        return None


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


def _zip_directory(fh: IO[bytes]) -> tuple[int, int]:
    """The entry count and the central directory's size in bytes that a zip's end record gives
    (zip64's when there is one), found where zipfile finds it: the record that ends the file,
    else the last signature in its final 64 KiB. (0, 0) without one (zipfile then refuses it)."""
    size = fh.seek(0, os.SEEK_END)
    first = max(size - 2**16 - _EOCD.size, 0)
    fh.seek(first)
    tail = fh.read()
    at = len(tail) - _EOCD.size
    if not (at >= 0 and tail[at : at + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0"):
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        return 0, 0
    entries, directory = _EOCD.unpack_from(tail, at)[4:6]
    locator = first + at - _EOCD64_LOCATOR.size  # zip64's locator, its record right before it
    if locator >= _EOCD64.size:
        fh.seek(locator - _EOCD64.size)
        data = fh.read(_EOCD64.size + _EOCD64_LOCATOR.size)
        if data[:4] == b"PK\x06\x06" and data[_EOCD64.size :][:4] == b"PK\x06\x07":
            entries, directory = _EOCD64.unpack_from(data)[7:9]
    return entries, directory


def _unpack_zip(fh: IO[bytes], tree: _Tree) -> None:
    limits = tree.limits
    most = limits.max_files + limits.max_dirs
    entries, directory = _zip_directory(fh)  # before zipfile reads the directory whole
    if entries > most:
        _too_many("entries", most)
    if directory > most * _ZIP_BYTES_PER_ENTRY:
        _refuse(f"the zip's central directory is larger than {most * _ZIP_BYTES_PER_ENTRY} bytes")
    with zipfile.ZipFile(fh) as zf:
        infos = zf.infolist()
        if len(infos) > most:
            _too_many("entries", most)
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


def _tar_headers() -> type[tarfile.TarInfo]:
    """A TarInfo class for one archive: it is refused once its extended headers (pax records,
    GNU long names) pass _MAX_TAR_HEADERS bytes together, before tarfile reads the one that
    would."""
    seen = 0

    class Header(tarfile.TarInfo):
        def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
            nonlocal seen
            if self.type in _TAR_EXTENDED:
                seen += self.size
                if seen > _MAX_TAR_HEADERS:
                    _refuse(
                        "the archive's extended headers (pax records, long names) take more "
                        f"than {_MAX_TAR_HEADERS // 2**20} MiB"
                    )
            return super()._proc_member(tf)  # type: ignore[misc,no-any-return]

    return Header


class _NotAnArchive(Exception):
    pass


def _open_tar(fh: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=fh, mode="r:*", tarinfo=_tar_headers())
    except tarfile.ReadError as exc:  # no tar, bare or compressed
        raise _NotAnArchive from exc


def _unpack_tar(fh: IO[bytes], tree: _Tree) -> None:
    limits = tree.limits
    with _open_tar(fh) as tf:
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
            # links are vetted as text above and on disk by _check_links: the filter would
            # resolve their targets with realpath, an lstat per name (1,000 links of 4 KB: 4 s)
            if _DATA_FILTER is not None and not m.issym():
                try:  # a destination that does not exist keeps the filter textual
                    _DATA_FILTER(m, "/nonexistent")
                except tarfile.FilterError as exc:
                    _refuse(
                        f"archive entry {_show(m.name)} fails tarfile's data filter "
                        f"({type(exc).__name__})"
                    )
            census.add(parts, folder=m.isdir(), size=m.size if m.isfile() else 0)
            plan.append((m, parts, source, m.mode))
        for m, parts, source, mode in plan:
            if m.issym():
                tree.symlink(parts, m.linkname, m.name)
            elif m.islnk():
                tree.copy(parts, source, m.name)
            elif m.isdir():
                tree.mkdir(parts, m.name)
            else:
                tree.write(parts, tf.extractfile(m), mode, m.name)


def _extract(path: Path, dest: Path, limits: Limits, unpack: Unpack) -> None:
    """Unpack the archive `path` into the new folder `dest` and check its links, in a child."""
    if path.stat().st_size > limits.max_bytes:
        _refuse(f"the archive is larger than {limits.max_bytes // 2**20} MiB")
    os.mkdir(dest, 0o755)
    top = os.open(dest, _DIR)
    try:
        with path.open("rb") as fh:
            _in_child(fh, top, path.name, _extractor(top, limits), limits, unpack)
    finally:
        os.close(top)


def _extractor(top: int, limits: Limits) -> int | None:
    """The uid that extracts into `top`: `limits.extract_as`, given `top`, when the grader is
    root; None (the grader's own) otherwise, or when the machine has no such uid (EINVAL in a
    user namespace that does not map it)."""
    uid = limits.extract_as
    if uid is None or os.geteuid() != 0:
        return None
    try:
        os.fchown(top, uid, uid)
    except OSError:
        return None
    return uid


def _unpack(fh: IO[bytes], tree: _Tree, name: str, unpack: Unpack) -> None:
    """`unpack`, then the links check; the archive's read errors and running out of memory are
    named rejections."""
    try:
        unpack(fh, tree)
        _check_links(tree.fd, tree.limits)
    except SubmissionRejected:
        raise
    except _NotAnArchive:
        _refuse(f"{name}: not a folder, a .zip or a .tar(.gz) archive")
    except MemoryError:
        _refuse(
            f"{name} needs more than {tree.limits.extract_memory // 2**20} MiB of memory to extract"
        )
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


def _in_child(
    fh: IO[bytes], top: int, name: str, uid: int | None, limits: Limits, unpack: Unpack
) -> None:
    """Unpack into `top` in a forked child, running as `uid`/`uid` unless None, under the
    deadline and memory cap of `limits`; its rejection is raised here."""
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(read)
        os.close(write)
        raise GraderFault(f"cannot start the process that extracts {name} ({exc})") from exc
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
    if answer.startswith("P"):  # the privilege drop failed: nothing was done, extract as we are
        os.fchown(top, os.getuid(), os.getgid())
        _in_child(fh, top, name, None, limits, unpack)


def _child(
    fh: IO[bytes], top: int, uid: int | None, limits: Limits, unpack: Unpack, name: str
) -> str:
    """In the child: cap memory, drop privileges and unpack. The answer: "O" done, "R<reason>"
    refused, "P<error>" the privilege drop failed."""
    try:
        with open("/proc/self/statm") as statm:  # the memory cap adds to what the fork inherited
            inherited = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = inherited + limits.extract_memory
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (OSError, ValueError):
        pass  # no /proc: no cap, the deadline still holds
    if uid is not None:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        except OSError as exc:
            return f"P{exc}"
    try:
        fh.seek(0)
        _unpack(fh, _Tree(top, limits), name, unpack)
    except SubmissionRejected as exc:
        return f"R{exc}"
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


def _commit(git: Callable[..., str], repo: Path, name: str) -> str | None:
    """The commit `name` names in `repo`, or None."""
    try:  # after --end-of-options nothing is an option, whatever it starts with
        return git(
            *("-C", str(repo), "rev-parse", "--verify", "--quiet", "--end-of-options"),
            f"{name}^{{commit}}",
        )
    except subprocess.CalledProcessError:
        return None


def _clone(url: str, dest: Path, ref: str | None, limits: Limits) -> str:
    """Check out `ref` (default: HEAD) of `url` into `dest`; returns its committer date."""
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

    clone = ["clone", "--quiet", "--no-checkout", "--no-recurse-submodules"]
    clone += ["--depth", "1"] if ref is None else []
    sparse = ["-c", "core.sparseCheckout=true", "-c", "core.sparseCheckoutCone=false"]
    try:
        git(*clone, "--", url, str(tmp))
        # a tag, a commit or the default branch as named; any other branch exists in a fresh
        # clone as origin/<name> only
        names = ["HEAD"] if ref is None else [ref, f"refs/remotes/origin/{ref}"]
        commit = next(filter(None, (_commit(git, tmp, name) for name in names)), None)
        if commit is None:
            if ref is None:
                _refuse(f"{url} has no commit")
            _refuse(f"cannot fetch ref {ref!r} of {url}: no such branch, tag or commit")
        _count_commit([*base, "-C", str(tmp)], commit, limits, env)
        # the folders the copy skips are not even checked out (a committed node_modules may be
        # a bomb): non-cone sparse patterns match a folder's name at any depth
        patterns = tmp / ".git" / "info" / "sparse-checkout"
        patterns.parent.mkdir(exist_ok=True)
        patterns.write_text("/*\n" + "".join(f"!{name}/\n" for name in sorted(SKIP_DIRS)))
        git("-C", str(tmp), *sparse, "checkout", "--quiet", "--detach", commit)
        _copy_tree(tmp, dest, limits)
        return git("-C", str(tmp), "show", "--no-patch", "--format=%cI", commit)
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


def _count_commit(git: list[str], commit: str, limits: Limits, env: dict[str, str]) -> None:
    """`commit`'s tree against the limits, from `git ls-tree` before anything is checked out,
    without the folders the copy skips; read as it comes, so a huge tree stops at its first
    excess."""
    census = _Census(limits)
    skipped: set[tuple[str, ...]] = set()
    command = [*git, "ls-tree", "-r", "-t", "-l", "-z", "--full-tree", commit]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    ) as proc:
        assert proc.stdout is not None
        try:
            pending = b""
            while chunk := proc.stdout.read(1 << 16):
                *records, pending = (pending + chunk).split(b"\0")
                if len(pending) > _MAX_GIT_RECORD:
                    _refuse(f"the repository has a path longer than {_MAX_GIT_RECORD} bytes")
                for record in records:  # "<mode> <type> <object> <size>\t<path>"
                    meta, _, path = record.partition(b"\t")
                    mode, kind, _, size = meta.split()
                    parts = _parts(os.fsdecode(path), limits, "repository entry")
                    if any(parts[:end] in skipped for end in range(1, len(parts))):
                        continue
                    folder = kind != b"blob"  # a tree, or a submodule's (empty) folder
                    if parts[-1] in SKIP_DIRS and (folder or mode == b"120000"):
                        skipped.add(parts)  # as _walk prunes: a folder or a link of that name
                        continue
                    census.add(parts, folder=folder, size=0 if folder else int(size))
            status = proc.wait(limits.clone_timeout)
        except BaseException:
            proc.kill()
            raise
    if status != 0:
        raise subprocess.CalledProcessError(status, command, stderr="git ls-tree failed")
