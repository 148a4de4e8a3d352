"""Dynamic batching: concurrent requests share one model call.

The Predictor is much cheaper per product in a batch than one product at a time (on the
Flipkart text + photo model: ~25 ms for one text, ~39 ms for eight). So rather than one model
call per request, requests queue their rows here; whenever a model slot is free it takes every
row waiting (up to ``max_rows``) and runs a single call in a worker thread. Nothing is delayed
on purpose: under light load each request runs alone at once; under heavy load the batches
grow by themselves while the model is busy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, is_dataclass, replace
from typing import Any

import anyio
import pandas as pd


@dataclass
class _Job:
    rows: list[dict[str, Any]]
    top_k: int
    future: asyncio.Future[list[Any]] = field(repr=False)


class MicroBatcher:
    """Runs ``predict_rows(frame, top_k) -> one outcome per row`` on coalesced jobs.

    Parameters
    ----------
    predict_rows:
        Synchronous, thread-safe; called in a worker thread with the rows of several jobs.
    slots:
        Model calls running at once (more would only compete for the same cores).
    max_rows:
        Rows per call at most; a single job larger than this still runs whole.
    """

    def __init__(self, predict_rows: Callable[[pd.DataFrame, int], list[Any]], slots: int, max_rows: int) -> None:
        self.predict_rows = predict_rows
        self.slots = slots
        self.max_rows = max_rows
        self._waiting: list[_Job] = []
        self._running = 0
        self._drains: set[asyncio.Task[None]] = set()

    async def predict(self, rows: list[dict[str, Any]], top_k: int) -> list[Any]:
        """One outcome per row, in order. Cancelling the caller (a timeout) does not cancel the model call."""
        job = _Job(rows, top_k, asyncio.get_running_loop().create_future())
        self._waiting.append(job)
        if self._running < self.slots:
            self._running += 1
            task = asyncio.create_task(self._drain())
            self._drains.add(task)  # keep a reference until it ends
            task.add_done_callback(self._drains.discard)
        return await job.future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                jobs = self._take()
                if not jobs:
                    continue
                try:
                    outcomes = await anyio.to_thread.run_sync(self._call, jobs)
                except Exception as exc:
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                for job, result in zip(jobs, outcomes, strict=True):
                    if not job.future.done():  # a caller that timed out has gone
                        job.future.set_result(result)
        finally:
            self._running -= 1

    def _take(self) -> list[_Job]:
        taken, rows = [], 0
        while self._waiting and (not taken or rows + len(self._waiting[0].rows) <= self.max_rows):
            job = self._waiting.pop(0)
            if job.future.done():  # its caller timed out while waiting: no need to compute it
                continue
            taken.append(job)
            rows += len(job.rows)
        return taken

    def _call(self, jobs: list[_Job]) -> list[list[Any]]:
        top_k = max(job.top_k for job in jobs)
        frame = pd.DataFrame([row for job in jobs for row in job.rows])
        outcomes = self.predict_rows(frame, top_k)
        per_job, start = [], 0
        for job in jobs:
            per_job.append([_truncate(outcome, job.top_k) for outcome in outcomes[start : start + len(job.rows)]])
            start += len(job.rows)
        return per_job


def _truncate(outcome: Any, top_k: int) -> Any:
    """A prediction with only its ``top_k`` first categories (jobs in one call may ask for different k)."""
    if is_dataclass(outcome) and len(outcome.top_k) > top_k:
        return replace(outcome, top_k=outcome.top_k[:top_k])
    return outcome
