"""Products in, predictions out: decoding, the model and the review queue, without HTTP.

Everything here is synchronous and CPU- or disk-bound; the app runs it in worker threads so
the event loop keeps answering (health checks, other uploads) while a prediction runs.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from prodcat.review.store import NewReview, ReviewStore
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
    """Predict a batch of received products; each product ends as a prediction or its own error."""

    def __init__(
        self, predictor: PredictorLike, settings: ServeSettings, store: ReviewStore | None, metrics: ApiMetrics
    ) -> None:
        self.predictor = predictor
        self.settings = settings
        self.store = store
        self.metrics = metrics

    def predict(
        self, products: list[ProductRequest | ApiError], request_id: str, top_k: int
    ) -> list[PredictionOut | ApiError]:
        """One call of the model for all valid products (batch is where throughput comes from)."""
        results: list[PredictionOut | ApiError] = list(products)
        rows: list[dict[str, Any]] = []
        valid: list[tuple[int, ProductRequest]] = []
        for position, product in enumerate(products):
            if isinstance(product, ApiError):
                continue
            try:
                if product.image_bytes is not None:
                    check_image_content(product.image_bytes, self.settings)
            except ApiError as exc:
                results[position] = exc
                continue
            rows.append(
                {
                    "product_id": product.product_id or f"{request_id}-{position}",
                    "title": product.title,
                    "description": product.description,
                    "image": product.image_bytes,
                    "category": None,
                }
            )
            valid.append((position, product))
        if rows:
            outcomes = self._run_model(pd.DataFrame(rows), top_k)
            for (position, product), outcome in zip(valid, outcomes, strict=True):
                results[position] = (
                    outcome if isinstance(outcome, ApiError) else self._finish(product, outcome, request_id)
                )
        for result in results:
            if isinstance(result, ApiError):
                self.metrics.errors.labels(result.error).inc()
        return results

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

    def _finish(self, product: ProductRequest, prediction: Any, request_id: str) -> PredictionOut | ApiError:
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
