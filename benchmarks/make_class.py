"""Lay out a realistic class for `grader batch`: the reference, every mutant and correct variant,
the same mutant five times (reproducibility), and the hostile corpus.

    python benchmarks/make_class.py OUT_DIR
    grader batch OUT_DIR --assignment fastapi-db-auth --out out/class --jobs 2
    python benchmarks/mutation_bench.py --from-batch out/class

The hostile submissions are written for the tiny `mini` assignment of the tests; graded against
fastapi-db-auth they still have to end in a clear fault each, which is what a batch must survive.
"""

from __future__ import annotations

import io
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from hostile import corpus  # noqa: E402
from mutants import load, materialize  # noqa: E402

REPEATS = 5


def main() -> None:
    dest = Path(sys.argv[1])
    dest.mkdir(parents=True, exist_ok=False)
    shutil.copytree(
        ROOT / "reference_solution" / "fastapi-db-auth",
        dest / "reference",
        ignore=shutil.ignore_patterns("tests", "__pycache__", ".pytest_cache"),
    )
    mutants = load("fastapi-db-auth")
    for m in mutants:
        prefix = "variant" if m.kind == "variant" else "mutant"
        materialize(m, dest / f"{prefix}-{m.name}")
    first = next(m for m in mutants if m.kind == "mutant")
    for i in range(1, REPEATS + 1):
        shutil.copytree(dest / f"mutant-{first.name}", dest / f"repeat{i}-{first.name}")
    corpus.write_all(dest, prefix="hostile-")
    with zipfile.ZipFile(dest / "hostile-zip-slip.zip", "w") as zf:
        zf.writestr("Dockerfile", "FROM python:3.11-slim\n")
        zf.writestr("../../evil.txt", "x")
    with tarfile.open(dest / "hostile-symlink-out.tar.gz", "w:gz") as tf:
        data = b"FROM python:3.11-slim\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    print(f"{len(list(dest.iterdir()))} submissions in {dest}")


if __name__ == "__main__":
    main()
