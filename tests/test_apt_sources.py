"""The Debian mirror of the offline images comes from the machine's own APT sources (issue 11 §8):
both formats, APT's file order, and only an http(s) archive that serves the suite's `main`."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import offline
from grader.core import GraderFault


def _apt(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_one_line_format(tmp_path: Path) -> None:
    apt = _apt(
        tmp_path,
        {
            "sources.list": (
                "# deb http://old.example.edu/debian bookworm main\n"
                "deb-src http://src.example.edu/debian bookworm main\n"
                "deb cdrom:[Debian 12]/ bookworm main\n"
                "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.example.edu/debian/ "
                "bookworm main contrib  # the university's\n"
                "deb http://later.example.edu/debian bookworm main\n"
            )
        },
    )
    assert offline.apt_mirror("bookworm", apt) == "http://mirror.example.edu/debian/"


def test_deb822_format(tmp_path: Path) -> None:
    apt = _apt(
        tmp_path,
        {
            "sources.list.d/debian.sources": (
                "Types: deb\n"
                "URIs: https://off.example.edu/debian\n"
                "Suites: bookworm\n"
                "Components: main\n"
                "Enabled: no\n"
                "\n"
                "Types: deb deb-src\n"
                "# a comment inside the stanza\n"
                "URIs: ftp://ftp.example.edu/debian\n"
                "  https://mirror.example.edu/debian\n"
                "Suites: bookworm-updates\n"
                "  bookworm\n"
                "Components: contrib main\n"
                "\n"
                "Types: deb\n"
                "URIs: http://mirror.example.edu/debian-security\n"
                "Suites: bookworm-security\n"
                "Components: main\n"
            )
        },
    )
    assert offline.apt_mirror("bookworm", apt) == "https://mirror.example.edu/debian"
    assert (
        offline.apt_mirror("bookworm-security", apt) == "http://mirror.example.edu/debian-security"
    )


def test_sources_list_first_then_the_folder_in_name_order(tmp_path: Path) -> None:
    stanza = "Types: deb\nURIs: http://{}.example.edu/debian\nSuites: bookworm\nComponents: main\n"
    files = {
        "sources.list.d/b.sources": stanza.format("b"),
        "sources.list.d/a.list": "deb http://a.example.edu/debian bookworm main\n",
        "sources.list.d/0.list.disabled": "deb http://off.example.edu/debian bookworm main\n",
    }
    assert offline.apt_mirror("bookworm", _apt(tmp_path, files)) == "http://a.example.edu/debian"
    _apt(tmp_path, {"sources.list": "deb http://main.example.edu/debian bookworm main\n"})
    assert offline.apt_mirror("bookworm", tmp_path) == "http://main.example.edu/debian"


def test_other_suites_and_components_do_not_count(tmp_path: Path) -> None:
    apt = _apt(
        tmp_path,
        {
            "sources.list": (
                "deb http://tools.example.edu/apt tools-bookworm main\n"
                "deb http://mirror.example.edu/debian bookworm contrib non-free\n"
                "deb http://mirror.example.edu/debian-security bookworm-security main\n"
            )
        },
    )
    assert offline.apt_mirror("bookworm", apt) is None
    assert offline.apt_mirror("bookworm", tmp_path / "missing") is None


def test_no_mirror_is_a_fault_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(offline, "APT_DIR", tmp_path)
    with pytest.raises(GraderFault, match="--mirror"):
        offline._mirror("bookworm")
