"""The hostile corpus, graded in one batch: a clear reason each, the batch goes on, the host stays
healthy, nothing is left running, and nothing a submission prints or writes sets its score."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker import DockerClient
from host_listener import HostListener, host_addresses
from hostile import corpus
from mini_assignment import make_submission

from grader.engine import leftovers

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def outbound_listener() -> Iterator[HostListener]:
    """What outbound-connection phones home to: a listener on this host, nothing beyond it."""
    with HostListener() as listener:
        yield listener


def _aim(submission: Path, listener: HostListener) -> Path:
    """Tell outbound-connection where the listener is: its port, every address of this host."""
    (submission / "targets.json").write_text(
        json.dumps({"port": listener.port, "hosts": host_addresses()})
    )
    return submission


@pytest.fixture(scope="module")
def graded(
    mini: Path, tmp_path_factory: pytest.TempPathFactory, outbound_listener: HostListener
) -> tuple[Path, dict[str, dict[str, str]]]:
    source = tmp_path_factory.mktemp("hostile") / "class"
    corpus.write_all(source)
    _aim(source / "outbound-connection", outbound_listener)
    make_submission(source / "honest")
    with zipfile.ZipFile(source / "zip-slip.zip", "w") as zf:
        zf.writestr("Dockerfile", "FROM python:3.11-slim\n")
        zf.writestr("../../../tmp/owned.txt", "x")
    with tarfile.open(source / "symlink-out.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 23
        tf.addfile(info, io.BytesIO(b"FROM python:3.11-slim\n\n"))
        link = tarfile.TarInfo("passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    out = source.parent / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "batch",
            str(source),
            "--assignment",
            str(mini),
            "--out",
            str(out),
            "--jobs",
            "2",
            "--build-timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "grades.csv").open(newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    return out, rows


def _reason(out: Path, student: str) -> str:
    return str(json.loads((out / student / "results.json").read_text())["extra_data"]["reason"])


def _full(out: Path, student: str) -> dict[str, object]:
    return json.loads((out / student / "full.json").read_text())


def test_every_submission_has_exactly_one_result(
    graded: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    _out, rows = graded
    expected = {*corpus.names(), "honest", "zip-slip", "symlink-out"}
    assert set(rows) == expected
    assert len(rows) >= 15
    assert rows["honest"]["score"] == "100", "the batch goes on and grades honest work fully"
    assert all(r["status"] != "not_graded" for r in rows.values())


@pytest.mark.parametrize(
    ("student", "status", "reason"),
    [
        ("fork-bomb", "start_failed", "not healthy within 8 s"),
        ("memory-hog", "start_failed", "out of memory"),
        ("never-ready", "start_failed", "answered 503"),
        ("exits-at-once", "start_failed", "exited with code 1"),
        ("never-ends-build", "build_failed", "longer than 20 s"),
        ("bad-dockerfile", "build_failed", "docker build failed"),
        ("zip-slip", "rejected", "outside the submission"),
        ("symlink-out", "rejected", "points outside"),
    ],
)
def test_clear_reason(
    graded: tuple[Path, dict[str, dict[str, str]]], student: str, status: str, reason: str
) -> None:
    out, rows = graded
    assert rows[student]["status"] == status
    assert reason in _reason(out, student)
    assert reason in (out / student / "report.html").read_text()


def test_slow_and_huge_answers_fail_their_checks_in_bounded_time(
    graded: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    out, rows = graded
    for student in ("sleeps-on-every-request", "huge-response"):
        assert rows[student]["status"] == "graded"
        assert float(rows[student]["score"]) < 100
    journal = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    assert max(e["seconds"] for e in journal) < 300


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        ("endless-body", "GET /hello: the body exceeded 2 MB"),
        ("holds-requests-open", "GET /hello did not answer within 10 s"),
        ("trickles", "GET /hello did not answer within 10 s"),
    ],
)
def test_no_usable_answer_is_graded_with_its_cause(
    graded: tuple[Path, dict[str, dict[str, str]]], student: str, cause: str
) -> None:
    out, rows = graded
    assert rows[student]["status"] == "graded"
    assert rows[student]["score"] == "75"  # builds, starts, the /hello test that sends nothing
    items = json.loads((out / student / "full.json").read_text())["items"]
    hello = next(i for i in items if i["id"] == "hello")
    assert any(cause in o["message"] for o in hello["outcomes"])
    assert cause in (out / student / "report.html").read_text()


def test_log_flood_is_capped(graded: tuple[Path, dict[str, dict[str, str]]]) -> None:
    out, rows = graded
    assert rows["log-flood"]["score"] == "100"
    assert len(str(_full(out, "log-flood")["app_log"])) <= 8000


def test_no_route_out_of_the_sandbox(
    graded: tuple[Path, dict[str, dict[str, str]]], outbound_listener: HostListener
) -> None:
    out, rows = graded
    assert rows["outbound-connection"]["score"] == "100", "it answers 'online' only if it got out"
    log = str(_full(out, "outbound-connection")["app_log"])
    aimed = json.loads((out.parent / "class" / "outbound-connection" / "targets.json").read_text())
    for host in aimed["hosts"]:
        assert f"outbound connection to {host}:{outbound_listener.port}: blocked" in log
    assert "reachable" not in log
    assert outbound_listener.peers == []


def test_the_outbound_check_can_fail(
    mini: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: the same submission on a routed network outside the firewall gets out (and is
    caught). `isolate=False` alone is no longer such a network: the firewall drops what reaches the
    host from any `agr…` bridge, so the grader's network gets a bridge name the rules do not match."""
    from grader import firewall
    from grader.pipeline import grade

    monkeypatch.setattr(firewall, "bridge_name", lambda suffix=None: f"ctl-{uuid.uuid4().hex[:11]}")
    submission = corpus.write("outbound-connection", tmp_path / "outbound-connection")
    with HostListener() as listener:
        result = grade(
            submission_path=_aim(submission, listener),
            assignment=mini,
            out=tmp_path / "out",
            isolate=False,
        )
        assert listener.peers, "the listener on the host was reached"
    assert result.score == 75
    assert (
        f"outbound connection to {host_addresses()[0]}:{listener.port}: reachable" in result.app_log
    )


def test_printing_or_writing_a_score_changes_nothing(
    graded: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    out, rows = graded
    for student in ("fake-score", "writes-results-everywhere"):
        assert (
            rows[student]["score"] == "75"
        )  # builds, starts, half of /hello; the claim is ignored
        data = json.loads((out / student / "results.json").read_text())
        assert data["score"] == 75 and "hacked" not in json.dumps(data)
    assert not Path("/tmp/owned.txt").exists()


def test_host_healthy_and_nothing_left_running(
    graded: tuple[Path, dict[str, dict[str, str]]], docker_client: DockerClient
) -> None:
    assert docker_client.ping()
    out, _rows = graded
    # this batch's runs only: a grade running beside the suite on the same engine is not ours
    journal = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    assert not leftovers(docker_client, runs={e["run_id"] for e in journal})


def test_answers_no_utf8_writer_accepts_are_graded(
    graded: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    """A lone surrogate in an answer's JSON reaches expected/actual texts and reproducer scripts:
    the grade is still written (escaped), never "not graded"."""
    out, rows = graded
    assert rows["surrogate-answers"]["status"] == "graded"
    # builds, starts, the /hello test that sends nothing; the greeting is wrong
    assert rows["surrogate-answers"]["score"] == "75"
    hello = next(i for i in _full(out, "surrogate-answers")["items"] if i["id"] == "hello")  # type: ignore[union-attr]
    assert "\\ud800" in json.dumps(hello), "kept, as its escape"
    assert "greeting" in (out / "surrogate-answers" / "report.html").read_text()
