"""What a submission travels to a Dask worker as (grader.cluster.pack): no Docker needed."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from grader.batch import Submission
from grader.cluster import FOLDER, GIT, _checked, pack, unpack
from grader.core import GraderFault
from grader.submission import Limits, SubmissionRejected, prepare, tree_hash


def test_a_folder_travels_as_a_tar_the_grade_reads_as_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "alice"
    (folder / "app").mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (folder / "app" / "main.py").write_text("print('hi')\n")
    (folder / "run.sh").write_text("#!/bin/sh\n")
    (folder / "run.sh").chmod(0o755)
    os.symlink("app/main.py", folder / "link.py")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    name, data = pack(Submission("alice", str(folder)))
    assert name == FOLDER
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"app", "app/main.py", "Dockerfile", "run.sh", "link.py"}
    assert members["link.py"].issym() and members["link.py"].linkname == "app/main.py"
    # unpacked on the worker into a folder the grade prepares as it would the student's own
    there = unpack(name, data, tmp_path / "worker")
    assert there.is_dir() and os.readlink(there / "link.py") == "app/main.py"
    assert os.stat(there / "run.sh").st_mode & 0o111
    here = prepare(folder, workdir=tmp_path / "here")
    assert tree_hash(prepare(there, workdir=tmp_path / "there")) == tree_hash(here)


def test_a_folder_the_unpacking_refuses_goes_to_the_grade_as_a_tar(tmp_path: Path) -> None:
    folder = tmp_path / "mallory"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM python:3.11-slim\n")
    os.symlink("/etc/passwd", folder / "passwd")
    name, data = pack(Submission("mallory", str(folder)))
    there = unpack(name, data, tmp_path / "worker")
    assert there.name == "submission.tar" and there.read_bytes() == data
    with pytest.raises(SubmissionRejected, match="link"):
        prepare(there, workdir=tmp_path / "graded")


def test_an_archive_travels_as_it_is(tmp_path: Path) -> None:
    archive = tmp_path / "bob.tar.gz"
    archive.write_bytes(b"not really a tar, checked by the worker's grade")
    name, data = pack(Submission("bob", str(archive)))
    assert (name, data) == ("submission.tar.gz", archive.read_bytes())
    assert unpack(name, data, tmp_path / "worker").read_bytes() == data


def test_a_git_url_travels_as_its_url_and_ref() -> None:
    name, data = pack(Submission("carol", "file:///srv/git/carol.git", "v1"))
    assert name == GIT and json.loads(data) == {"url": "file:///srv/git/carol.git", "ref": "v1"}


def test_what_cannot_travel_is_a_grader_fault(tmp_path: Path) -> None:
    with pytest.raises(GraderFault, match="git repository with a ref"):
        pack(Submission("carol", str(tmp_path), "main"))
    with pytest.raises(GraderFault, match="not found"):
        pack(Submission("carol", str(tmp_path / "nowhere")))
    big = tmp_path / "dave"
    big.mkdir()
    (big / "blob").write_bytes(b"x" * 1024)
    with pytest.raises(GraderFault, match="more than"):
        pack(Submission("dave", str(big)), Limits(max_bytes=1000))


def test_a_hard_link_travels_as_the_file_it_names(tmp_path: Path) -> None:
    """A second name of a file (a hard link) is graded on the worker as on the batch's machine."""
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (folder / "a.py").write_text("print('a')\n")
    os.link(folder / "a.py", folder / "b.py")
    there = unpack(*pack(Submission("alice", str(folder))), tmp_path / "worker")
    assert (there / "b.py").read_text() == "print('a')\n"
    here = prepare(folder, workdir=tmp_path / "here")
    assert tree_hash(prepare(there, workdir=tmp_path / "there")) == tree_hash(here)


@pytest.mark.parametrize(
    "answer",
    [
        {"files": {"../../index.html": "<script>"}, "entry": {"status": "graded"}},
        {"files": {"/etc/cron.d/x": "* * * * *"}, "entry": {"status": "graded"}},
        {"files": {}, "entry": {"status": "graded", "score": True}},
        {"files": {}, "entry": {"status": "graded", "score": "100"}},
        {"files": {}, "entry": {"status": "excellent", "score": 100}},
        {"files": {}, "entry": {"status": "graded", "report": "../other/report.html"}},
        {"files": "report.html", "entry": {}},
    ],
)
def test_a_workers_answer_is_checked_before_the_client_writes_it(answer: dict[str, Any]) -> None:
    """Only the result files by their own names and an entry of known fields and types: nothing a
    worker (or whoever answers in its name) sends becomes a path or a grade of its choosing."""
    with pytest.raises(ValueError):
        _checked(answer)
    files, entry = _checked(
        {"files": {"full.json": "{}"}, "entry": {"status": "graded", "score": 90.0, "worker": "w1"}}
    )
    assert files == {"full.json": "{}"} and entry["score"] == 90.0
