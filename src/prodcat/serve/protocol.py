"""uvicorn's HTTP protocol (httptools), with a request's head bounded in time and size before it reaches the app.

uvicorn bounds neither: a client could hold a connection open for ever by sending nothing after connecting, or a
header byte now and then (slowloris: every limit of the app, ``request_timeout_s`` included, starts once the head
has arrived), and could send headers without end, each byte kept in the server's memory until the connection
closed (203 MB of headers grew a worker by 197 MB, and got no answer). So:

- a connection that sends nothing is closed after ``--keep-alive-s``, as an idle one between requests is;
- a request whose head (request line and headers) has not arrived within ``--request-timeout-s`` of its first byte
  gets 408 ``request_timeout``, and the connection is closed;
- a head of more than :data:`MAX_HEAD_BYTES` gets 431 ``request_header_fields_too_large``, and the connection is
  closed (what the client still sends read and dropped for :data:`LINGER_S` first, so that it reads the answer);
- a request arriving while ``max_concurrent_requests`` are in flight in this process gets 503 ``too_busy`` with
  ``Retry-After`` (each may hold a body of up to ``--max-request-bytes`` in memory). uvicorn's own
  ``limit_concurrency`` is not used: it counts idle keep-alive connections too, and answers in plain text.

This module is imported by uvicorn's supervisor too (``--workers N``), which imports none of the model's libraries:
it imports none either (the API's error shape, ``ErrorOut``, is pydantic's alone), and writes its answers itself.

It relies on uvicorn's private internals (:data:`UVICORN_INTERNALS`), which any uvicorn release may change: pyproject
pins the minor version tested, and this module refuses to load, naming what is missing, on a uvicorn without them
(rather than serving with a limit silently gone: uvicorn 0.29, which the range once allowed, had no
``_start_asgi_task``, so the cap on requests in flight would never have applied).
"""

from __future__ import annotations

import functools
import uuid
from asyncio import TimerHandle, Transport
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from prodcat.serve.schemas import ErrorOut

if TYPE_CHECKING:
    from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope

#: most bytes of a request's line and headers (h11, uvicorn's other parser, allows 16 KiB; browsers send a few)
MAX_HEAD_BYTES = 64 * 1024
#: seconds the bytes a refused client still sends are read and dropped before its connection is closed
LINGER_S = 2.0
#: seconds a request refused as the server is busy is asked to wait (``Retry-After``)
BUSY_RETRY_AFTER_S = 1


#: the methods of uvicorn's HttpToolsProtocol that GuardedHttpToolsProtocol overrides and calls (private ones included)
UVICORN_INTERNALS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_url",
    "on_header",
    "on_headers_complete",
    "_start_asgi_task",
)


def missing_uvicorn_internals(protocol: type = HttpToolsProtocol) -> list[str]:
    """The names of :data:`UVICORN_INTERNALS` that ``protocol`` lacks."""
    return [name for name in UVICORN_INTERNALS if not callable(getattr(protocol, name, None))]


def require_uvicorn_internals(protocol: type = HttpToolsProtocol) -> None:
    """Raise ``ImportError`` naming what is missing when ``protocol`` lacks any of :data:`UVICORN_INTERNALS`."""
    if missing := missing_uvicorn_internals(protocol):
        raise ImportError(
            f"prodcat serve cannot bound requests with uvicorn {uvicorn.__version__}: its HttpToolsProtocol has no "
            f"{', '.join(missing)}: install the uvicorn prodcat requires, pip install 'uvicorn[standard]>=0.55,<0.56'"
        )


require_uvicorn_internals()


def _error_body(status: int, error: str, detail: str, limit: str | None, value: float | None) -> tuple[str, bytes]:
    """A new request id, and the API's error shape (``ErrorOut``) carrying it, as JSON."""
    request_id = uuid.uuid4().hex
    body = ErrorOut(error=error, detail=detail, limit=limit, limit_value=value, status=status, request_id=request_id)
    return request_id, body.model_dump_json().encode()


def error_answer(
    status: int, reason: str, error: str, detail: str, limit: str | None = None, value: float | None = None
) -> bytes:
    """A whole HTTP answer closing its connection, its body the API's error shape (``ErrorOut``)."""
    request_id, body = _error_body(status, error, detail, limit, value)
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"x-request-id: {request_id}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _too_busy(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable, limit: int) -> None:
    """The ASGI answer of a request refused as ``limit`` requests are in flight: 503 ``too_busy``, ``Retry-After``."""
    detail = f"{limit} requests are in flight, the limit max_concurrent_requests={limit}: retry shortly"
    request_id, body = _error_body(503, "too_busy", detail, "max_concurrent_requests", limit)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(BUSY_RETRY_AFTER_S).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _app_metrics(app: Any) -> Any:
    """The ``ApiMetrics`` of prodcat's app (``app.state.metrics``) under the middlewares uvicorn wraps it in (each
    keeping the app it wraps as ``.app``); None for another app."""
    for _ in range(16):  # a bound in case of a cycle
        if (metrics := getattr(getattr(app, "state", None), "metrics", None)) is not None:
            return metrics
        if (app := getattr(app, "app", None)) is None:
            return None
    return None


#: the routes answered past ``max_concurrent_requests`` (to GET or HEAD): liveness, readiness and metrics, which
#: carry no body and load no model; refused, a busy but healthy server would be restarted by its orchestrator, taken
#: out of rotation, and its metrics would go blind exactly when they matter
PROBES = frozenset({"/health", "/ready", "/metrics"})


def _is_probe(scope: Mapping[str, Any]) -> bool:
    """Whether the request of ``scope`` is one of :data:`PROBES`, never refused as the server is busy."""
    return scope["method"] in ("GET", "HEAD") and scope["path"] in PROBES


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request head is slow, too long, or never comes."""

    def __init__(
        self,
        *args: Any,
        head_timeout_s: float,
        max_head_bytes: int = MAX_HEAD_BYTES,
        max_concurrent_requests: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout_s = head_timeout_s
        self.max_concurrent_requests = max_concurrent_requests
        self.max_head_bytes = max_head_bytes
        self._head_timer: TimerHandle | None = None
        self._reading_head = False
        self._head_bytes = 0
        #: the bytes of the request line and headers parsed so far (a head arriving whole in one chunk too)
        self._parsed_head_bytes = 0
        #: refused: what the client still sends is dropped
        self._lingering = False

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer after a response only: a connection never sending a byte stayed open
        self._arm(self.timeout_keep_alive, self._close_silent)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        # the bytes of a chunk that began inside a head and did not end it are all the head's (a chunk starting a
        # request is not counted: at most one chunk more than the limit is read; a head ending in that chunk is
        # counted as it is parsed, on_url / on_header)
        was_reading_head = self._reading_head
        super().data_received(data)
        if was_reading_head and self._reading_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head, self._head_bytes, self._parsed_head_bytes = True, 0, 0
        self._arm(self.head_timeout_s, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._parsed_head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._parsed_head_bytes += len(name) + len(value) + 4  # ': ' and the line break

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._disarm()
        # a head arriving whole in one chunk (up to some 200 KB on loopback) was not counted by data_received
        if self._parsed_head_bytes > self.max_head_bytes:
            self._refuse_head_too_large()
        super().on_headers_complete()  # its request is not started once refused (_start_asgi_task)

    def _refuse_head_too_large(self) -> None:
        if self.transport.is_closing() or self._lingering:
            return
        self._disarm()
        detail = f"the request's line and headers exceed {self.max_head_bytes} bytes: send fewer or shorter headers"
        self._refuse(431, "Request Header Fields Too Large", "request_header_fields_too_large", detail)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if self._lingering:  # refused (its head too large): answered already, the connection closing
            return
        # self.tasks: the requests in flight on every connection of this process (uvicorn's server state)
        limit = self.max_concurrent_requests
        if limit is not None and len(self.tasks) >= limit and not _is_probe(cycle.scope):
            self.logger.warning("request refused: %d requests in flight, max_concurrent_requests=%d", limit, limit)
            app = functools.partial(_too_busy, limit=limit)
            self._count("too_busy")
        super()._start_asgi_task(cycle, app)

    def _count(self, error: str) -> None:
        """Count a request refused here in the app's ``prodcat_errors_total``, as the app counts its own refusals:
        in this process's values (its file of the shared folder with ``--workers N``, where the app was built)."""
        if (metrics := _app_metrics(self.app)) is not None:
            metrics.errors.labels(error).inc()

    def _arm(self, seconds: float, handler: Any) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _close_silent(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._reading_head and not self.transport.is_closing():
            detail = f"the request's headers had not arrived within the limit request_timeout_s={self.head_timeout_s}"
            self._refuse(408, "Request Timeout", "request_timeout", detail, "request_timeout_s", self.head_timeout_s)

    def _refuse(
        self, status: int, reason: str, error: str, detail: str, limit: str | None = None, value: float | None = None
    ) -> None:
        self.logger.warning("request refused before its headers were read: %s", detail)
        self._count(error)
        self.transport.write(error_answer(status, reason, error, detail, limit, value))
        # a lingering close: closed with the bytes the client was still sending unread, the connection was reset,
        # and the client could lose the answer with it (as on the connection's end that it had not read yet)
        self._lingering = True
        self.transport.write_eof()
        self._arm(LINGER_S, self._close_silent)
