"""A polite HTTP client for public APIs: a descriptive User-Agent, a request rate, retries with backoff.

Retries are urllib3's :class:`~urllib3.util.Retry` rather than httpx + tenacity: urllib3 is already
installed (rapidocr needs it, through requests), and its ``Retry`` alone covers what a collector
needs — exponential backoff on connection errors, read timeouts and 429/5xx answers, and the
server's ``Retry-After`` header on 429/503 — with no retry loop written here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import urllib3
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, NewConnectionError
from urllib3.util import Retry, Timeout

log = logging.getLogger(__name__)

#: answers worth retrying: rate limited, or a server / gateway failure that is usually transient
RETRY_STATUSES = (429, 500, 502, 503, 504)


class NetworkError(RuntimeError):
    """A request that failed after its retries: ``url``, and ``status`` when the server answered."""

    def __init__(self, url: str, reason: str, status: int | None = None):
        self.url = url
        self.reason = reason
        self.status = status
        super().__init__(f"{url}: {reason}")


class RateLimiter:
    """Spaces request starts at least ``1 / requests_per_second`` seconds apart (thread-safe).

    A minimum interval rather than a token bucket: APIs such as Open Food Facts state their limit
    per minute and ask for no bursts.
    """

    def __init__(
        self,
        requests_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be > 0, got {requests_per_second}")
        self.interval = 1.0 / requests_per_second
        self._clock = clock
        self._sleep = sleep
        self._next_start = -float("inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may start, and reserve that slot."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self.interval
        if start > now:
            self._sleep(start - now)


class _LoggedRetry(Retry):
    """urllib3's ``Retry``, waiting before the first retry too, and logging each retry in one short line
    (urllib3's own warning repeats the whole query string and is silenced by ``prodcat collect``)."""

    def get_backoff_time(self) -> float:
        # urllib3 retries the first failure at once: impolite to an API that has just answered 429
        return max(super().get_backoff_time(), min(self.backoff_factor, self.backoff_max)) if self.history else 0.0

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        # a server asking for an hour would hold the command silently: its wait is capped like a backoff,
        # and an answer still refused after the retries is reported with its status
        wait = super().get_retry_after(response)
        return None if wait is None else min(wait, self.backoff_max)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: urllib3.BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Retry:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        cause = f"HTTP {response.status}" if response is not None and response.status else _root_cause(error)
        where = f"{_pool.host if _pool else ''}{(url or '').split('?')[0]}"
        log.warning("%s: %s; retry %d", where, cause, len(retry.history))
        return retry


class HttpClient:
    """GET JSON or bytes with a rate limit and retries.

    Args:
        user_agent: sent with every request; public APIs ask for the application name and a contact.
        requests_per_second: the most requests started per second (a retry is spaced by its backoff instead).
        retries: attempts after the first on a retryable status, read timeout or connection error.
        backoff: seconds; consecutive retries wait ``backoff``, ``2 * backoff``, ``4 * backoff``... (at most
            60 s), or what the server's ``Retry-After`` says (at most 60 s too).
        timeout: seconds to wait for the connection and then for each read.
        proxy: an HTTP(S) proxy URL every request goes through.
    """

    def __init__(
        self,
        user_agent: str,
        requests_per_second: float,
        *,
        retries: int = 4,
        backoff: float = 1.0,
        timeout: float = 30.0,
        proxy: str | None = None,
    ):
        retry = _LoggedRetry(
            total=retries,
            # an unreachable host rarely comes back within seconds: fail fast with a clear message
            connect=min(retries, 2),
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            backoff_factor=backoff,
            backoff_max=60.0,
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer is returned, and reported with its status below
        )
        options = {
            "headers": {"User-Agent": user_agent, "Accept-Encoding": "gzip"},
            "retries": retry,
            "timeout": Timeout(connect=min(timeout, 10.0), read=timeout),
        }
        self._pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        self._limiter = RateLimiter(requests_per_second)

    def get_json(self, url: str, params: dict[str, str | int] | None = None) -> Any:
        """The decoded JSON body of ``GET url?params``; :class:`NetworkError` on failure or a non-JSON body."""
        response = self._get(url, params, preload=True)
        try:
            return json.loads(response.data)
        except ValueError as exc:
            kind = response.headers.get("Content-Type", "unknown type")
            raise NetworkError(url, f"the answer is not JSON ({kind}: {exc})", response.status) from None

    def get_bytes(self, url: str, max_bytes: int) -> bytes:
        """The body of ``GET url``, refused past ``max_bytes`` bytes (read in chunks, never whole)."""
        response = self._get(url, None, preload=False)
        try:
            data = bytearray()
            for chunk in response.stream(64 * 1024):
                data += chunk
                if len(data) > max_bytes:
                    raise NetworkError(url, f"larger than the limit of {max_bytes} bytes", response.status)
            return bytes(data)
        except HTTPError as exc:
            raise NetworkError(url, f"download interrupted ({exc})") from None
        finally:
            response.release_conn()

    def _get(self, url: str, params: dict[str, str | int] | None, *, preload: bool) -> urllib3.BaseHTTPResponse:
        self._limiter.wait()
        try:
            response = self._pool.request("GET", url, fields=params, preload_content=preload)
        except MaxRetryError as exc:
            # the host never answered (DNS, refused, no route) vs. it answered too slowly or cut the connection
            failure = "unreachable" if isinstance(exc.reason, NewConnectionError | ConnectTimeoutError) else "failed"
            raise NetworkError(url, f"{failure} after retries ({_root_cause(exc.reason)})") from None
        except HTTPError as exc:
            raise NetworkError(url, f"request failed ({_root_cause(exc)})") from None
        if response.status >= 400:
            response.drain_conn()
            raise NetworkError(url, f"HTTP {response.status} {response.reason or ''}".strip(), response.status)
        return response


def _root_cause(error: BaseException | None) -> str:
    """The innermost error's message: 'Name or service not known' rather than urllib3's nested wrappers."""
    while error is not None and error.__context__ is not None and str(error.__context__):
        error = error.__context__
    return str(error) if error is not None else "no detail"
