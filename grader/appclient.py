"""The one way the grader talks to a student's app over HTTP: the health wait, the contract tests,
fuzzing and every other check.

`AppTransport` (an httpx transport) sends each request within the bounds of the app's `Guard`:

- only to the app: the scheme, host and port of `guard.origin` (the Target's base URL); a request
  anywhere else — a redirect's `Location`, a link in a body — is refused (`OtherHost`), and no
  client here follows redirects at all (the 3xx is the answer), so an app cannot point the grader
  at another service of this machine (the host's firewall filters what apps send, not this);
- a total time per request — the client's read timeout, counted from the connection to the body's
  last byte on every socket operation, so a server trickling a byte a second is cut too;
- a body read up to `guard.max_body` bytes, both as received and as decoded. Decoding is ours, never
  more than the cap at a time: one `Content-Encoding` of gzip or deflate (zlib's or raw); a body
  encoded twice or in anything else (the grader asks for gzip and deflate only) is refused, so 500
  bytes that unpack to gigabytes cost the memory of the cap and one read, nothing more;
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
import zlib
from collections.abc import Iterable
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


class OtherHost(NoAnswer):
    """A request for somewhere other than the app (a redirect's target, a link): never sent."""


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


def _origin(url: httpx.URL) -> tuple[bytes, bytes, int | None]:
    """Scheme, host and port (the scheme's default when not written)."""
    return (
        url.raw_scheme,
        url.raw_host,
        url.port or {b"http": 80, b"https": 443}.get(url.raw_scheme),
    )


def _site(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"[:100]


def _codings(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The body's content codings, outermost last (`identity` is none)."""
    values = (
        value.decode("latin-1") for name, value in headers if name.lower() == b"content-encoding"
    )
    parts = (part.strip().lower() for value in values for part in value.split(","))
    return [part for part in parts if part and part != "identity"]


class _Inflater:
    """One gzip or deflate layer, decoded into the body up to a size: the input that would unpack
    further waits in zlib's `unconsumed_tail` (at most the read it came with), never unpacked."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        # deflate: zlib's wrapper or raw deflate (both are seen), told apart by the first 2 bytes
        self._zlib = zlib.decompressobj(31) if coding != "deflate" else None
        self._head = b""

    def decode(self, data: bytes, body: bytearray, size: int) -> None:
        """Append `data` decoded to `body`, stopping once `body` holds `size` bytes; what follows
        the end of the compressed stream is dropped."""
        if self._zlib is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            wrapped = data[0] & 0x0F == 8 and int.from_bytes(data[:2], "big") % 31 == 0
            self._zlib = zlib.decompressobj(15 if wrapped else -15)
        while data and len(body) < size and not self._zlib.eof:
            body += self._zlib.decompress(data, size - len(body))
            data = self._zlib.unconsumed_tail


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
        app = httpx.URL(self._guard.origin) if self._guard.origin else None
        if app is None or _origin(request.url) != _origin(app):
            raise OtherHost(
                f"{what} to {_site(request.url)} not sent: not the app "
                f"({_site(app) if app else 'none given'}); the grader reaches nothing else "
                "(a redirect to another host is not followed)",
                request=request,
            )
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
                    body, problem = self._read(answer)
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
        if problem:
            raise NoAnswer(f"{what}: {problem}", request=request)
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

    def _read(self, answer: httpcore.Response) -> tuple[bytes, str]:
        """(the decoded body, "") or (b"", why it is not usable). At most the cap (+1 byte, to know
        it was passed) is held, received or decoded, plus one read waiting to be decoded."""
        limit = self._guard.max_body
        codings = _codings(answer.headers)
        if len(codings) > 1:
            return b"", (
                f"the body is encoded {len(codings)} times ({', '.join(codings)[:100]}); "
                "the grader decodes one layer of gzip or deflate"
            )
        if codings and codings[0] not in ("gzip", "x-gzip", "deflate"):
            return b"", (
                f"the body is encoded as {codings[0][:40]!r}, which the grader did not ask for "
                "(it reads gzip and deflate)"
            )
        inflater = _Inflater(codings[0]) if codings else None
        body, received = bytearray(), 0
        for chunk in cast(Iterable[bytes], answer.stream):
            received += len(chunk)
            if inflater is None:
                body += chunk
            else:
                try:
                    inflater.decode(chunk, body, limit + 1)
                except zlib.error as exc:
                    return b"", f"the body is not valid {inflater.coding}: {exc}"
            if received > limit or len(body) > limit:
                return b"", f"the body exceeded {limit / 2**20:g} MB"
        return bytes(body), ""

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
    """An httpx.Client for the app (kwargs as httpx.Client's: base_url, timeout, ...; it never
    follows redirects)."""
    return httpx.Client(
        transport=AppTransport(guard, local_address, count=count, limits=limits),
        trust_env=False,
        follow_redirects=False,
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


def _no_redirect(response: requests.Response) -> None:
    return None


def mount(session: requests.Session, transport: AppTransport) -> requests.Session:
    """Send every request of `session` through `transport`; the session follows no redirect (the
    3xx is the answer, as with `allow_redirects=False`, whatever its caller asks)."""
    adapter = RequestsAdapter(transport)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # no proxy, no .netrc credentials from the environment
    # requests follows what this names; `max_redirects = 0` would raise on every 3xx instead
    session.get_redirect_target = _no_redirect  # type: ignore[method-assign, assignment]
    return session


def session(guard: Guard, local_address: str | None = None) -> requests.Session:
    """A requests.Session for the app."""
    return mount(requests.Session(), AppTransport(guard, local_address))
