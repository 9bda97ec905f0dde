"""grader.appclient against a local server that stalls, trickles and floods (no Docker, fast)."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import requests

from grader import appclient
from grader.core import Guard


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peers: list[str] = []  # noqa: RUF012 - the source address of every request, in order

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.peers.append(self.client_address[0])
        if self.path == "/ok":
            self._send(b'{"ok": true}', {"Set-Cookie": "session=abc; Path=/"})
        elif self.path == "/hold":  # accepts, never answers
            time.sleep(30)
        elif self.path == "/endless":  # as fast as the client reads
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            chunk = b" " * 65536
            while True:
                self.wfile.write(chunk)
        elif self.path == "/trickle":  # one byte at a time, status line included
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        elif self.path == "/bomb":  # 2 MB of gzip that unpacks to 300 MB
            self._send(gzip.compress(b"\0" * 300 * 2**20, 9), {"Content-Encoding": "gzip"})

    def _send(self, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hung up on purpose


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _client(
    guard: Guard, base: str, timeout: float = 1.0, local: str | None = None
) -> httpx.Client:
    return appclient.client(
        guard, local, base_url=base, timeout=httpx.Timeout(timeout, connect=1.0)
    )


def _no_answer(http: httpx.Client, path: str) -> tuple[str, float]:
    begin = time.monotonic()
    with pytest.raises(appclient.NoAnswer) as caught:
        http.get(path)
    return str(caught.value), time.monotonic() - begin


def test_an_answer_passes_unchanged(server: str) -> None:
    with _client(Guard(), server) as http:
        response = http.get("/ok")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert response.cookies["session"] == "abc"


def test_a_held_request_ends_at_its_total_time(server: str) -> None:
    with _client(Guard(), server, timeout=0.5) as http:
        message, seconds = _no_answer(http, "/hold")
    assert message == "GET /hold did not answer within 0.5 s"
    assert seconds < 1.5


def test_a_trickle_is_cut_at_the_total_time_not_per_read(server: str) -> None:
    """Each byte comes within the read timeout; the request as a whole may not take longer."""
    with _client(Guard(), server, timeout=1.0) as http:
        message, seconds = _no_answer(http, "/trickle")
    assert message == "GET /trickle did not answer within 1 s"
    assert seconds < 2


def test_an_endless_body_is_cut_at_the_cap(server: str) -> None:
    with _client(Guard(max_body=2 * 2**20), server, timeout=10) as http:
        message, seconds = _no_answer(http, "/endless")
    assert message == "GET /endless: the body exceeded 2 MB"
    assert seconds < 5


def test_the_cap_counts_decoded_bytes(server: str) -> None:
    with _client(Guard(), server, timeout=10) as http:
        message, _ = _no_answer(http, "/bomb")
    assert message == "GET /bomb: the body exceeded 2 MB"


def test_timeouts_in_a_row_stop_all_later_requests(server: str) -> None:
    guard = Guard(strikes=3)
    with _client(guard, server, timeout=0.3) as http:
        _no_answer(http, "/hold")
        assert http.get("/ok").status_code == 200  # an answer: the count starts again
        _no_answer(http, "/hold")
        _no_answer(http, "/hold")
        message, _ = _no_answer(http, "/hold")
        assert message == (
            "GET /hold did not answer within 0.3 s; the app stopped answering: "
            "later requests not sent"
        )
        message, seconds = _no_answer(http, "/ok")
    assert message.startswith("GET /ok not sent: the app stopped answering (3 requests in a row")
    assert seconds < 0.05
    assert "GET /hold did not answer within 0.3 s" in guard.stopped


def test_requests_sent_together_do_not_trip_the_breaker(server: str) -> None:
    guard = Guard(strikes=1)
    with appclient.client(guard, count=False, base_url=server, timeout=0.3) as http:
        _no_answer(http, "/hold")
        assert http.get("/ok").status_code == 200


def test_past_the_deadline_nothing_is_sent(server: str) -> None:
    guard = Guard()
    guard.start_deadline(0.5)
    sent = len(Handler.peers)
    with _client(guard, server, timeout=10) as http:
        message, seconds = _no_answer(http, "/hold")  # cut by the deadline, not its own 10 s
        assert message == "GET /hold got no answer before the checks' time limit of 0.5 s ran out"
        assert seconds < 1.5
        message, _ = _no_answer(http, "/ok")
    assert message == "GET /ok not sent: the checks' time limit of 0.5 s ran out"
    assert len(Handler.peers) == sent + 1


def test_sockets_bind_to_the_local_address(server: str) -> None:
    with _client(Guard(), server, local="127.0.0.2") as http:
        assert http.get("/ok").status_code == 200
    assert Handler.peers[-1] == "127.0.0.2"


def test_an_address_this_host_lacks_sends_nothing(server: str) -> None:
    """A vanished network takes its gateway address with it: the request fails, never leaves
    by another interface."""
    sent = len(Handler.peers)
    with (
        _client(Guard(), server, local="10.255.255.254") as http,
        pytest.raises(httpx.ConnectError),
    ):
        http.get("/ok")
    assert len(Handler.peers) == sent


def test_no_proxy_from_the_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "")
    with _client(Guard(), server) as http:
        assert http.get("/ok").status_code == 200
    with appclient.session(Guard()) as session:
        assert session.get(f"{server}/ok", timeout=1).status_code == 200


def test_requests_sessions_get_the_same_bounds(server: str) -> None:
    guard = Guard(strikes=2)
    with appclient.session(guard, "127.0.0.2") as session:
        answer = session.get(f"{server}/ok", timeout=(1, 1))
        assert answer.json() == {"ok": True} and session.cookies["session"] == "abc"
        assert Handler.peers[-1] == "127.0.0.2"
        with pytest.raises(appclient.NoAnswerError, match="the body exceeded 2 MB"):
            session.get(f"{server}/endless", timeout=10)
        begin = time.monotonic()
        with pytest.raises(requests.Timeout, match="did not answer within 1 s"):
            session.get(f"{server}/trickle", timeout=1)
        assert time.monotonic() - begin < 2
        with pytest.raises(appclient.NoAnswerError, match="later requests not sent"):
            session.get(f"{server}/hold", timeout=0.3)
        with pytest.raises(appclient.NoAnswerError, match="GET /ok not sent"):
            session.get(f"{server}/ok", timeout=1)
