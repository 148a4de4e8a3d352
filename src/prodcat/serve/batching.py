"""Dynamic batching: concurrent requests share one call of a batch function.

The Predictor is much cheaper per product in a batch than one product at a time (on the
Flipkart text + photo model: ~25 ms for one text, ~39 ms for eight), and so is the review
store, whose cost is one durable commit (an fsync) per transaction however many records it
holds. So rather than one call per request, requests queue their items here; whenever a
slot is free it takes every item waiting (up to ``max_items``) and runs a single call in a
worker thread. Nothing is delayed on purpose: under light load each request runs alone at
once; under heavy load the batches grow by themselves while the previous call is busy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass
class _Job(Generic[Item, Outcome]):
    items: list[Item]
    future: asyncio.Future[list[Outcome]] = field(repr=False)


class MicroBatcher(Generic[Item, Outcome]):
    """Runs ``run(items) -> one outcome per item`` on the items of coalesced jobs.

    Parameters
    ----------
    run:
        Synchronous, thread-safe; called in a worker thread with the items of several jobs,
        in arrival order.
    slots:
        Calls running at once (more would only compete for the same cores, or the same lock).
    max_items:
        Items per call at most; a single job larger than this still runs whole.
    """

    def __init__(self, run: Callable[[list[Item]], list[Outcome]], slots: int, max_items: int) -> None:
        self.run = run
        self.slots = slots
        self.max_items = max_items
        self._waiting: list[_Job[Item, Outcome]] = []
        self._running = 0
        self._drains: set[asyncio.Task[None]] = set()

    async def submit(self, items: list[Item]) -> list[Outcome]:
        """One outcome per item, in order. Cancelling the caller (a timeout) does not cancel a call
        already running; a job still waiting when its caller gives up is dropped."""
        job: _Job[Item, Outcome] = _Job(items, asyncio.get_running_loop().create_future())
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

    def _take(self) -> list[_Job[Item, Outcome]]:
        taken: list[_Job[Item, Outcome]] = []
        count = 0
        while self._waiting and (not taken or count + len(self._waiting[0].items) <= self.max_items):
            job = self._waiting.pop(0)
            if job.future.done():  # its caller timed out while waiting: no need to compute it
                continue
            taken.append(job)
            count += len(job.items)
        return taken

    def _call(self, jobs: list[_Job[Item, Outcome]]) -> list[list[Outcome]]:
        outcomes = self.run([item for job in jobs for item in job.items])
        per_job, start = [], 0
        for job in jobs:
            per_job.append(outcomes[start : start + len(job.items)])
            start += len(job.items)
        return per_job
