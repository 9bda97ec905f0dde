"""grader.appclient against a local server that stalls, trickles, floods, sends compression bombs
and redirects elsewhere (no Docker, fast)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import struct
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import requests

from grader import appclient
from grader.core import Guard, Target

SPECS = Path(__file__).parent.parent / "specs"
SMALL = json.dumps({"ok": True, "n": list(range(50))}).encode()


def zeros(megabytes: int, coding: str) -> bytes:
    """`megabytes` MB of zeros as a "gzip", "zlib" or "raw" deflate stream, made of one compressed
    megabyte repeated (a full flush makes every one alike): no need to compress a gigabyte."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    mb = b"\0" * 2**20
    raw = (deflate.compress(mb) + deflate.flush(zlib.Z_FULL_FLUSH)) * megabytes + deflate.flush()
    crc, adler = 0, 1
    for _ in range(megabytes if coding != "raw" else 0):
        crc, adler = zlib.crc32(mb, crc), zlib.adler32(mb, adler)
    if coding == "gzip":
        size = (megabytes << 20) & 0xFFFFFFFF
        return b"\x1f\x8b\x08\0\0\0\0\0\x02\xff" + raw + struct.pack("<II", crc, size)
    return b"\x78\xda" + raw + struct.pack(">I", adler) if coding == "zlib" else raw


def compressed(body: bytes, coding: str) -> bytes:
    wbits = {"gzip": 31, "zlib": 15, "raw": -15}[coding]
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return packer.compress(body) + packer.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peers: list[str] = []  # noqa: RUF012 - the source address of every request, in order
    bodies: dict[str, bytes] = {}  # noqa: RUF012 - the compressed answers, made once by `server`

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def do_GET(self) -> None:
        self.peers.append(self.client_address[0])
        path, _, query = self.path.partition("?")
        coding = path.rsplit("-", 1)[-1]
        deflate = {"gzip": "gzip", "zlib": "deflate", "raw": "deflate"}.get(coding, "")
        if path == "/redirect":  # 307 to wherever ?to= says
            self.send_response(307)
            self.send_header("Location", parse_qs(query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path.startswith("/zeros-"):  # a gigabyte of zeros in about a megabyte
            self._send(self.bodies[path], {"Content-Encoding": deflate})
        elif path.startswith("/small-"):
            self._send(compressed(SMALL, coding), {"Content-Encoding": deflate})
        elif path == "/gzip-twice":  # 200 MB of zeros, gzipped twice: about 500 bytes
            self._send(self.bodies[path], {"Content-Encoding": "gzip, gzip"})
        elif path == "/gzip-twice-lines":  # the same, as two header lines
            self._send(self.bodies["/gzip-twice"], {"Content-Encoding": "gzip"}, "gzip")
        elif path == "/br":
            self._send(b"\x0b\x01\x80{}\x03", {"Content-Encoding": "br"})
        elif path == "/bad-gzip":
            self._send(b"not gzip at all", {"Content-Encoding": "gzip"})
        elif path == "/empty-blocks":  # deflate that never ends and unpacks to nothing
            self.send_response(200)
            self.send_header("Content-Encoding", "deflate")
            self.end_headers()
            block = b"\0\0\0\xff\xff" * 10000  # stored blocks of 0 bytes, none the last
            while True:
                self.wfile.write(block)
        elif self.path == "/ok":
            self._send(b'{"ok": true}', {"Set-Cookie": "session=abc; Path=/"})
        elif self.path == "/hold":  # accepts, never answers
            time.sleep(30)
        elif path in ("/endless", "/users/"):  # as fast as the client reads
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
        elif self.path == "/bomb":  # 300 KB of gzip that unpacks to 300 MB
            self._send(self.bodies[path], {"Content-Encoding": "gzip"})

    def _send(self, body: bytes, headers: dict[str, str], *more: str) -> None:
        """`more`: further Content-Encoding header lines."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        for value in more:
            self.send_header("Content-Encoding", value)
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hung up on purpose


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    Handler.bodies.update({f"/zeros-{c}": zeros(1024, c) for c in ("gzip", "zlib", "raw")})
    Handler.bodies["/gzip-twice"] = gzip.compress(zeros(200, "gzip"), 9)
    Handler.bodies["/bomb"] = zeros(300, "gzip")
    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _client(
    guard: Guard, base: str, timeout: float = 1.0, local: str | None = None
) -> httpx.Client:
    """A client of the app at `base` (the guard's origin unless it has one)."""
    guard.origin = guard.origin or base
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
    guard = Guard(strikes=1, origin=server)
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
    with appclient.session(Guard(origin=server)) as session:
        assert session.get(f"{server}/ok", timeout=1).status_code == 200


def test_requests_sessions_get_the_same_bounds(server: str) -> None:
    guard = Guard(strikes=2, origin=server)
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


def _peak(http: httpx.Client, path: str) -> tuple[str, float, int]:
    """(why `path` has no answer, seconds, the most memory Python held meanwhile, in bytes)."""
    tracemalloc.start()
    try:
        message, seconds = _no_answer(http, path)
        return message, seconds, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("coding", ["gzip", "zlib", "raw"])
def test_a_compressed_gigabyte_costs_the_cap_not_the_gigabyte(server: str, coding: str) -> None:
    """About a megabyte on the wire: decoding stops at the cap, each step bounded by what is
    left of it (httpx's decoders unpack a whole read at once: 64 KB of it is 64 MB)."""
    with _client(Guard(), server, timeout=10) as http:
        message, seconds, peak = _peak(http, f"/zeros-{coding}")
    assert message == f"GET /zeros-{coding}: the body exceeded 2 MB"
    assert seconds < 5
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MB held"


@pytest.mark.parametrize("path", ["/gzip-twice", "/gzip-twice-lines"])
def test_a_body_encoded_twice_is_refused_unread(server: str, path: str) -> None:
    """200 MB of zeros gzipped twice fit in 500 bytes; a second layer is never unpacked."""
    with _client(Guard(), server, timeout=10) as http:
        message, _, peak = _peak(http, path)
    assert message == (
        f"GET {path}: the body is encoded 2 times (gzip, gzip); "
        "the grader decodes one layer of gzip or deflate"
    )
    assert peak < 2**20, f"{peak / 2**20:.0f} MB held"


def test_a_compressed_stream_of_nothing_ends_at_the_cap_received(server: str) -> None:
    """Deflate blocks that unpack to nothing, without end: the bytes received count too."""
    with _client(Guard(), server, timeout=10) as http:
        message, seconds = _no_answer(http, "/empty-blocks")
    assert message == "GET /empty-blocks: the body exceeded 2 MB"
    assert seconds < 5


@pytest.mark.parametrize("coding", ["gzip", "zlib", "raw"])
def test_gzip_and_deflate_bodies_are_decoded(server: str, coding: str) -> None:
    with _client(Guard(), server) as http:
        answer = http.get(f"/small-{coding}")
    assert answer.json() == json.loads(SMALL)
    assert "content-encoding" not in answer.headers
    with appclient.session(Guard(origin=server)) as session:
        assert session.get(f"{server}/small-{coding}", timeout=1).json() == json.loads(SMALL)


def test_other_and_broken_encodings_are_named(server: str) -> None:
    with _client(Guard(), server) as http:
        assert _no_answer(http, "/br")[0] == (
            "GET /br: the body is encoded as 'br', which the grader did not ask for "
            "(it reads gzip and deflate)"
        )
        assert _no_answer(http, "/bad-gzip")[0].startswith(
            "GET /bad-gzip: the body is not valid gzip: Error -3"
        )


class Elsewhere(BaseHTTPRequestHandler):
    """Another service of this machine: counts what reaches it."""

    protocol_version = "HTTP/1.1"
    hits: list[str] = []  # noqa: RUF012

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_GET


@pytest.fixture(params=["another port", "another host, the app's port"])
def elsewhere(server: str, request: pytest.FixtureRequest) -> Iterator[str]:
    port = urlsplit(server).port if request.param != "another port" else 0
    host = "127.0.0.2" if port else "127.0.0.1"
    httpd = Server((host, port or 0), Elsewhere)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    Elsewhere.hits.clear()
    yield f"http://{host}:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_redirects_to_another_host_are_not_followed(server: str, elsewhere: str) -> None:
    """The app answers 307 to another service of this machine: nothing reaches it, whichever
    client (httpx, requests as fuzz hooks use it) and whatever it asks."""
    steal = f"/redirect?to={quote(elsewhere + '/steal')}"
    refused = (
        f"GET /steal to {elsewhere} not sent: not the app ({server}); the grader reaches nothing "
        "else (a redirect to another host is not followed)"
    )
    with _client(Guard(), server) as http:
        answer = http.get(steal)  # the 3xx is the answer
        assert answer.status_code == 307 and answer.headers["location"] == elsewhere + "/steal"
        with pytest.raises(appclient.OtherHost) as caught:
            http.get(steal, follow_redirects=True)
        assert str(caught.value) == refused
        with pytest.raises(appclient.OtherHost):
            http.post(f"{elsewhere}/steal", json={})
        with pytest.raises(appclient.OtherHost, match="not the app"):
            http.get(server.replace("http:", "https:") + "/ok")
    with appclient.session(Guard(origin=server)) as session:
        for send in (session.get, session.post):
            got = send(f"{server}{steal}", timeout=1)  # allow_redirects=True by default
            assert got.status_code == 307 and got.headers["location"] == elsewhere + "/steal"
        with pytest.raises(appclient.NoAnswerError, match="not the app"):
            session.get(f"{elsewhere}/steal", timeout=1)
    assert Elsewhere.hits == []


def test_a_guard_without_an_app_sends_nothing(server: str) -> None:
    sent = len(Handler.peers)
    with (
        appclient.client(Guard(), base_url=server, timeout=1) as http,
        pytest.raises(appclient.OtherHost, match=r"not the app \(none given\)"),
    ):
        http.get("/ok")
    assert len(Handler.peers) == sent


def test_the_target_s_guard_follows_its_address(server: str, elsewhere: str) -> None:
    """A restart may move the app: every client of its guard then reaches the new address only."""
    target = Target(base_url=elsewhere)
    target.base_url = server
    with appclient.client(target.guard, base_url=server, timeout=1) as http:
        assert http.get("/ok").status_code == 200
        with pytest.raises(appclient.OtherHost):
            http.get(f"{elsewhere}/ok")
    assert Elsewhere.hits == []


def test_a_spec_helper_s_requests_are_bounded_too(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fastapi-db-auth's conftest counts users outside any test: through the app's guard."""
    path = SPECS / "fastapi-db-auth" / "tests" / "conftest.py"
    found = importlib.util.spec_from_file_location("fastapi_db_auth_conftest", path)
    assert found is not None and found.loader is not None
    helpers = importlib.util.module_from_spec(found)
    monkeypatch.setitem(sys.modules, found.name, helpers)  # its dataclasses look it up there
    found.loader.exec_module(helpers)
    target = Target(base_url=server)
    counted: list[int] = []  # GET /users/ answers a body without end
    worker = threading.Thread(
        target=lambda: counted.append(helpers._count_users(target)), daemon=True
    )
    worker.start()
    worker.join(timeout=10)
    assert counted == [0]
    assert target.guard.sent == 1
