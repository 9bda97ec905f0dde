"""Every hostile archive of tests/hostile/archives.py is refused by submission.prepare, by name and
in under 5 s, and nothing is written or read outside the work folder — extracted by the child as
uid 65534 (the grader is root in CI) and as the grader's own user alike. Attacks aim only at
folders these tests own."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest
from hostile.archives import HOSTILE, Hostile, Places, write

from grader import submission
from grader.core import SubmissionRejected
from grader.submission import Limits, prepare

ROOT = Path(__file__).resolve().parents[1]
SECRET = "TOP-SECRET-5f3a"
MODES = {"as-65534": Limits(), "as-grader": Limits(extract_as=None)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """The archives, written once; every run extracts into base/runs/<id>/work/src, the same
    number of levels below `outside` and `secret` as Places.tree."""
    base = tmp_path_factory.mktemp("hostile-archives")
    (base / "outside").mkdir()
    # writable by anyone: only the code stops the in-process run (root); uid 65534 cannot even
    # reach it (pytest's folders are private), a second wall
    (base / "outside").chmod(0o777)
    (base / "secrets").mkdir()
    (base / "secrets" / "secret.txt").write_text(SECRET)
    places = Places(
        tree=base / "runs" / "template" / "work" / "src",
        outside=base / "outside",
        secret=base / "secrets" / "secret.txt",
    )
    (base / "archives").mkdir()
    return base, {h.name: write(h, base / "archives", places) for h in HOSTILE}


def _assert_contained(base: Path, run: Path) -> None:
    """Nothing outside `run/work/src` was written, and the refused tree itself is gone."""
    assert list((base / "outside").iterdir()) == []
    assert (base / "secrets" / "secret.txt").read_text() == SECRET
    assert sorted(p.name for p in base.iterdir()) == ["archives", "outside", "runs", "secrets"]
    assert sorted(p.name for p in (base / "secrets").iterdir()) == ["secret.txt"]
    assert [p.name for p in run.iterdir()] == ["work"]
    assert list((run / "work").iterdir()) == [], "a refused tree is removed, links and all"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.name)
def test_hostile_archive_is_refused_by_name(
    corpus: tuple[Path, dict[str, Path]], hostile: Hostile, mode: str
) -> None:
    base, archives = corpus
    run = base / "runs" / f"{hostile.name}-{mode}"
    started = time.monotonic()
    with pytest.raises(SubmissionRejected, match=hostile.reason) as refused:
        prepare(archives[hostile.name], workdir=run / "work", limits=MODES[mode])
    assert time.monotonic() - started < 5
    assert str(refused.value).endswith("refused")
    assert SECRET not in str(refused.value)
    _assert_contained(base, run)


def test_tar_attacks_are_refused_without_tarfiles_filter(
    corpus: tuple[Path, dict[str, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python before 3.11.4 (Debian 12's 3.11.2) has no tarfile.data_filter: the module's own
    checks refuse every tar attack the same way."""
    monkeypatch.setattr(submission, "_DATA_FILTER", None)  # the fork inherits it
    base, archives = corpus
    for hostile in (h for h in HOSTILE if h.fmt == "tar.gz"):
        run = base / "runs" / f"{hostile.name}-no-filter"
        with pytest.raises(SubmissionRejected, match=hostile.reason):
            prepare(archives[hostile.name], workdir=run / "work")
        _assert_contained(base, run)


@pytest.mark.parametrize("mode", MODES)
def test_links_inside_the_tree_are_kept(tmp_path: Path, mode: str) -> None:
    """In-tree links (also through other links) stay links; a hard link is a copy of its file."""
    archive = tmp_path / "ok.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, kind, target, data in [
            ("Dockerfile", tarfile.REGTYPE, "", b"FROM x\n"),
            ("src/lib/util.py", tarfile.REGTYPE, "", b"X = 1\n"),
            ("lib", tarfile.SYMTYPE, "src/lib", b""),
            ("alias.py", tarfile.SYMTYPE, "lib/util.py", b""),
            ("src/up", tarfile.SYMTYPE, "..", b""),
            ("copy.py", tarfile.LNKTYPE, "src/lib/util.py", b""),
        ]:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, target, len(data)
            tf.addfile(info, io.BytesIO(data))
    root = prepare(archive, workdir=tmp_path / "w", limits=MODES[mode])
    assert os.readlink(root / "alias.py") == "lib/util.py"
    assert (root / "alias.py").read_text() == "X = 1\n"
    assert (root / "copy.py").read_text() == "X = 1\n" and not (root / "copy.py").is_symlink()
    assert (root / "src" / "up" / "Dockerfile").is_file()


def test_archives_are_extracted_by_an_unprivileged_user(tmp_path: Path) -> None:
    archive = tmp_path / "ok.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("app/Dockerfile")
        info.size = 7
        tf.addfile(info, io.BytesIO(b"FROM x\n"))
    root = prepare(archive, workdir=tmp_path / "w")
    owner = 65534 if os.geteuid() == 0 else os.geteuid()
    assert {p.stat().st_uid for p in [root.parent, root, root / "Dockerfile"]} == {owner}


@pytest.mark.parametrize("mode", MODES)
def test_a_slow_or_crashing_child_is_a_named_rejection(tmp_path: Path, mode: str) -> None:
    """Every archive is extracted in a child with a deadline and a memory cap, whatever user
    extracts it (the grader's own user had neither: a MemoryError was a traceback)."""
    archive = tmp_path / "big.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 50 * 2**20
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    base = MODES[mode]
    slow = Limits(extract_as=base.extract_as, extract_timeout=0.01)
    with pytest.raises(SubmissionRejected, match=r"took longer than 0\.01 s"):
        prepare(archive, workdir=tmp_path / "slow", limits=slow)
    # A 6 MiB pax record must be held in memory whole. In a fresh interpreter: a long-lived
    # process (this test run) may have that much free heap already, which the cap does not count.
    bulky = tmp_path / "pax.tar"
    with tarfile.open(bulky, "w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.pax_headers = 7, {"comment": "x" * (6 << 20)}
        tf.addfile(info, io.BytesIO(b"FROM x\n"))
    script = textwrap.dedent(f"""
        from pathlib import Path
        from grader.core import SubmissionRejected
        from grader.submission import Limits, prepare
        try:
            prepare(Path({str(bulky)!r}), workdir=Path({str(tmp_path / "oom")!r}),
                    limits=Limits(extract_as={base.extract_as!r}, extract_memory=1 << 20))
        except SubmissionRejected as exc:
            print(exc)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert "needs more than 1 MiB of memory" in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "slow" / "src").exists() and not (tmp_path / "oom" / "src").exists()


def test_the_link_check_runs_under_the_childs_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It ran in the grader after the child, with no time limit (a tiny tar took minutes)."""

    def slow_check(top: int, limits: Limits) -> None:
        time.sleep(30)

    monkeypatch.setattr(submission, "_check_links", slow_check)  # the fork inherits it
    archive = tmp_path / "ok.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 7
        tf.addfile(info, io.BytesIO(b"FROM x\n"))
    started = time.monotonic()
    with pytest.raises(SubmissionRejected, match=r"took longer than 1 s"):
        prepare(archive, workdir=tmp_path / "w", limits=Limits(extract_timeout=1))
    assert time.monotonic() - started < 5


def test_a_user_namespace_without_uid_65534_extracts_as_the_grader(tmp_path: Path) -> None:
    """In a user namespace that maps only root (`unshare -Ur`), giving the folder to 65534 fails
    with EINVAL: it was a traceback; the child now extracts as the grader's own user."""
    if subprocess.run(["unshare", "-Ur", "true"], check=False).returncode != 0:
        pytest.skip("this machine does not allow user namespaces")
    archive = tmp_path / "ok.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 7
        tf.addfile(info, io.BytesIO(b"FROM x\n"))
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from grader.submission import prepare
        try:
            os.chown({str(tmp_path)!r}, 65534, 65534)
        except OSError as exc:
            print("no uid 65534:", exc.strerror)
        root = prepare(Path({str(archive)!r}), workdir=Path({str(tmp_path / "w")!r}))
        print("owner", (root / "Dockerfile").stat().st_uid, (root / "Dockerfile").read_text())
        """
    )
    done = subprocess.run(
        ["unshare", "-Ur", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "no uid 65534: Invalid argument" in done.stdout
    assert "owner 0 FROM x" in done.stdout


@pytest.mark.parametrize(
    "name",
    [
        "tar-symlink-chain-then-write",
        "tar-1500-deep",
        "tar-100k-empty-dirs",
        "tar-link-steps",
        "tar-pax-flood",
    ],
)
def test_cli_grade_reports_the_refusal(mini: Path, tmp_path: Path, name: str) -> None:
    """`grader grade` ends with exit 0 and a "rejected" result naming the reason, in under 5 s,
    without a Docker engine (DOCKER_HOST is a socket that does not exist)."""
    hostile = next(h for h in HOSTILE if h.name == name)
    tmp = tmp_path / "tmp"  # the pipeline's work folder is tmp/grader-*/submission/src
    tmp.mkdir()
    (tmp_path / "outside").mkdir(mode=0o777)
    (tmp_path / "secret.txt").write_text(SECRET)
    places = Places(
        tree=tmp / "grader-x" / "submission" / "src",
        outside=tmp_path / "outside",
        secret=tmp_path / "secret.txt",
    )
    archive = write(hostile, tmp_path, places)
    out = tmp_path / "out"
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock", "TMPDIR": str(tmp)}
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "grade",
            str(archive),
            "--assignment",
            str(mini),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert time.monotonic() - started < 5, "refusing an archive takes seconds, not minutes"
    assert done.returncode == 0, done.stdout + done.stderr
    extra = json.loads((out / "results.json").read_text())["extra_data"]
    assert extra["status"] == "rejected"
    assert re.search(hostile.reason, extra["reason"])
    assert re.search(hostile.reason, (out / "report.html").read_text())
    assert "Traceback" not in done.stdout + done.stderr
    assert list((tmp_path / "outside").iterdir()) == []
    assert list(tmp.iterdir()) == [], "the work folder is removed"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["tmp", "outside", "secret.txt", "out", archive.name]
    )
