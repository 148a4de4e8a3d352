"""Prometheus instruments of one app, in their own registry (no process-global state).

A server of several processes (``prodcat serve --workers N``) answers ``/metrics`` for all of them:
``prodcat serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (see :mod:`prodcat.serve.command`) before its workers start and
import prometheus_client, which then writes every value of this module's instruments into that folder, one file per
process, and each worker's ``/metrics`` adds up the files of every worker, those that have exited included (their
counts stay in the totals, as a counter's must). Every instrument here is a counter or a histogram, which add up;
a gauge added here must choose its ``multiprocess_mode`` (a per-process figure that cannot be summed saying so in its
help text), and a ``live*`` one needs ``prometheus_client.multiprocess.mark_process_dead`` for each worker that exits.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

from prodcat.serve.settings import metrics_dir_setting

#: latency buckets in seconds: fine below 100 ms, where text-only requests live
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def shared_metrics_dir() -> str | None:
    """The folder this process writes its metrics in beside the server's other processes (prometheus_client's
    multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR``, or its older name, was set when it was imported); ``None`` when
    it keeps them in memory, its own alone."""
    if values.ValueClass is values.MutexValue or (setting := metrics_dir_setting()) is None:
        return None
    return setting[1]


class ApiMetrics:
    """Request counts and latencies by route and status, decisions, errors, model latency; rendered for the whole
    server when its processes share a folder of metrics (:func:`shared_metrics_dir`), else for this process."""

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
        #: what /metrics renders: every process's files added up, or this registry
        self.exposed = self.registry
        if (folder := shared_metrics_dir()) is not None:
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=folder)

    def render(self) -> bytes:
        """What ``/metrics`` answers: :attr:`exposed` in Prometheus' text format."""
        return generate_latest(self.exposed)
