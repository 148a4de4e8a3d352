"""Dynamic batching of concurrent model calls (in-process, no model needed)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import pandas as pd
import pytest

from prodcat.serve.batching import MicroBatcher


@dataclass
class Outcome:
    product_id: str
    top_k: list[dict] = field(default_factory=list)


class RecordingModel:
    """Answers each row with its id and k categories; remembers the size of every call."""

    def __init__(self, delay: float = 0.05, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.calls: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, frame: pd.DataFrame, top_k: int) -> list[Outcome]:
        self.calls.append(len(frame))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)  # the model is busy: requests arriving meanwhile must queue
        if self.fail_on is not None and self.fail_on in set(frame["product_id"]):
            raise RuntimeError("model failure")
        return [Outcome(pid, [{"category": f"c{i}"} for i in range(top_k)]) for pid in frame["product_id"]]


def rows(*ids: str) -> list[dict]:
    return [{"product_id": pid} for pid in ids]


async def gather_jobs(batcher: MicroBatcher, jobs: list[tuple[list[dict], int]]) -> list:
    """The first job, then (once its model call has started) all the others at once."""
    first = asyncio.ensure_future(batcher.predict(*jobs[0]))
    await asyncio.sleep(0.01)
    others = await asyncio.gather(*(batcher.predict(job_rows, k) for job_rows, k in jobs[1:]), return_exceptions=True)
    (first_result,) = await asyncio.gather(first, return_exceptions=True)
    return [first_result, *others]


def test_concurrent_jobs_share_model_calls_and_keep_their_rows() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model, slots=1, max_rows=64)
    jobs = [(rows(f"p{i}", f"q{i}"), 3) for i in range(10)]
    results = asyncio.run(gather_jobs(batcher, jobs))
    # the first job runs alone at once; the nine that arrived while it ran go together
    assert model.calls == [2, 18]
    for i, result in enumerate(results):
        assert [o.product_id for o in result] == [f"p{i}", f"q{i}"]
    assert threading.main_thread().name not in model.threads


def test_each_job_gets_its_own_top_k() -> None:
    batcher = MicroBatcher(RecordingModel(), slots=1, max_rows=64)
    results = asyncio.run(gather_jobs(batcher, [(rows("a"), 5), (rows("b"), 2), (rows("c"), 4)]))
    assert [len(result[0].top_k) for result in results] == [5, 2, 4]


def test_calls_stay_under_max_rows_but_a_large_job_runs_whole() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model, slots=1, max_rows=4)
    jobs = [(rows("x"), 1)] + [(rows(f"a{i}", f"b{i}"), 1) for i in range(4)] + [(rows(*"abcdef"), 1)]
    asyncio.run(gather_jobs(batcher, jobs))
    assert model.calls == [1, 4, 4, 6]


def test_a_failing_call_fails_only_its_jobs() -> None:
    model = RecordingModel(fail_on="bad")
    batcher = MicroBatcher(model, slots=1, max_rows=2)
    results = asyncio.run(gather_jobs(batcher, [(rows("first"), 1), (rows("bad"), 1), (rows("x"), 1), (rows("y"), 1)]))
    # calls: [first], [bad, x] (fails), [y]
    assert model.calls == [1, 2, 1]
    assert results[0][0].product_id == "first" and results[3][0].product_id == "y"
    assert all(isinstance(r, RuntimeError) for r in results[1:3])


def test_a_caller_that_times_out_does_not_break_the_others() -> None:
    model = RecordingModel(delay=0.2)
    batcher = MicroBatcher(model, slots=1, max_rows=64)

    async def scenario() -> list:
        impatient = asyncio.wait_for(batcher.predict(rows("late"), 1), timeout=0.05)
        patient = batcher.predict(rows("ok"), 1)
        return await asyncio.gather(impatient, patient, return_exceptions=True)

    timed_out, answered = asyncio.run(scenario())
    assert isinstance(timed_out, TimeoutError)
    assert answered[0].product_id == "ok"


@pytest.mark.parametrize("slots", [1, 2])
def test_no_more_calls_at_once_than_slots(slots: int) -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def model(frame: pd.DataFrame, top_k: int) -> list[Outcome]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.03)
        with lock:
            running -= 1
        return [Outcome(pid) for pid in frame["product_id"]]

    batcher = MicroBatcher(model, slots=slots, max_rows=1)
    asyncio.run(gather_jobs(batcher, [(rows(f"p{i}"), 1) for i in range(8)]))
    assert peak == slots


def test_jobs_abandoned_while_waiting_are_not_computed() -> None:
    model = RecordingModel(delay=0.1)
    batcher = MicroBatcher(model, slots=1, max_rows=64)

    async def scenario() -> list:
        running = asyncio.ensure_future(batcher.predict(rows("first"), 1))
        await asyncio.sleep(0.01)
        abandoned = asyncio.wait_for(batcher.predict(rows("gone"), 1), timeout=0.02)
        return await asyncio.gather(running, abandoned, return_exceptions=True)

    first, gone = asyncio.run(scenario())
    assert first[0].product_id == "first" and isinstance(gone, TimeoutError)
    assert model.calls == [1]
