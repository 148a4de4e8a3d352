"""A polite HTTP client for public APIs: a descriptive User-Agent, a request rate, retries with backoff.

urllib3 does the connections (pooling, proxies, timeouts, redirects); the retries are written here
rather than left to urllib3's ``Retry``, because what deserves a retry is known only once the answer is
read: a 200 that is an HTML maintenance page, truncated JSON or a results page short of its records is
retried like a 5xx. Every attempt, retries included, waits for the :class:`RateLimiter`; a 429 waits the
API's window (its ``Retry-After`` when it gives one) and has a budget of its own.
"""

from __future__ import annotations

import codecs
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ProxyError,
    SSLError,
)
from urllib3.util import Retry, Timeout

log = logging.getLogger(__name__)

T = TypeVar("T")

#: :class:`HttpClient`'s defaults, and so ``prodcat collect``'s (``--retries``, ``--backoff``, ``--timeout``,
#: ``--deadline``)
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 1.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_DEADLINE = 60.0
#: answers worth retrying: rate limited, or a server / gateway failure that is usually transient
RETRY_STATUSES = (429, 500, 502, 503, 504)
#: the longest wait between two attempts (a backoff, or a ``Retry-After`` asking for more)
MAX_WAIT = 60.0
#: a JSON answer larger than this is refused while it downloads (a 100-record page is well under 1 MB)
MAX_JSON_BYTES = 64 * 1024 * 1024

# What made a request fail, in NetworkError.cause: the advice to the user depends on it.
UNREACHABLE = "unreachable"  # no connection: DNS, refused, no route
RATE_LIMITED = "rate_limited"  # HTTP 429
SERVER_ERROR = "server_error"  # 5xx, a timeout, a connection cut while reading
BAD_ANSWER = "bad_answer"  # a 200 whose body cannot be used: not JSON, not the expected page
REFUSED = "refused"  # 4xx other than 429, or an address urllib3 cannot fetch (ftp://...)
#: a photo's host (or a redirect's) refused by the client's policy, not public and not among its private hosts: no
#: request reached it, and a run whose policy allows the host (``--private-host``) fetches it, so not a failure for good
NOT_PUBLIC = "not_public"
TOO_LARGE = "too_large"
TOO_SLOW = "too_slow"  # still downloading at the deadline
UNTRUSTED = "untrusted"  # a TLS certificate that does not verify: no retry fixes it, the network or URL must change
#: a TLS handshake that fails for good: https:// to a plain-HTTP port, no protocol or cipher in common
TLS_FAILED = "tls_failed"
#: causes that another attempt, later, would meet again: a photo failing so is not fetched again on resume
PERMANENT_CAUSES = frozenset({REFUSED, TOO_LARGE})

# Retries are ours: urllib3 only follows redirects (a photo's 302), and raises on any failure.
_REDIRECTS_ONLY = Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5, raise_on_redirect=True)
#: a photo's redirects are followed here, each checked (:meth:`HttpClient.get_bytes`): urllib3 returns them
_NO_REDIRECTS = Retry(total=None, connect=0, read=0, status=0, other=0, redirect=0, raise_on_redirect=False)
_MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
#: the retry budget of the causes without one of their own
_TRANSIENT = "transient"


class NetworkError(RuntimeError):
    """A request that failed (after its retries when the failure was transient): ``url``, the ``cause``
    (:data:`UNREACHABLE`, :data:`RATE_LIMITED`...), and ``status`` when the server answered."""

    def __init__(self, url: str, reason: str, status: int | None = None, cause: str = SERVER_ERROR):
        self.url = url
        self.reason = reason
        self.status = status
        self.cause = cause
        super().__init__(f"{url}: {reason}")


class InvalidAnswer(ValueError):
    """Raised by the ``parse`` function given to :meth:`HttpClient.get_json` for a 200 answer that cannot
    be used as it is (a results page empty before the last one...): the request is retried."""


@dataclass(frozen=True)
class JsonAnswer(Generic[T]):
    """A JSON answer: ``value`` as the ``parse`` function returned it, the ``body`` bytes as received (to be
    saved: re-encoding the decoded JSON can fail), and a ``warning`` when the body had to be repaired."""

    value: T
    body: bytes
    warning: str | None = None


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


class _Failure(Exception):
    """One failed attempt worth another: its ``cause``, and the wait the server asked for (``Retry-After``)."""

    def __init__(self, cause: str, reason: str, status: int | None = None, retry_after: float | None = None):
        self.cause = cause
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        super().__init__(reason)


class HttpClient:
    """GET JSON or bytes with a rate limit and retries.

    Args:
        user_agent: sent with every request; public APIs ask for the application name and a contact.
        requests_per_second: the most requests started per second, retries included.
        retries: attempts after the first on a 5xx, a timeout, a cut connection or an unusable 200 answer;
            the same number again for 429 answers (counted apart); at most 2 when the host cannot be reached.
        backoff: seconds; consecutive retries wait ``backoff``, ``2 * backoff``, ``4 * backoff``... (at most
            :data:`MAX_WAIT`), or what the server's ``Retry-After`` says (capped the same way).
        timeout: seconds to wait for the connection and then for each read.
        deadline: seconds a whole answer may take; one still downloading after them (a server dripping bytes,
            each within ``timeout``) is abandoned, and not retried: it would be as slow again. One that has all come
            by then (its announced length read) is kept, however late it started.
        rate_limit_window: seconds a 429 without ``Retry-After`` waits (at least ``1 / requests_per_second``):
            the period over which the API counts requests, after which the count starts again.
        proxy: an HTTP(S) proxy URL every request goes through; ``None``: the environment's proxy for each
            URL's scheme and host (``HTTPS_PROXY``, ``HTTP_PROXY``, unless ``NO_PROXY`` exempts the host).
        private_hosts: host names :meth:`get_bytes` fetches from even when they are not public (loopback, private
            network...): the API's own host, which the user named (``--base-url``); any other host a URL given by
            the API (or a redirect) names must resolve to public addresses only. Each host is checked once for the
            client's life (a collect run builds its own), its verdict kept for its other photos and redirects.
        private_host_option: the command's option that allows a host that is not public (``--private-host``), named
            with the host by the refusal's message; ``None``: the command has none.
        clock, sleep: time source and wait, replaced by tests.
    """

    def __init__(
        self,
        user_agent: str,
        requests_per_second: float,
        *,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        rate_limit_window: float = 60.0,
        proxy: str | None = None,
        private_hosts: Collection[str] = (),
        private_host_option: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._private_hosts = frozenset(host.lower() for host in private_hosts)
        self._private_host_option = private_host_option
        # host -> why it is refused (None: public): checked once, not a DNS lookup per photo and redirect
        self._hosts_checked: dict[str, str | None] = {}
        self._budgets = {UNREACHABLE: min(retries, 2), RATE_LIMITED: retries, _TRANSIENT: retries}
        self._backoff = backoff
        self._deadline = deadline
        self._rate_limited_wait = max(rate_limit_window, 1.0 / requests_per_second)
        self._proxy = proxy
        self._options: dict[str, Any] = {  # the keyword arguments of urllib3's pool managers, of mixed types
            "headers": {"User-Agent": user_agent, "Accept-Encoding": "gzip"},
            "timeout": Timeout(connect=min(timeout, 10.0), read=timeout),
        }
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._limiter = RateLimiter(requests_per_second, clock=clock, sleep=sleep)
        self._clock = clock
        self._sleep = sleep

    def get_json(
        self,
        url: str,
        params: dict[str, str | int] | None = None,
        parse: Callable[[Any], T] = lambda payload: payload,
    ) -> JsonAnswer[T]:
        """``GET url?params`` decoded as JSON and given to ``parse``; an answer that is not JSON, or that
        ``parse`` refuses with :class:`InvalidAnswer`, is retried. :class:`NetworkError` on failure."""

        def read(response: urllib3.BaseHTTPResponse, deadline: float) -> JsonAnswer[T]:
            body = self._read_body(response, url, MAX_JSON_BYTES, deadline)
            try:
                payload, warning = decode_json(body)
            except ValueError as exc:
                kind = response.headers.get("Content-Type", "unknown type")
                raise InvalidAnswer(f"the answer is not JSON ({kind}: {exc})") from None
            return JsonAnswer(parse(payload), body, warning)

        return self._request(url, params, read)

    def get_bytes(self, url: str, max_bytes: int) -> bytes:
        """The body of ``GET url``, refused past ``max_bytes`` bytes (announced, or read in chunks, never whole).

        A URL given by an API: refused (:data:`NOT_PUBLIC`) unless its host, and that of each redirect (followed here,
        at most 5), resolves to public addresses only or is one of ``private_hosts``; so an API's answer cannot have
        this machine fetch its own services or its network's. A host's verdict is kept by the client: its other photos
        and redirects are not looked up again, unless its name could not be resolved (:class:`UnresolvedHost`)."""

        def read(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes | str:
            location = response.headers.get("Location")
            if response.status in _REDIRECT_STATUSES and location:
                response.drain_conn()
                return urllib.parse.urljoin(hop, location)
            return self._read_body(response, hop, max_bytes, deadline)

        hop = url
        for _ in range(_MAX_REDIRECTS + 1):
            if (refusal := self._refusal(hop)) is not None:
                redirected = "" if hop == url else f"redirected to {hop}: "
                option = self._private_host_option
                allowed = "" if option is None else f" ({option} {host_of(hop)} allows it)"
                raise NetworkError(url, f"refused: {redirected}{refusal}{allowed}", cause=NOT_PUBLIC)
            answer = self._request(hop, None, read, _NO_REDIRECTS)
            if isinstance(answer, bytes):
                return answer
            hop = answer
        raise NetworkError(url, f"refused: more than {_MAX_REDIRECTS} redirects", cause=REFUSED)

    def _refusal(self, url: str) -> str | None:
        """Why ``url``'s host is refused (:func:`non_public_reason`), ``None`` when it is not: the API's own host
        (``private_hosts``), a host found public, or one whose name cannot be resolved now (left to the proxy, or
        the fetch fails and says so). The verdict is kept per host; a failed lookup is not one (it is tried again at
        the host's next photo or redirect): kept, one DNS hiccup left the host's every later photo unchecked."""
        host = host_of(url)
        if not host or host in self._private_hosts:  # no host: the request fails and says so
            return None
        if host not in self._hosts_checked:
            try:
                self._hosts_checked[host] = non_public_reason(url)
            except UnresolvedHost:
                return None
        return self._hosts_checked[host]

    def _request(
        self,
        url: str,
        params: dict[str, str | int] | None,
        read: Callable[[urllib3.BaseHTTPResponse, float], T],
        redirects: Retry = _REDIRECTS_ONLY,
    ) -> T:
        retries: Counter[str] = Counter()  # per budget: unreachable, rate limited, any other failure
        while True:
            self._limiter.wait()
            try:
                return self._attempt(url, params, read, redirects)
            except _Failure as failure:
                self._wait_before_retry(url, failure, retries)

    def _wait_before_retry(self, url: str, failure: _Failure, retries: Counter[str]) -> None:
        """Sleep before the next attempt after ``failure``; :class:`NetworkError` when its budget is spent."""
        kind = failure.cause if failure.cause in self._budgets else _TRANSIENT
        retries[kind] += 1
        budget = self._budgets[kind]
        if retries[kind] > budget:
            gave_up = f" (gave up after {budget} {'retry' if budget == 1 else 'retries'})" if budget else ""
            raise NetworkError(url, failure.reason + gave_up, failure.status, failure.cause) from None
        wait = self.retry_wait(failure.cause, retries[kind], failure.retry_after)
        log.warning("%s: %s; retry %d of %d in %g s", url, failure.reason, retries[kind], budget, wait)
        self._sleep(wait)

    def retry_wait(self, cause: str, retry: int, retry_after: float | None = None) -> float:
        """Seconds before retry number ``retry`` (1-based) after a failure of ``cause``: the server's
        ``Retry-After`` when given, else the API's window after a 429, else the exponential backoff."""
        if retry_after is not None:
            return min(retry_after, max(MAX_WAIT, self._rate_limited_wait))
        if cause == RATE_LIMITED:
            return self._rate_limited_wait
        return min(self._backoff * 2 ** (retry - 1), MAX_WAIT)

    def _attempt(
        self,
        url: str,
        params: dict[str, str | int] | None,
        read: Callable[[urllib3.BaseHTTPResponse, float], T],
        redirects: Retry,
    ) -> T:
        deadline = self._clock() + self._deadline
        response = self._send(url, params, redirects)
        try:
            _check_status(url, response)
            return read(response, deadline)
        except BaseException as exc:
            response.close()  # the unread rest (70 MB, a trickle) is dropped with its connection, not drained
            failure = _failure_while_reading(exc, response.status)
            if failure is None:
                raise
            raise failure from None
        finally:
            response.release_conn()

    def _send(self, url: str, params: dict[str, str | int] | None, redirects: Retry) -> urllib3.BaseHTTPResponse:
        try:
            # cast: urllib3's stubs take str values, where its urlencode of a GET's fields writes an int as str() does
            fields = cast(dict[str, str] | None, params)
            return self._manager(url).request("GET", url, fields=fields, preload_content=False, retries=redirects)
        except MaxRetryError as exc:
            if isinstance(exc.reason, ProxyError):  # the proxy, not the API, is the one failing: say so
                raise _Failure(UNREACHABLE, f"proxy failed ({_root_cause(exc.reason.original_error)})") from None
            if isinstance(exc.reason, SSLError) and (cause := _tls_failure(exc.reason.__context__)):
                what = "certificate not trusted" if cause == UNTRUSTED else "TLS handshake failed"
                raise NetworkError(url, f"{what} ({_root_cause(exc.reason)})", cause=cause) from None
            if isinstance(exc.reason, NewConnectionError | ConnectTimeoutError):
                raise _Failure(UNREACHABLE, f"unreachable ({_root_cause(exc.reason)})") from None
            raise _Failure(SERVER_ERROR, f"request failed ({_root_cause(exc.reason)})") from None
        except ValueError as exc:  # ftp://, no host, "http://[::1" (urllib's ValueError): no retry will fetch it
            raise NetworkError(url, f"cannot fetch this address ({exc})", cause=REFUSED) from None
        except HTTPError as exc:
            raise _Failure(SERVER_ERROR, f"request failed ({_root_cause(exc)})") from None

    def _manager(self, url: str) -> urllib3.PoolManager:
        """The connection pool for ``url``: one per proxy, as API and photo hosts may need different ones."""
        proxy = _with_scheme(self._proxy or environment_proxy(url))
        if proxy not in self._managers:
            self._managers[proxy] = (
                urllib3.ProxyManager(proxy, **self._options) if proxy else urllib3.PoolManager(**self._options)
            )
        return self._managers[proxy]

    def _read_body(self, response: urllib3.BaseHTTPResponse, url: str, max_bytes: int, deadline: float) -> bytes:
        """The body, refused when it announces or reaches more than ``max_bytes``, or is still coming at
        ``deadline`` (read a socket read at a time, so a trickle cannot hold it past the deadline)."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            reason = f"larger than the limit of {max_bytes} bytes (Content-Length {declared})"
            raise NetworkError(url, reason, response.status, TOO_LARGE)
        data = bytearray()
        while chunk := response.read1(_CHUNK):
            data += chunk
            if len(data) > max_bytes:
                raise NetworkError(url, f"larger than the limit of {max_bytes} bytes", response.status, TOO_LARGE)
            # only with more to come (or an unknown length): an answer whose last byte has come is not thrown away
            # for the time its server took to start it
            if self._clock() > deadline and getattr(response, "length_remaining", None) != 0:
                reason = f"still downloading after {self._deadline:g} s ({len(data)} bytes received): too slow"
                raise NetworkError(url, reason, response.status, TOO_SLOW)
        return bytes(data)


def host_of(url: str) -> str | None:
    """The host name of ``url`` (lower-cased), ``None`` for a URL without one or unreadable."""
    try:
        return urllib.parse.urlsplit(url).hostname
    except ValueError:
        return None


class UnresolvedHost(Exception):
    """Raised by :func:`non_public_reason` for a host name that cannot be resolved (now: the lookup may succeed
    later)."""


def non_public_reason(url: str) -> str | None:
    """Why ``url``'s host is not to be fetched for an API: one of its addresses (the name resolved) is not public
    (loopback, private network, link-local such as a cloud's metadata service, shared, reserved, multicast...).
    ``None`` when all are public, or when the URL cannot be read; :class:`UnresolvedHost` when its name cannot be
    resolved (no verdict: its fetch is left to the proxy, or fails and says so)."""
    host = host_of(url)
    if not host:
        return None
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise UnresolvedHost(f"{host}: {exc}") from None
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global:
            at = "" if host == str(ip) else f" ({host} resolves to {ip})"
            return f"{ip} is not a public address{at}: a photo is fetched from a public host only"
    return None


def decode_json(body: bytes) -> tuple[Any, str | None]:
    """A JSON body decoded, and a warning when it was not all UTF-8 (``ValueError`` when it is not JSON).

    A byte that is not UTF-8 (a name stored in Latin-1 by one contributor) is read as Windows-1252, which
    gives back the intended letter in practice, rather than failing the whole page."""
    try:
        text, warning = body.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        text = body.decode("utf-8-sig", errors=_WINDOWS_1252_FALLBACK)
        warning = f"bytes that are not UTF-8 (the first at offset {exc.start}) were read as Windows-1252"
    try:
        return json.loads(text), warning
    except RecursionError:  # nested deeper than Python's stack (a broken or hostile server): not a page either
        raise ValueError("JSON nested too deeply") from None


def _read_as_windows_1252(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return bytes(bad).decode("cp1252", errors="replace"), error.end


_WINDOWS_1252_FALLBACK = "prodcat-windows-1252-fallback"
codecs.register_error(_WINDOWS_1252_FALLBACK, _read_as_windows_1252)


def environment_proxy(url: str) -> str | None:
    """The proxy the environment sets for ``url``'s scheme, unless ``NO_PROXY`` exempts its host."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _with_scheme(proxy: str | None) -> str | None:
    """``proxy`` with its scheme: one given as ``proxy.corp:3128`` (HTTPS_PROXY is often set so) is an ``http://``
    proxy, as curl and requests read it; urllib3 refuses it."""
    return f"http://{proxy}" if proxy and "://" not in proxy else proxy


def _check_status(url: str, response: urllib3.BaseHTTPResponse) -> None:
    """Raise for an error answer: a :class:`_Failure` to retry (429, 5xx), else a :class:`NetworkError`."""
    if response.status < 400:
        return
    reason = f"HTTP {response.status} {response.reason or ''}".strip()
    if response.status not in RETRY_STATUSES:
        raise NetworkError(url, reason, response.status, REFUSED)
    cause = RATE_LIMITED if response.status == 429 else SERVER_ERROR
    raise _Failure(cause, reason, response.status, _retry_after(response))


def _failure_while_reading(error: BaseException, status: int) -> _Failure | None:
    """The retryable failure ``error`` is, once the answer has started: an unusable body, or a read timeout
    or connection cut while reading it (``None``: not one to retry)."""
    if isinstance(error, _Failure):
        return error
    if isinstance(error, InvalidAnswer):
        return _Failure(BAD_ANSWER, str(error), status)
    if isinstance(error, HTTPError):
        return _Failure(SERVER_ERROR, f"download interrupted ({_root_cause(error)})", status)
    return None


def _retry_after(response: urllib3.BaseHTTPResponse) -> float | None:
    """The seconds a ``Retry-After`` header asks for (a number or an HTTP date), ``None`` without a valid one."""
    header = response.headers.get("Retry-After")
    try:
        return None if header is None else Retry().parse_retry_after(header)
    except InvalidHeader:
        return None


def _tls_failure(error: BaseException | None) -> str | None:
    """:data:`UNTRUSTED` or :data:`TLS_FAILED` when the ``ssl`` ``error`` under urllib3's ``SSLError`` is one
    that another attempt would meet again, else None: a connection cut during the handshake (EOF, reset)
    may be transient and is retried."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return UNTRUSTED
    transient = ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError
    return TLS_FAILED if isinstance(error, ssl.SSLError) and not isinstance(error, transient) else None


def _root_cause(error: BaseException | None) -> str:
    """The innermost error's message: 'Name or service not known' rather than urllib3's nested wrappers."""
    while error is not None and error.__context__ is not None and str(error.__context__):
        error = error.__context__
    return str(error) if error is not None else "no detail"
