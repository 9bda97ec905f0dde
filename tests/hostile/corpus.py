"""The hostile corpus as submissions: each folder here with a Dockerfile is one. Their apps (an
app.py) keep only what is particular to them and share tests/stub_server.py, which `write` copies
into each app's build context, so every submission written out builds on its own."""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE.parent / "stub_server.py"


def names() -> list[str]:
    return sorted(p.name for p in HERE.iterdir() if (p / "Dockerfile").is_file())


def write(name: str, dest: Path) -> Path:
    """Submission `name` as a self-contained build context at `dest` (which must not exist)."""
    shutil.copytree(HERE / name, dest, ignore=shutil.ignore_patterns("__pycache__"))
    if (dest / "app.py").is_file():
        shutil.copy2(SERVER, dest / SERVER.name)
    return dest


def write_all(dest: Path, prefix: str = "") -> list[Path]:
    """Every submission of the corpus, as `dest/<prefix><name>`."""
    return [write(name, dest / f"{prefix}{name}") for name in names()]
