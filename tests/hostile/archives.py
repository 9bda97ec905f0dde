"""Hostile archives, generated from small specs (no checked-in binaries).

Each `Hostile` names one class of extraction attack and the rejection it must get (a few, whose
bytes no archive writer makes, are forged). Attacks that
write or read outside the tree aim at `Places.outside` / `Places.secret`, folders the caller owns
(never a system path): a link chain climbs from the tree the archive is extracted into
(`Places.tree`) to them. `write_all(folder, places)` writes every archive into `folder`.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DOCKERFILE = b"FROM python:3.11-slim\n"
PWNED = "pwned.txt"  # the file a writing attack tries to create in Places.outside


@dataclass(frozen=True)
class Places:
    tree: Path  # where the archive will be extracted (prepare's workdir / "src")
    outside: Path  # a folder the caller owns: writing attacks aim here, it must stay empty
    secret: Path  # a file the caller owns: reading attacks aim here, its text must never show up


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str = "file"  # file | dir | symlink | hardlink | chr | fifo
    data: bytes = b""
    target: str = ""  # symlink / hardlink target
    zeros: int = 0  # file size in zero bytes (streamed, for the bombs)


@dataclass(frozen=True)
class Hostile:
    name: str  # file name without the extension
    fmt: str  # "zip" or "tar.gz"
    entries: Callable[[Places], Iterator[Entry]] | None  # None: `forged` makes the archive
    reason: str  # a regex the rejection message must match
    forged: Callable[[], bytes] | None = None  # the archive's bytes

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.fmt}"


def _climb(places: Places, to: Path) -> tuple[int, str]:
    """How many levels `to` is above the tree, and the path from there down to it."""
    parts = Path(os.path.relpath(to, places.tree)).parts
    up = sum(1 for p in parts if p == "..")
    return up, "/".join(parts[up:])


def _dotdot_chain(up: int) -> tuple[list[Entry], str]:
    """Links that each look inside the tree as text (`e2 -> e1/..`), but whose chain reaches `up`
    levels above it on disk; returns them and the name of the last one."""
    entries = [
        Entry("s/x", data=b"x"),
        Entry("s/up", "symlink", target=".."),
        Entry("e1", "symlink", target="s/up/.."),
    ]
    for i in range(2, up + 1):
        entries.append(Entry(f"e{i}", "symlink", target=f"e{i - 1}/.."))
    return entries, f"e{up}"


def _dot_chain(up: int) -> tuple[list[Entry], str]:
    """The classic chain: `a -> .`, then `a/l1 -> ..` (created at the top, pointing above it),
    `l1/l2 -> ..` (created through l1, above the tree), ...; returns the entries and the path
    that reaches `up` levels above the tree."""
    entries = [Entry("a", "symlink", target="."), Entry("a/l1", "symlink", target="..")]
    path = "l1"
    for i in range(2, up + 1):
        entries.append(Entry(f"{path}/l{i}", "symlink", target=".."))
        path += f"/l{i}"
    return entries, path


def _start() -> Iterator[Entry]:
    yield Entry("Dockerfile", data=DOCKERFILE)


def _zip_slip(p: Places) -> Iterator[Entry]:
    up, rest = _climb(p, p.outside)
    yield from _start()
    yield Entry("../" * up + f"{rest}/{PWNED}", data=b"zip slip")


def _absolute(p: Places) -> Iterator[Entry]:
    yield from _start()
    yield Entry(str(p.outside / PWNED), data=b"absolute")


def _windows_drive(p: Places) -> Iterator[Entry]:
    yield from _start()
    yield Entry("C:\\Users\\Public\\" + PWNED, data=b"drive")


def _backslashes(p: Places) -> Iterator[Entry]:
    up, rest = _climb(p, p.outside)
    yield from _start()
    yield Entry("..\\" * up + rest.replace("/", "\\") + "\\" + PWNED, data=b"backslash")


def _symlink_absolute(p: Places) -> Iterator[Entry]:
    yield from _start()
    yield Entry("out", "symlink", target=str(p.outside))
    yield Entry(f"out/{PWNED}", data=b"through an absolute link")


def _dot_chain_write(p: Places) -> Iterator[Entry]:
    up, rest = _climb(p, p.outside)
    chain, top = _dot_chain(up)
    yield from _start()
    yield from chain
    yield Entry(f"{top}/{rest}/{PWNED}", data=b"through a link chain")


def _dir_is_link_write(p: Places) -> Iterator[Entry]:
    up, rest = _climb(p, p.outside)
    chain, top = _dotdot_chain(up)
    yield from _start()
    yield from chain
    yield Entry(f"{top}/{rest}/{PWNED}", data=b"through a folder that is a link")


def _hardlink_absolute(p: Places) -> Iterator[Entry]:
    yield from _start()
    yield Entry("stolen.txt", "hardlink", target=str(p.secret))


def _hardlink_dotdot(p: Places) -> Iterator[Entry]:
    up, rest = _climb(p, p.secret)
    yield from _start()
    yield Entry("stolen.txt", "hardlink", target="../" * up + rest)


def _hardlink_chain(p: Places) -> Iterator[Entry]:
    up, rest = _climb(p, p.secret)
    chain, top = _dotdot_chain(up)
    yield from _start()
    yield from chain
    yield Entry("stolen.txt", "hardlink", target=f"{top}/{rest}")


def _symlink_read_chain(p: Places) -> Iterator[Entry]:
    """A link that looks inside as text but reads the secret on disk (COPY would follow it)."""
    up, rest = _climb(p, p.secret)
    chain, top = _dotdot_chain(up)
    yield from _start()
    yield from chain
    yield Entry("stolen.txt", "symlink", target=f"{top}/{rest}")


def _device(p: Places) -> Iterator[Entry]:
    yield from _start()
    yield Entry("null", "chr")


def _fifo(p: Places) -> Iterator[Entry]:
    yield from _start()
    yield Entry("pipe", "fifo")


def _many_dirs(p: Places) -> Iterator[Entry]:
    yield from _start()
    for i in range(100_000):
        yield Entry(f"d{i}/", "dir")


def _deep(p: Places) -> Iterator[Entry]:
    yield from _start()
    yield Entry("d/" * 1500 + "f.txt", data=b"deep")


def _many_files(p: Places) -> Iterator[Entry]:
    yield from _start()
    for i in range(6000):
        yield Entry(f"f{i}.txt")


def _bomb(p: Places) -> Iterator[Entry]:
    yield from _start()
    yield Entry("zeros.bin", zeros=101 * 2**20)


def _link_steps(p: Places) -> Iterator[Entry]:
    """1,000 links 29 folders deep, each inside the tree, whose 4 KB targets (`x/..` ×800) lean
    on a chain of 30 such links: the old check walked every chain again from the top, opening
    each folder at every step (about half an hour for this archive)."""
    where, pad = "d/" * 28, "x/../" * 800
    yield from _start()
    yield Entry(f"{where}f", data=b"f")
    yield Entry(f"{where}e0", "symlink", target=f"{pad}f")
    for i in range(1, 30):
        yield Entry(f"{where}e{i}", "symlink", target=f"{pad}e{i - 1}")
    for i in range(1000):
        yield Entry(f"{where}l{i}", "symlink", target=f"{pad}e29")


def _pax_flood() -> bytes:
    """A tar.gz whose one pax header holds 50 MiB of 6-byte records before its Dockerfile:
    tarfile reads the header whole and parses the records one by one (10 s)."""
    records = b"6 a=b\n" * (50 * 2**20 // 6)
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, len(records)
    member = tarfile.TarInfo("Dockerfile")
    member.size = len(DOCKERFILE)
    raw = b"".join(
        [
            header.tobuf(tarfile.USTAR_FORMAT),
            records + bytes(-len(records) % 512),
            member.tobuf(tarfile.USTAR_FORMAT),
            DOCKERFILE + bytes(-len(DOCKERFILE) % 512),
            bytes(1024),
        ]
    )
    return gzip.compress(raw, compresslevel=1)


_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")


def _zip_directory(count: int, *, zip64: bool) -> Callable[[], bytes]:
    """A zip whose central directory lists `count` folders `d/` (zipfile reads and parses it
    whole, as many entries as its bytes hold) and whose classic end record says 1 entry of 48
    bytes; with `zip64`, a zip64 end record (which zipfile believes) gives the true numbers."""

    def forge() -> bytes:
        entry = _CENTRAL.pack(
            *(b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0),
            *((stat.S_IFDIR | 0o755) << 16, 0),
        )
        directory = (entry + b"d/") * count
        end = b""
        if zip64:
            end += struct.pack(
                "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory), 0
            )
            end += struct.pack("<4sLQL", b"PK\x06\x07", 0, len(directory), 1)
            shown = 48
        else:
            shown = len(directory)  # the size is true, the count lies
        end += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, shown, 0, 0)
        return directory + end

    return forge


HOSTILE = [
    Hostile("zip-slip", "zip", _zip_slip, "outside the submission"),
    Hostile("tar-slip", "tar.gz", _zip_slip, "outside the submission"),
    Hostile("zip-absolute-name", "zip", _absolute, "outside the submission"),
    Hostile("tar-absolute-name", "tar.gz", _absolute, "outside the submission"),
    Hostile("zip-windows-drive", "zip", _windows_drive, "outside the submission"),
    Hostile("zip-backslash-dotdot", "zip", _backslashes, "outside the submission"),
    Hostile("zip-symlink-absolute-then-write", "zip", _symlink_absolute, "link .* outside"),
    Hostile("tar-symlink-chain-then-write", "tar.gz", _dot_chain_write, "through the link"),
    Hostile("tar-dir-is-link-then-write", "tar.gz", _dir_is_link_write, "through the link"),
    Hostile("zip-symlink-chain-then-write", "zip", _dir_is_link_write, "through the link"),
    Hostile("zip-dot-chain-then-write", "zip", _dot_chain_write, "through the link"),
    Hostile("tar-hardlink-absolute", "tar.gz", _hardlink_absolute, "outside the submission"),
    Hostile("tar-hardlink-dotdot", "tar.gz", _hardlink_dotdot, "outside the submission"),
    Hostile("tar-hardlink-through-chain", "tar.gz", _hardlink_chain, "through the link"),
    Hostile("tar-symlink-reads-host-file", "tar.gz", _symlink_read_chain, "link .* outside"),
    Hostile("zip-symlink-reads-host-file", "zip", _symlink_read_chain, "link .* outside"),
    Hostile("tar-char-device", "tar.gz", _device, "device or fifo"),
    Hostile("tar-fifo", "tar.gz", _fifo, "device or fifo"),
    Hostile("tar-100k-empty-dirs", "tar.gz", _many_dirs, "more than [0-9]+ (folders|entries)"),
    Hostile("zip-100k-empty-dirs", "zip", _many_dirs, "more than [0-9]+ (folders|entries)"),
    Hostile("tar-1500-deep", "tar.gz", _deep, "folders deep"),
    Hostile("zip-1500-deep", "zip", _deep, "folders deep"),
    Hostile("zip-6000-files", "zip", _many_files, "more than [0-9]+ (files|entries)"),
    Hostile("zip-bomb", "zip", _bomb, "MiB"),
    Hostile("tar-bomb", "tar.gz", _bomb, "MiB"),
    Hostile("tar-link-steps", "tar.gz", _link_steps, "links take more than [0-9]+ steps"),
    Hostile("zip-link-steps", "zip", _link_steps, "links take more than [0-9]+ steps"),
    Hostile("tar-pax-flood", "tar.gz", None, "extended headers .* more than", forged=_pax_flood),
    Hostile(
        "zip64-1m-entries",
        "zip",
        None,
        "more than [0-9]+ entries",
        forged=_zip_directory(1_200_000, zip64=True),
    ),
    Hostile(
        "zip-1m-entries-count-lies",
        "zip",
        None,
        "central directory is larger than",
        forged=_zip_directory(1_200_000, zip64=False),
    ),
]


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def _write_zip(path: Path, entries: Iterator[Entry]) -> None:
    modes = {
        "symlink": stat.S_IFLNK | 0o777,
        "chr": stat.S_IFCHR | 0o644,
        "fifo": stat.S_IFIFO | 0o644,
        "dir": stat.S_IFDIR | 0o755,
        "file": stat.S_IFREG | 0o644,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for e in entries:
            if e.kind == "hardlink":
                raise ValueError("zip archives have no hard links")
            info = zipfile.ZipInfo(e.name)
            info.create_system = 3  # unix: external_attr carries the mode
            info.external_attr = modes[e.kind] << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            if e.zeros:
                with zf.open(info, "w") as out:
                    for left in range(e.zeros, 0, -(1 << 20)):
                        out.write(bytes(min(left, 1 << 20)))
            else:
                zf.writestr(info, e.target.encode() if e.kind == "symlink" else e.data)


def _write_tar(path: Path, entries: Iterator[Entry]) -> None:
    types = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "chr": tarfile.CHRTYPE,
        "fifo": tarfile.FIFOTYPE,
    }
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = types[e.kind]
            info.mode = 0o755 if e.kind == "dir" else 0o644
            info.linkname = e.target
            if e.kind == "chr":
                info.devmajor, info.devminor = 1, 3
            if e.kind == "file":
                info.size = e.zeros or len(e.data)
                tf.addfile(
                    info, io.BufferedReader(_Zeros(e.zeros)) if e.zeros else io.BytesIO(e.data)
                )
            else:
                tf.addfile(info)


def write(hostile: Hostile, folder: Path, places: Places) -> Path:
    path = folder / hostile.filename
    if hostile.entries is None:
        assert hostile.forged is not None
        path.write_bytes(hostile.forged())
    else:
        writer = _write_zip if hostile.fmt == "zip" else _write_tar
        writer(path, hostile.entries(places))
    return path


def write_all(folder: Path, places: Places) -> dict[str, Path]:
    """Every hostile archive written into `folder`, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    return {h.name: write(h, folder, places) for h in HOSTILE}
