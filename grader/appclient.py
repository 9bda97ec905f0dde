"""The one way the grader talks to a student's app over HTTP: the health wait, the contract tests,
fuzzing and every other check.

`AppTransport` (an httpx transport) sends each request within the bounds of the app's `Guard`:

- a total time per request — the client's read timeout, counted from the connection to the body's
  last byte on every socket operation, so a server trickling a byte a second is cut too;
- a body read up to `guard.max_body` bytes, decoded (a compressed bomb is cut the same way);
- a breaker: after `guard.strikes` timeouts in a row, and once the checks' time limit has run out,
  later requests fail at once;
- sockets bound to `local_address` (the app network's gateway on this host): when that network is
  gone, the address is gone too, and no request can leave by another interface;
- never a proxy or credentials from the environment.

A request without a usable answer raises `NoAnswer`, whose message names the cause ("GET /things/
did not answer within 10 s", "GET /x: the body exceeded 2 MB"). `session()` puts the same
transport under a `requests.Session`, which is what Schemathesis and fuzz hooks files use.
"""

from __future__ import annotations

import contextvars
import http.client
import io
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any, cast

import httpcore
import httpx
import requests
import requests.adapters
import urllib3
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from grader.core import Guard

# when the request in progress on this thread must be done (time.monotonic()); None: no request
_END: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "grader_request_end", default=None
)


class NoAnswer(httpx.TransportError):
    """The app gave no usable answer; the message says why."""


class NoAnswerError(requests.exceptions.Timeout):
    """`NoAnswer` for `requests`' callers (a Timeout: Schemathesis reports it as a network error)."""


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """A socket operation's timeout: never past the end of the request it serves."""
    end = _END.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the request's time is up")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(
            self._inner.start_tls(
                ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)
            )
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's own sockets, each operation bounded by the request's end."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(
            self._inner.connect_tcp(
                host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options
            )
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("the grader reaches apps over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


# httpcore's errors as httpx raises them (most specific first)
_ERRORS: list[tuple[type[Exception], type[httpx.TransportError]]] = [
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProtocolError, httpx.ProtocolError),
]


def _as_httpx(exc: Exception) -> httpx.TransportError:
    kind = next((mine for theirs, mine in _ERRORS if isinstance(exc, theirs)), httpx.TransportError)
    return kind(str(exc) or type(exc).__name__)


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


class AppTransport(httpx.BaseTransport):
    """Requests to one app, within its guard. `count`: whether this client's timeouts count
    towards the breaker (False for requests sent all at once, which time out together)."""

    def __init__(
        self,
        guard: Guard,
        local_address: str | None = None,
        *,
        count: bool = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits()
        self._guard, self._count = guard, count
        self._pool = httpcore.ConnectionPool(
            local_address=local_address,
            network_backend=_Backend(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        what = f"{request.method} {request.url.path}"
        seconds, refusal = self._guard.admit(
            what, request.extensions.get("timeout", {}).get("read")
        )
        if refusal:
            raise NoAnswer(refusal, request=request)
        token = _END.set(time.monotonic() + seconds)
        try:
            try:
                answer = self._pool.handle_request(
                    httpcore.Request(
                        method=request.method,
                        url=httpcore.URL(
                            scheme=request.url.raw_scheme,
                            host=request.url.raw_host,
                            port=request.url.port,
                            target=request.url.raw_path,
                        ),
                        headers=request.headers.raw,
                        content=cast(Iterable[bytes], request.stream),
                        extensions=request.extensions,
                    )
                )
                try:
                    body = self._read(answer, request)
                finally:
                    answer.close()
            except httpcore.TimeoutException as exc:
                raise NoAnswer(
                    self._guard.timed_out(what, seconds, count=self._count), request=request
                ) from exc
            except (
                httpcore.NetworkError,
                httpcore.ProtocolError,
                httpcore.UnsupportedProtocol,
            ) as exc:
                raise _as_httpx(exc) from exc
        finally:
            _END.reset(token)
        self._guard.answered()
        if body is None:
            raise NoAnswer(
                f"{what}: the body exceeded {self._guard.max_body / 2**20:g} MB", request=request
            )
        headers = httpx.Headers(answer.headers)
        if "content-encoding" in headers:  # the body is decoded already
            del headers["content-encoding"]
            headers.pop("content-length", None)
        return httpx.Response(
            answer.status,
            headers=headers,
            content=body,
            request=request,
            extensions={
                k: v for k, v in answer.extensions.items() if k in ("http_version", "reason_phrase")
            },
        )

    def _read(self, answer: httpcore.Response, request: httpx.Request) -> bytes | None:
        """The decoded body, or None when it is longer than the guard allows."""
        decoding = httpx.Response(
            answer.status,
            headers=answer.headers,
            request=request,
            stream=_Chunks(cast(Iterable[bytes], answer.stream)),
        )
        chunks, size = [], 0
        for chunk in decoding.iter_bytes():
            size += len(chunk)
            if size > self._guard.max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self._pool.close()


def client(
    guard: Guard,
    local_address: str | None = None,
    *,
    count: bool = True,
    limits: httpx.Limits | None = None,
    **kwargs: Any,
) -> httpx.Client:
    """An httpx.Client for the app (kwargs as httpx.Client's: base_url, timeout, ...)."""
    return httpx.Client(
        transport=AppTransport(guard, local_address, count=count, limits=limits),
        trust_env=False,
        **kwargs,
    )


class _NoSocket:
    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO()


def _content(body: Any) -> bytes | None:
    """A prepared request's body as bytes (requests allows text, files and iterables)."""
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    parts = [body.read()] if hasattr(body, "read") else list(body)
    return b"".join(p.encode() if isinstance(p, str) else p for p in parts)


class RequestsAdapter(requests.adapters.BaseAdapter):
    """An `AppTransport` under `requests`: its timeout's read part is the request's total time."""

    def __init__(self, transport: AppTransport) -> None:
        super().__init__()
        self._transport = transport

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:  # proxies: never, see the module doc
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        headers = {
            name: value if isinstance(value, str) else value.decode("latin-1")
            for name, value in request.headers.items()
        }
        outgoing = httpx.Request(
            request.method or "GET",
            request.url or "",
            headers=headers,
            content=_content(request.body),
            extensions={"timeout": httpx.Timeout(read, connect=connect).as_dict()},
        )
        try:
            answer = self._transport.handle_request(outgoing)
        except NoAnswer as exc:
            raise NoAnswerError(str(exc), request=request) from exc
        except httpx.TransportError as exc:
            raise requests.exceptions.ConnectionError(str(exc), request=request) from exc
        except httpx.DecodingError as exc:
            raise requests.exceptions.ContentDecodingError(str(exc), request=request) from exc
        received = urllib3.HTTPHeaderDict()
        message = http.client.HTTPMessage()  # what requests reads cookies from
        for name, value in answer.headers.multi_items():
            received.add(name, value)
            message[name] = value
        original = http.client.HTTPResponse(cast(socket.socket, _NoSocket()), method=request.method)
        original.msg = message
        original.close()
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(answer.content),
            headers=received,
            status=answer.status_code,
            reason=answer.reason_phrase,
            version=11,
            preload_content=False,
            decode_content=False,
            original_response=original,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(raw.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.reason = answer.reason_phrase
        response.url = request.url or ""
        response.request = request
        response.connection = cast(requests.adapters.HTTPAdapter, self)  # only its send() is used
        extract_cookies_to_jar(response.cookies, request, raw)
        return response

    def close(self) -> None:
        self._transport.close()


def mount(session: requests.Session, transport: AppTransport) -> requests.Session:
    """Send every request of `session` through `transport`."""
    adapter = RequestsAdapter(transport)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # no proxy, no .netrc credentials from the environment
    return session


def session(guard: Guard, local_address: str | None = None) -> requests.Session:
    """A requests.Session for the app."""
    return mount(requests.Session(), AppTransport(guard, local_address))
