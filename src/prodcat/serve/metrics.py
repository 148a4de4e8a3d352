"""Prometheus instruments of one app, in their own registry (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

#: latency buckets in seconds: fine below 100 ms, where text-only requests live
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """Request counts and latencies by route and status, decisions, errors, model latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "prodcat_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "prodcat_request_latency_seconds",
            "time from request to response",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "prodcat_decisions", "predictions by decision (auto / review)", ["decision"], registry=self.registry
        )
        self.errors = Counter(
            "prodcat_errors", "refused requests and failed batch items by error code", ["error"], registry=self.registry
        )
        self.model_latency = Histogram(
            "prodcat_model_latency_seconds",
            "time in Predictor.predict per call (one per model batch of predictions, one per /explain)",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
