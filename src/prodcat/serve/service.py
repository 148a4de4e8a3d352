"""Products in, predictions out: photo checks, the model and the review queue, without HTTP.

CPU- and disk-bound steps run in worker threads so the event loop keeps answering (health
checks, other uploads) while they run; the model calls of concurrent requests, and their
review-store writes, are coalesced by micro-batchers (:class:`~prodcat.serve.batching.MicroBatcher`).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, cast

import anyio
import pandas as pd
from prometheus_client import Histogram
from sqlalchemy.exc import SQLAlchemyError

from prodcat.bundle import modalities_read_by_bundle
from prodcat.evaluate.explain import ExplainSettings, explain
from prodcat.image.decode import DECODABILITY_SIDE
from prodcat.predict import PredictorLike, nothing_read_reason
from prodcat.review.store import NewReview, ReviewStore
from prodcat.serve.batching import MicroBatcher
from prodcat.serve.inputs import ApiError, ProductRequest, check_image_content
from prodcat.serve.metrics import ApiMetrics
from prodcat.serve.schemas import CategoryProbability, ExplanationOut, PredictionOut
from prodcat.serve.settings import ServeSettings
from prodcat.serve.threads import run_abandonable

logger = logging.getLogger(__name__)

#: photo checks running at once on the machine, whatever the requests, shared among the server's processes
#: (``--workers``): each may decode a photo of ``max_pixels`` in full (a PNG has no reduced-size decoding: 150 MB at
#: the default 50 M px), CPU-bound, so more than the cores adds memory and no speed; on anyio's 40 threads, 24
#: concurrent uploads of one 143 KB PNG each held the server at 5 GB
PHOTO_CHECKS_AT_ONCE = os.cpu_count() or 1
#: the share of the time a request has left that the checks of its photos may take: the model predicts in the rest,
#: reading the pixels each check decoded, so that a photo slow to decode costs its own item an error (504
#: ``image_check_timeout``) and not the whole request its 504
PHOTO_CHECK_SHARE = 1 / 2
#: seconds after which a photo still being checked (one of tens of millions of pixels: most take milliseconds) no
#: longer holds up the checks of its request's next photos, which begin on another of the PHOTO_CHECKS_AT_ONCE if free
SLOW_PHOTO_S = 1.0


class TimedPredictor:
    """``predictor`` with each ``predict`` call observed in ``latency``: the one door to the model, so that the
    calls of ``/explain`` count in ``prodcat_model_latency_seconds`` as those of the predictions do."""

    def __init__(self, predictor: PredictorLike, latency: Histogram) -> None:
        self.labels = predictor.labels
        self.manifest = predictor.manifest
        self.version = predictor.version
        self._predictor = predictor
        self._latency = latency

    def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Any]:
        """``predictor.predict(frame, top_k=top_k)``, its wall-clock seconds observed in ``latency`` (a call that
        raises too)."""
        started = time.perf_counter()
        try:
            return self._predictor.predict(frame, top_k=top_k)
        finally:
            self._latency.observe(time.perf_counter() - started)


class PredictionService:
    """Predict received products; each product ends as a prediction or as its own error."""

    def __init__(
        self, predictor: PredictorLike, settings: ServeSettings, store: ReviewStore | None, metrics: ApiMetrics
    ) -> None:
        self.predictor = TimedPredictor(predictor, metrics.model_latency)
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.model_batcher: MicroBatcher[tuple[dict[str, Any], int], Any] = MicroBatcher(
            self._run_model, settings.predict_threads, settings.model_batch_rows
        )
        # one writer: records of concurrent requests share a transaction (one commit, one fsync)
        self.review_batcher: MicroBatcher[NewReview, int | ApiError] = MicroBatcher(
            self._record_reviews, 1, settings.model_batch_rows
        )
        # one explanation at a time: each is a model call of a hundred rows, which must not starve predictions
        self.explain_limiter = anyio.CapacityLimiter(1)
        # each process its share of the cores: N processes of as many checks as the cores would hold N times the memory
        self.photo_check_limiter = anyio.CapacityLimiter(max(1, PHOTO_CHECKS_AT_ONCE // settings.workers))
        # photos are checked by decoding them as the model's photo encoder does, and those pixels handed to it: one
        # decoding a photo, within its check's time
        self.photo_side = photo_side(predictor)

    async def predict(
        self,
        products: list[ProductRequest | ApiError],
        request_id: str,
        top_k: int,
        say_on_timeout: Callable[[str], None] | None = None,
    ) -> list[PredictionOut | ApiError]:
        """Outcomes in the order of ``products`` (items already refused stay as they are). ``say_on_timeout`` is
        told what a 504 must add once review records are on their way: they may be committed after it."""
        # each hop to a worker thread costs latency: only take it for work that blocks
        has_photos = any(isinstance(p, ProductRequest) and p.image_bytes is not None for p in products)
        results = await self._checked_photos(products) if has_photos else list(products)
        valid = [(position, item) for position, item in enumerate(results) if isinstance(item, ProductRequest)]
        if not valid:  # cast (here and below): no ProductRequest is left in results, each has its outcome
            return cast(list[PredictionOut | ApiError], results)
        rows = [(_frame_row(product, f"{request_id}-{position}"), top_k) for position, product in valid]
        outcomes = await self.model_batcher.submit(rows)
        # indices into `valid` / `outcomes` of the predictions that go to the review store
        to_record = [i for i, outcome in enumerate(outcomes) if self._records(outcome)]
        review_ids: dict[int, int | ApiError] = {}
        if to_record:
            reviews = [self._new_review(valid[i][1], outcomes[i], request_id) for i in to_record]
            if say_on_timeout is not None:
                say_on_timeout(
                    f"the review queue may still record {len(reviews)} of its predictions (request_id "
                    f"{request_id}): sent again, they would be recorded twice"
                )
            review_ids = dict(zip(to_record, await self.review_batcher.submit(reviews), strict=True))
        for i, ((position, product), outcome) in enumerate(zip(valid, outcomes, strict=True)):
            review_id = review_ids.get(i)
            if isinstance(outcome, ApiError):
                results[position] = outcome.about(product.product_id)
            elif isinstance(review_id, ApiError):  # its record could not be written
                results[position] = review_id.about(product.product_id)
            else:
                self.metrics.decisions.labels(outcome.decision).inc()
                results[position] = _answer(product, outcome, self.predictor.version, request_id, review_id)
        return cast(list[PredictionOut | ApiError], results)

    async def explain(
        self,
        product: ProductRequest,
        request_id: str,
        top_k: int,
        settings: ExplainSettings,
        overlay: bool,
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> ExplanationOut:
        """Word and pixel weights of one product's prediction (nothing is recorded in the review store). ``before``
        is awaited once it is the explanation's turn, before it starts: what it raises ends it unrun."""

        # its photo checked as /predict's, within a share of the request's time: a photo slow to decode is 504
        # image_check_timeout, not the request's 504 timeout once the explanation had waited for it
        [checked] = await self._checked_photos([product]) if product.image_bytes is not None else [product]
        if isinstance(checked, ApiError):
            raise checked

        def run() -> tuple[Any, str | None]:
            row = _frame_row(checked, request_id)
            try:
                explanation = explain(self.predictor, row, settings, top_k)
            except Exception:
                logger.exception("explanation failed", extra={"product_id": product.product_id})
                raise ApiError(
                    500, "explanation_failed", "the model failed on this product; see the server log"
                ) from None
            if not explanation.scored:
                raise self._nothing_read(row)
            png = explanation.pixels.overlay_png() if overlay and explanation.pixels is not None else None
            return explanation, None if png is None else base64.b64encode(png).decode("ascii")

        # abandoned on timeout (504 on time); the thread keeps the limiter until it ends, so explanations
        # never pile up behind a client that gave up
        explanation, overlay_png = await run_abandonable(run, limiter=self.explain_limiter, before=before)
        body = explanation.as_dict()
        if body["pixels"] is not None:
            body["pixels"]["overlay_png"] = overlay_png
        prediction = _answer(product, explanation.prediction, self.predictor.version, request_id, None)
        return ExplanationOut.model_validate(body | {"prediction": prediction})

    async def _checked_photos(self, products: list[ProductRequest | ApiError]) -> list[Any]:
        """Each product with its ``checked_image``, or the error refusing its photo: the photos are checked by
        :meth:`_photo_checks`, a photo that several items share (one multipart part named by each) once."""
        photos = {
            id(product.image_bytes): product.image_bytes
            for product in products
            if isinstance(product, ProductRequest) and product.image_bytes is not None
        }  # by id() of the bytes, which the items share
        outcomes = await self._photo_checks(photos)
        checked: list[Any] = []
        for product in products:
            if isinstance(product, ProductRequest) and product.image_bytes is not None:
                outcome = outcomes[id(product.image_bytes)]
                if isinstance(outcome, ApiError):
                    product = outcome.about(product.product_id)
                else:
                    product = replace(product, checked_image=outcome)
            checked.append(product)
        return checked

    async def _photo_checks(self, photos: dict[int, bytes]) -> dict[int, ApiError | bytes]:
        """Each photo as :func:`check_image_content` hands it to the model, or the error refusing it, checked one
        after another, each in a worker thread among :data:`PHOTO_CHECKS_AT_ONCE`, within :data:`PHOTO_CHECK_SHARE`
        of the time the request has left; a photo still being checked after :data:`SLOW_PHOTO_S` no longer holds up
        the next. Past that time, a photo still being checked is refused 504 ``image_check_timeout``, one whose check
        had not begun 504 ``image_not_checked``. A check past it, or past the request's 504, finishes its photo in its
        thread, keeping its place among the checks until then (:func:`run_abandonable`), and the request checks no
        other: the 64 large photos of a batch would hold the places for minutes after its answer."""
        left = min(anyio.current_effective_deadline() - anyio.current_time(), self.settings.request_timeout_s)
        outcomes: dict[int, ApiError | bytes] = {}
        began: dict[int, float] = {}  # when each check began, by time.monotonic()

        async def check(key: int, photo: bytes, done: anyio.Event) -> None:
            def run() -> ApiError | bytes:
                began[key] = time.monotonic()
                try:
                    return check_image_content(photo, self.settings, self.photo_side)
                except ApiError as exc:
                    return exc
                except Exception:  # MemoryError, a decoder bug: its products' error, as a model failure is
                    logger.exception("photo check failed")
                    return ApiError(500, "image_check_failed", "the photo could not be checked; see the server log")

            try:
                outcomes[key] = await run_abandonable(run, limiter=self.photo_check_limiter)
            finally:
                done.set()

        budget = max(0.0, left) * PHOTO_CHECK_SHARE
        with anyio.move_on_after(budget):
            async with anyio.create_task_group() as checks:
                for key, photo in photos.items():
                    done = anyio.Event()
                    checks.start_soon(check, key, photo, done)
                    with anyio.move_on_after(SLOW_PHOTO_S):
                        await done.wait()
        for key in photos.keys() - outcomes.keys():
            outcomes[key] = _photo_past_its_time(began.get(key), budget, self.settings.request_timeout_s)
        return outcomes

    def _run_model(self, rows: list[tuple[dict[str, Any], int]]) -> list[Any]:
        """Predictions for ``(row, top_k)`` items; if the batch call fails, each row alone, so one
        bad row fails alone."""
        top_k = max(k for _, k in rows)
        try:
            # timed alone: the rows of a failed call, retried one by one, time their own
            predictions = self.predictor.predict(pd.DataFrame([row for row, _ in rows]), top_k)
        except Exception:
            if len(rows) == 1:
                logger.exception("prediction failed", extra={"product_id": rows[0][0]["product_id"]})
                return [ApiError(500, "prediction_failed", "the model failed on this product; see the server log")]
            return [outcome for item in rows for outcome in self._run_model([item])]
        # requests in one call may ask for different k
        return [
            replace(p, top_k=p.top_k[:k]) if p.modalities_used else self._nothing_read(row)
            for p, (row, k) in zip(predictions, rows, strict=True)
        ]

    def _nothing_read(self, row: dict[str, Any]) -> ApiError:
        """The refusal of a product the model read nothing of: its answer would be the class prior, from no
        input. The text checks let a product through on a photo alone or on any letter or digit, but a model that
        does not read photos, a photo that its decoder could not use, or a text of no word the model knows leaves
        nothing; ``prodcat predict`` gives such a product no category, and the same reason."""
        modalities = modalities_read_by_bundle(self.predictor.manifest)
        detail = nothing_read_reason(modalities, row["title"], row["description"], row["image"])
        return ApiError(422, "nothing_to_classify", detail)

    def _records(self, outcome: Any) -> bool:
        """Whether this outcome goes to the review store: a prediction that needs a person, or any
        prediction when every one is kept (never an error)."""
        if self.store is None or isinstance(outcome, ApiError):
            return False
        return outcome.decision == "review" or self.settings.record_all

    def _new_review(self, product: ProductRequest, prediction: Any, request_id: str) -> NewReview:
        return NewReview(
            request_id=request_id,
            model_version=self.predictor.version,
            source_product_id=product.product_id,
            title=product.title,
            description=product.description,
            image=product.image_bytes,
            image_type=product.image_type,
            predicted_category=prediction.category,
            confidence=float(prediction.confidence),
            decision=prediction.decision,
            top_k=[dict(entry) for entry in prediction.top_k],
        )

    def _record_reviews(self, reviews: list[NewReview]) -> list[int | ApiError]:
        """Commit the records of several requests in one transaction; their ids, or each its error."""
        assert self.store is not None  # only called for predictions that _records() accepted
        try:
            return list(self.store.record_many(reviews))
        except SQLAlchemyError:
            request_ids = sorted({review.request_id for review in reviews})
            logger.exception("review store write failed", extra={"request_ids": request_ids})
            error = ApiError(503, "review_store_unavailable", "the review queue cannot be written; retry later")
            return [error] * len(reviews)


def photo_side(predictor: PredictorLike) -> int | None:
    """The longest side at which the model's first photo encoder decodes photos (its ``decode_side``; ``None``: in
    full), which a photo is checked at, the pixels then handed to it (:class:`~prodcat.image.decode.DecodedBytes`);
    :data:`~prodcat.image.decode.DECODABILITY_SIDE`, the cheapest check, for a model that encodes no photo (or a
    stand-in without a fitted model)."""
    heads = getattr(getattr(predictor, "model", None), "heads_", {})
    sides = [e.decode_side for head in heads.values() for e in head.extractors_ if hasattr(e, "decode_side")]
    return sides[0] if sides else DECODABILITY_SIDE


def _photo_past_its_time(began: float | None, budget: float, timeout: float) -> ApiError:
    """The 504 of a photo whose check had not ended within the ``budget`` seconds of its request's photo checks: still
    being decoded since ``began`` (``time.monotonic()``), or, ``None``, never begun."""
    within = f"within the {budget:.1f} s its request had for photo checks (a share of request_timeout_s={timeout})"
    if began is not None:
        detail = (
            f"the photo was still being decoded after {time.monotonic() - began:.1f} s, not checked {within}: photos "
            "of tens of millions of pixels, PNGs above all, take seconds to decode; send it smaller, the model reads "
            "it at a few hundred pixels a side"
        )
        return ApiError(504, "image_check_timeout", detail, limit="request_timeout_s", limit_value=timeout)
    detail = (
        f"the photo was not checked: its turn had not come {within}, the server's photo checks busy with this "
        "request's other photos or others'; send it again, alone or in a smaller batch"
    )
    return ApiError(504, "image_not_checked", detail, limit="request_timeout_s", limit_value=timeout)


def _answer(
    product: ProductRequest, prediction: Any, model_version: str, request_id: str, review_id: int | None
) -> PredictionOut:
    return PredictionOut(
        category=prediction.category,
        confidence=float(prediction.confidence),
        decision=prediction.decision,
        top_k=[CategoryProbability(**entry) for entry in prediction.top_k],
        modalities_used=list(prediction.modalities_used),
        model_version=model_version,
        request_id=request_id,
        product_id=product.product_id,
        review_id=review_id,
    )


def _frame_row(product: ProductRequest, fallback_id: str) -> dict[str, Any]:
    """A canonical catalogue row; the photo is the uploaded bytes, holding the pixels its check decoded for the
    Predictor (:func:`check_image_content`)."""
    photo = product.checked_image if product.checked_image is not None else product.image_bytes
    return {
        "product_id": product.product_id or fallback_id,
        "title": product.title,
        "description": product.description,
        "image": photo,
        "category": None,
    }
