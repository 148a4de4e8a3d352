"""The guard around every request: request id, body-size limit, timeout, one log line, metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from re import Pattern
from typing import Any

import anyio
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prodcat.serve.inputs import ApiError, over_limit
from prodcat.serve.metrics import ApiMetrics
from prodcat.serve.settings import ServeSettings

logger = logging.getLogger("prodcat.serve.access")
_errors = logging.getLogger(__name__)
#: the methods counted under their own name in the metrics
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: a caller's ``X-Request-ID`` is reused only when it is this harmless (it goes into logs and headers)
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_of(given: str) -> str:
    """The id of a request that sent ``given`` as its ``X-Request-ID``: it, when harmless; else a new one."""
    return given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def error_response(
    error: ApiError, request_id: str, metrics: ApiMetrics, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``error`` answered in the API's error shape (``ErrorOut``) carrying ``request_id``, counted in ``metrics``
    by its code: the one way the app's handlers, the guard and the CORS middleware answer a refusal."""
    metrics.errors.labels(error.error).inc()
    body = error.to_out(request_id).model_dump(mode="json")
    return JSONResponse(body, status_code=error.status, headers=headers)


class ApiCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, whose refused preflight answers 400 ``cors_refused`` in the API's error shape,
    with its request id, counted in ``metrics``: it answered ``Disallowed CORS origin`` as plain text, alone of the
    API's errors. It stands outside :class:`RequestGuard`, so that the guard's own answers carry its headers."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, **options: Any) -> None:
        super().__init__(app, **options)
        self.metrics = metrics

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code != 400:
            return answer
        refused = bytes(answer.body).decode().removeprefix("Disallowed CORS ").split(", ")
        said = {
            "origin": f"the origin {request_headers['origin']!r} is not one of the server's --cors-origins",
            "method": f"the method {request_headers['access-control-request-method']!r} is not one it allows "
            f"({', '.join(self.allow_methods)})",
            "headers": f"the headers {request_headers.get('access-control-request-headers')!r} are not all ones it "
            f"allows ({', '.join(sorted(self.allow_headers))})",
        }
        detail = "CORS preflight refused: " + "; ".join(said.get(what, f"{what} not allowed") for what in refused)
        request_id = request_id_of(request_headers.get("x-request-id", ""))
        kept = {k: v for k, v in answer.headers.items() if k not in ("content-length", "content-type")}
        error = ApiError(400, "cors_refused", detail)
        return error_response(error, request_id, self.metrics, headers={**kept, "x-request-id": request_id})


#: the key of a request's state holding what its 504 adds (:func:`say_on_timeout`)
_TIMEOUT_NOTE = "timeout_note"


def say_on_timeout(request: Request, note: str) -> None:
    """Have a 504 of ``request`` end with ``note``: what the work it leaves running (a store write) may still do."""
    setattr(request.state, _TIMEOUT_NOTE, note)


#: FastAPI's pages of the API's documentation, labelled in the metrics by their own path
_DOCUMENTATION_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
#: where the app serves the scripts and styles of those pages (fastapi-offline's mount), labelled by this path
DOCUMENTATION_FILES = "/static-offline-docs"


class RequestGuard:
    """Pure ASGI middleware (it must see the body stream and the response start, which
    ``BaseHTTPMiddleware`` hides)."""

    def __init__(self, app: ASGIApp, settings: ServeSettings, metrics: ApiMetrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self._route_patterns: list[tuple[str, Pattern[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = request_id_of(headers.get("x-request-id", ""))
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        response: dict[str, Any] = {"status": 500, "started": False}
        reading = {"body": False}  # the app is waiting for the client's body: a timeout then is the client's

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response.update(status=message["status"], started=True)
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            declared = _content_length(headers)
            if declared is not None and declared > self.settings.max_request_bytes:
                raise over_limit(413, "max_request_bytes", self.settings.max_request_bytes, "request body size")
            with anyio.fail_after(self.settings.request_timeout_s):
                await self.app(scope, self._limited(receive, reading), send_with_id)
        except ClientDisconnect:
            # the client left while sending its body: no one to answer, and no fault of the server's (499: nginx's
            # "client closed request", in the access log and the metrics)
            response["status"] = 499
        except Exception as exc:
            if response["started"]:
                raise
            if isinstance(exc, ApiError):
                error = exc
            elif isinstance(exc, TimeoutError):
                error = _timeout_error(self.settings, reading["body"], scope["state"].get(_TIMEOUT_NOTE))
            else:
                # answered here, in the error shape: past this guard Starlette would answer a bare text 500 without
                # the request id that the logged traceback carries
                _errors.error("unexpected error", exc_info=exc, extra={"request_id": request_id})
                detail = "the server failed on this request; its log has the details under this request_id"
                error = ApiError(500, "internal_error", detail)
            await error_response(error, request_id, self.metrics)(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            self._observe(scope, request_id, response["status"], time.perf_counter() - started)

    def _limited(self, receive: Receive, reading: dict[str, bool]) -> Receive:
        """``receive`` that refuses a body (even one without Content-Length) past ``max_request_bytes``, and
        sets ``reading["body"]`` while it waits for the client."""
        received = 0
        limit = self.settings.max_request_bytes

        complete = False  # later waits are for a disconnect, not for the body

        async def receive_limited() -> Message:
            nonlocal received, complete
            reading["body"] = not complete
            message = await receive()
            reading["body"] = False
            complete = complete or (message["type"] == "http.request" and not message.get("more_body", False))
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise over_limit(413, "max_request_bytes", limit, "request body size")
            return message

        return receive_limited

    def _route_path(self, scope: Scope) -> str:
        """The path template of the route that takes the request's path, its label in the metrics."""
        if (route := scope.get("route")) is not None:
            return route.path
        path = scope["path"]
        # FastAPI's documentation pages are plain routes, their files a mount: none leaves a "route" in the scope
        if path in _DOCUMENTATION_PATHS:
            return path
        if path.startswith(f"{DOCUMENTATION_FILES}/"):
            return DOCUMENTATION_FILES
        # a request refused before routing (its declared body over max_request_bytes) is matched here, against
        # the API's documented paths: their templates are public, the router's own matching is not
        if self._route_patterns is None:
            templates = scope["app"].openapi()["paths"]
            self._route_patterns = [(template, compile_path(template)[0]) for template in templates]
        return next((template for template, pattern in self._route_patterns if pattern.match(path)), "unmatched")

    def _observe(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        route_path = self._route_path(scope)
        # a label per method a client invents would grow the metrics without bound
        method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
        self.metrics.requests.labels(method, route_path, str(status)).inc()
        self.metrics.latency.labels(method, route_path).observe(seconds)
        client = scope.get("client")
        logger.info(
            "request",
            extra={
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "route": route_path,
                "status": status,
                "latency_ms": round(seconds * 1000, 2),
                "client": client[0] if client else None,
            },
        )


def _content_length(headers: dict[str, str]) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


def _timeout_error(settings: ServeSettings, reading_body: bool, note: str | None) -> ApiError:
    """408 when the client had not finished sending its body at the limit (RFC 9110: the request was not
    received in time), else 504: the server did not answer in time, followed by the route's ``note``."""
    limit = settings.request_timeout_s
    if reading_body:
        detail = f"the request body had not arrived within the limit request_timeout_s={limit}"
        return ApiError(408, "request_timeout", detail, limit="request_timeout_s", limit_value=limit)
    detail = f"the request was not answered within the limit request_timeout_s={limit}"
    if note is not None:
        detail += f"; {note}"
    return ApiError(504, "timeout", detail, limit="request_timeout_s", limit_value=limit)
