"""Prometheus instruments of one app, in their own registry (no process-global state).

A server of several processes (``prodcat serve --workers N``) answers ``/metrics`` for all of them:
``prodcat serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (see :mod:`prodcat.serve.command`) before its workers start and
import prometheus_client, which then writes every value of this module's instruments into that folder, one file per
process, and each worker's ``/metrics`` adds up the files of every worker, those that have exited included (their
counts stay in the totals, as a counter's must). The counters and histograms add up; each gauge chooses its
``multiprocess_mode``: a ``live*`` one, counting running processes only, has the files of a worker that exits removed
(``prometheus_client.multiprocess.mark_process_dead``), by the worker as it stops (:meth:`ApiMetrics.close`) or, one
killed outright, by the next ``/metrics`` answered (:func:`_forget_dead_workers`).

No process metrics (CPU, memory, open files) in multiprocess mode: prometheus_client's process collector reads the
process that answers the scrape only, whichever worker that is, and prometheus_client documents it as unsupported
there. A server of one process keeping its metrics in memory exposes its own.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from prodcat.processes import running
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


#: the file of a ``live*`` gauge of one process in a folder of metrics, named after its pid
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+_(?P<pid>\d+)\.db$")


def _forget_dead_workers(folder: str) -> None:
    """``mark_process_dead`` each process whose ``live*`` gauges are in ``folder`` but that no longer runs (a worker
    killed outright, the OOM killer): its requests in flight and the model it served would stay in the totals."""
    pids = {int(match["pid"]) for path in Path(folder).iterdir() if (match := _LIVE_GAUGE_FILE.match(path.name))}
    for pid in pids - {os.getpid()}:
        if not running(pid):
            mark_process_dead(pid, folder)


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
        self.in_flight = Gauge(
            "prodcat_requests_in_flight",
            "HTTP requests begun and not yet answered, of every running server process",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.model = Gauge(
            "prodcat_model_info",
            "1 for each bundle and model_version that a running server process serves",
            ["bundle", "model_version"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        #: the folder shared with the server's other processes, None when this one keeps its metrics in memory
        self.folder = shared_metrics_dir()
        #: what /metrics renders: every process's files added up, or this registry with this process's own metrics
        self.exposed = self.registry
        if self.folder is not None:
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=self.folder)
        else:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)

    def serving(self, bundle: str, model_version: str) -> None:
        """Say which model this process serves (``prodcat_model_info``)."""
        self.model.labels(bundle, model_version).set(1)

    def render(self) -> bytes:
        """What ``/metrics`` answers: :attr:`exposed` in Prometheus' text format."""
        if self.folder is not None:
            _forget_dead_workers(self.folder)
        return generate_latest(self.exposed)

    def close(self) -> None:
        """This process stops serving: its ``live*`` gauges leave the shared folder's totals."""
        if self.folder is not None:
            mark_process_dead(os.getpid(), self.folder)
