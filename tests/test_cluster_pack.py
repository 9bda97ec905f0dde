"""What a submission travels to a Dask worker as (grader.cluster.pack): no Docker needed."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from grader.batch import Submission
from grader.cluster import pack
from grader.core import GraderFault
from grader.submission import Limits, prepare, tree_hash


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
    assert name == "submission.tar"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"app", "app/main.py", "Dockerfile", "run.sh", "link.py"}
    assert members["link.py"].issym() and members["link.py"].linkname == "app/main.py"
    sent = tmp_path / name
    sent.write_bytes(data)
    # the worker's grade prepares the tar as it would the folder: the same tree, the same hash
    here = prepare(folder, workdir=tmp_path / "here")
    there = prepare(sent, workdir=tmp_path / "there")
    assert tree_hash(there) == tree_hash(here)


def test_an_archive_travels_as_it_is(tmp_path: Path) -> None:
    archive = tmp_path / "bob.tar.gz"
    archive.write_bytes(b"not really a tar, checked by the worker's grade")
    assert pack(Submission("bob", str(archive))) == ("submission.tar.gz", archive.read_bytes())


def test_what_cannot_travel_is_a_grader_fault(tmp_path: Path) -> None:
    with pytest.raises(GraderFault, match="git"):
        pack(Submission("carol", "https://example.invalid/carol.git"))
    big = tmp_path / "dave"
    big.mkdir()
    (big / "blob").write_bytes(b"x" * 1024)
    with pytest.raises(GraderFault, match="more than"):
        pack(Submission("dave", str(big)), Limits(max_bytes=1000))
