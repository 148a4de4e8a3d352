"""Products in, predictions out: photo checks, the model and the review queue, without HTTP.

CPU- and disk-bound steps run in worker threads so the event loop keeps answering (health
checks, other uploads) while they run; model calls of concurrent requests are coalesced by a
:class:`~prodcat.serve.batching.MicroBatcher`.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any, Protocol

import anyio
import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from prodcat.review.store import NewReview, ReviewStore
from prodcat.serve.batching import MicroBatcher
from prodcat.serve.inputs import ApiError, ProductRequest, check_image_content
from prodcat.serve.metrics import ApiMetrics
from prodcat.serve.schemas import CategoryProbability, PredictionOut
from prodcat.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


class PredictorLike(Protocol):
    """What the API needs of :class:`prodcat.predict.Predictor`."""

    labels: list[str]
    manifest: dict[str, Any]
    version: str

    def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Any]: ...


class PredictionService:
    """Predict received products; each product ends as a prediction or as its own error."""

    def __init__(
        self, predictor: PredictorLike, settings: ServeSettings, store: ReviewStore | None, metrics: ApiMetrics
    ) -> None:
        self.predictor = predictor
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.batcher = MicroBatcher(self._run_model, settings.predict_threads, settings.model_batch_rows)

    async def predict(
        self, products: list[ProductRequest | ApiError], request_id: str, top_k: int
    ) -> list[PredictionOut | ApiError]:
        """Outcomes in the order of ``products`` (items already refused stay as they are)."""
        # each hop to a worker thread costs latency: only take it for work that blocks
        has_photos = any(isinstance(p, ProductRequest) and p.image_bytes is not None for p in products)
        results = await anyio.to_thread.run_sync(self._check_photos, products) if has_photos else list(products)
        valid = [(position, item) for position, item in enumerate(results) if isinstance(item, ProductRequest)]
        if not valid:
            return results
        rows = [_frame_row(product, f"{request_id}-{position}") for position, product in valid]
        outcomes = await self.batcher.predict(rows, top_k)
        finish = partial(self._finish_all, [p for _, p in valid], outcomes, request_id)
        finished = await anyio.to_thread.run_sync(finish) if self._records_any(outcomes) else finish()
        for (position, _), outcome in zip(valid, finished, strict=True):
            results[position] = outcome
        return results

    def _check_photos(self, products: list[ProductRequest | ApiError]) -> list[Any]:
        checked: list[Any] = []
        for product in products:
            try:
                if isinstance(product, ProductRequest) and product.image_bytes is not None:
                    check_image_content(product.image_bytes, self.settings)
            except ApiError as exc:
                product = exc
            checked.append(product)
        return checked

    def _run_model(self, frame: pd.DataFrame, top_k: int) -> list[Any]:
        """Predictions for every row; if the batch call fails, each row alone, so one bad row fails alone."""
        started = time.perf_counter()
        try:
            return self.predictor.predict(frame, top_k=top_k)
        except Exception:
            if len(frame) == 1:
                logger.exception("prediction failed", extra={"product_id": frame["product_id"].iloc[0]})
                return [ApiError(500, "prediction_failed", "the model failed on this product; see the server log")]
            return [outcome for i in range(len(frame)) for outcome in self._run_model(frame.iloc[[i]], top_k)]
        finally:
            self.metrics.model_latency.observe(time.perf_counter() - started)

    def _records_any(self, outcomes: list[Any]) -> bool:
        """Whether finishing these outcomes writes to the review store (disk: done in a thread)."""
        if self.store is None:
            return False
        predictions = [o for o in outcomes if not isinstance(o, ApiError)]
        return bool(predictions) and (self.settings.record_all or any(o.decision == "review" for o in predictions))

    def _finish_all(self, products: list[ProductRequest], outcomes: list[Any], request_id: str) -> list[Any]:
        return [
            outcome if isinstance(outcome, ApiError) else self._finish(product, outcome, request_id)
            for product, outcome in zip(products, outcomes, strict=True)
        ]

    def _finish(self, product: ProductRequest, prediction: Any, request_id: str) -> PredictionOut | ApiError:
        """Record the prediction when it needs a person (or every one, with ``record_all``); answer."""
        review_id = None
        if self.store is not None and (prediction.decision == "review" or self.settings.record_all):
            try:
                review_id = self.store.record(
                    NewReview(
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
                )
            except SQLAlchemyError:
                logger.exception("review store write failed", extra={"request_id": request_id})
                return ApiError(503, "review_store_unavailable", "the review queue cannot be written; retry later")
        self.metrics.decisions.labels(prediction.decision).inc()
        return PredictionOut(
            category=prediction.category,
            confidence=float(prediction.confidence),
            decision=prediction.decision,
            top_k=[CategoryProbability(**entry) for entry in prediction.top_k],
            modalities_used=list(prediction.modalities_used),
            model_version=self.predictor.version,
            request_id=request_id,
            product_id=product.product_id,
            review_id=review_id,
        )


def _frame_row(product: ProductRequest, fallback_id: str) -> dict[str, Any]:
    """A canonical catalogue row; the photo stays the uploaded bytes (the Predictor decodes them)."""
    return {
        "product_id": product.product_id or fallback_id,
        "title": product.title,
        "description": product.description,
        "image": product.image_bytes,
        "category": None,
    }
