"""Dynamic batching of concurrent model calls and review writes (in-process, no model needed)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import anyio
import pandas as pd
import pytest
from sqlalchemy.exc import OperationalError

from prodcat.evaluate.explain import ExplainSettings
from prodcat.predict import Prediction
from prodcat.review.store import NewReview, ReviewStore
from prodcat.serve import service as service_module
from prodcat.serve.batching import MicroBatcher
from prodcat.serve.inputs import ApiError, ProductRequest
from prodcat.serve.metrics import ApiMetrics
from prodcat.serve.service import PredictionService
from prodcat.serve.settings import ServeSettings
from prodcat.serve.threads import run_abandonable


@dataclass
class Outcome:
    product_id: str
    top_k: list[dict] = field(default_factory=list)


class RecordingModel:
    """Answers each item with its id; remembers the size of every call. ``hold``: each call waits until it is set
    (a model busy for as long as the test needs, however loaded the machine)."""

    def __init__(self, delay: float = 0.05, fail_on: str | None = None, hold: threading.Event | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.hold = hold
        self.calls: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, items: list[dict]) -> list[Outcome]:
        self.calls.append(len(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)  # the model is busy: requests arriving meanwhile must queue
        if self.hold is not None:
            self.hold.wait(10)
        if self.fail_on is not None and self.fail_on in {item["product_id"] for item in items}:
            raise RuntimeError("model failure")
        return [Outcome(item["product_id"]) for item in items]


def rows(*ids: str) -> list[dict]:
    return [{"product_id": pid} for pid in ids]


async def gather_jobs(batcher: MicroBatcher, jobs: list[list[dict]]) -> list:
    """The first job, then (once its call has started) all the others at once."""
    first = asyncio.ensure_future(batcher.submit(jobs[0]))
    await asyncio.sleep(0.01)
    others = await asyncio.gather(*(batcher.submit(items) for items in jobs[1:]), return_exceptions=True)
    (first_result,) = await asyncio.gather(first, return_exceptions=True)
    return [first_result, *others]


def test_concurrent_jobs_share_model_calls_and_keep_their_rows() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model, slots=1, max_items=64)
    jobs = [rows(f"p{i}", f"q{i}") for i in range(10)]
    results = asyncio.run(gather_jobs(batcher, jobs))
    # the first job runs alone at once; the nine that arrived while it ran go together
    assert model.calls == [2, 18]
    for i, result in enumerate(results):
        assert [o.product_id for o in result] == [f"p{i}", f"q{i}"]
    assert threading.main_thread().name not in model.threads


def test_calls_stay_under_max_rows_but_a_large_job_runs_whole() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model, slots=1, max_items=4)
    jobs = [rows("x")] + [rows(f"a{i}", f"b{i}") for i in range(4)] + [rows(*"abcdef")]
    asyncio.run(gather_jobs(batcher, jobs))
    assert model.calls == [1, 4, 4, 6]


def test_a_failing_call_fails_only_its_jobs() -> None:
    model = RecordingModel(fail_on="bad")
    batcher = MicroBatcher(model, slots=1, max_items=2)
    results = asyncio.run(gather_jobs(batcher, [rows("first"), rows("bad"), rows("x"), rows("y")]))
    # calls: [first], [bad, x] (fails), [y]
    assert model.calls == [1, 2, 1]
    assert results[0][0].product_id == "first" and results[3][0].product_id == "y"
    assert all(isinstance(r, RuntimeError) for r in results[1:3])


def test_a_caller_that_times_out_does_not_break_the_others() -> None:
    release = threading.Event()
    model = RecordingModel(delay=0, hold=release)
    batcher = MicroBatcher(model, slots=1, max_items=64)

    async def scenario() -> list:
        impatient = asyncio.ensure_future(asyncio.wait_for(batcher.submit(rows("late")), timeout=0.05))
        patient = asyncio.ensure_future(batcher.submit(rows("ok")))
        (timed_out,) = await asyncio.gather(impatient, return_exceptions=True)  # its call held until then
        release.set()
        return [timed_out, await patient]

    timed_out, answered = asyncio.run(scenario())
    assert isinstance(timed_out, TimeoutError)
    assert answered[0].product_id == "ok"


@pytest.mark.parametrize("slots", [1, 2])
def test_no_more_calls_at_once_than_slots(slots: int) -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    all_slots_busy = threading.Event()

    def model(items: list[dict]) -> list[Outcome]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == slots:
                all_slots_busy.set()
        # the first calls wait for each other (a batcher running fewer at once would leave them waiting): a
        # loaded machine cannot end one before the next starts
        all_slots_busy.wait(10)
        time.sleep(0.03)  # room for a call past the slots to start beside them, were it let
        with lock:
            running -= 1
        return [Outcome(item["product_id"]) for item in items]

    batcher = MicroBatcher(model, slots=slots, max_items=1)
    asyncio.run(gather_jobs(batcher, [rows(f"p{i}") for i in range(8)]))
    assert peak == slots


def test_jobs_abandoned_while_waiting_are_not_computed() -> None:
    release = threading.Event()
    model = RecordingModel(delay=0, hold=release)
    batcher = MicroBatcher(model, slots=1, max_items=64)

    async def scenario() -> list:
        running = asyncio.ensure_future(batcher.submit(rows("first")))
        await asyncio.sleep(0.01)
        abandoned = asyncio.wait_for(batcher.submit(rows("gone")), timeout=0.02)
        (gone,) = await asyncio.gather(abandoned, return_exceptions=True)  # the first call held until then
        release.set()
        return [await running, gone]

    first, gone = asyncio.run(scenario())
    assert first[0].product_id == "first" and isinstance(gone, TimeoutError)
    assert model.calls == [1]


# --- the service: one model call and one review transaction for concurrent requests ----------


class FakePredictor:
    """Answers every product with the same ranking; ``review`` for titles starting with "?"."""

    version = "test"

    def __init__(self) -> None:
        self.labels = ["a", "b", "c", "d", "e"]
        self.manifest: dict = {}
        self.calls: list[int] = []

    def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Prediction]:
        self.calls.append(len(frame))
        time.sleep(0.05)
        probabilities = [0.5, 0.2, 0.1, 0.1, 0.1]
        ranking = [{"category": c, "probability": p} for c, p in zip(self.labels, probabilities, strict=True)]
        return [
            Prediction(pid, "a", 0.5, "review" if title.startswith("?") else "auto", ranking[:top_k], ["text"])
            for pid, title in zip(frame["product_id"], frame["title"], strict=True)
        ]


class CountingStore(ReviewStore):
    """A real SQLite review store that counts its transactions."""

    def __init__(self, url: str, fail: bool = False) -> None:
        super().__init__(url)
        self.transactions: list[int] = []
        self.fail = fail

    def record_many(self, reviews: list[NewReview]) -> list[int]:
        self.transactions.append(len(reviews))
        if self.fail:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return super().record_many(reviews)


def service(store: ReviewStore | None) -> tuple[PredictionService, FakePredictor]:
    predictor = FakePredictor()
    return PredictionService(predictor, ServeSettings(), store, ApiMetrics()), predictor


async def concurrent_requests(svc: PredictionService, requests: list[tuple[str, int]]) -> list:
    """The first request, then (once its model call has started) the others at once."""
    first = asyncio.ensure_future(svc.predict([ProductRequest(title=requests[0][0])], "r0", requests[0][1]))
    await asyncio.sleep(0.01)
    others = [svc.predict([ProductRequest(title=t)], f"r{i}", k) for i, (t, k) in enumerate(requests[1:], 1)]
    return [await first, *await asyncio.gather(*others)]


def test_requests_in_one_model_call_each_get_their_own_top_k() -> None:
    svc, predictor = service(store=None)
    results = asyncio.run(concurrent_requests(svc, [("x", 5), ("y", 2), ("z", 4)]))
    assert predictor.calls == [1, 2]
    assert [len(result[0].top_k) for result in results] == [5, 2, 4]


def test_reviews_of_concurrent_requests_share_a_transaction(tmp_path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    svc, _ = service(store)
    titles = ["?first"] + [f"?later {i}" for i in range(6)] + ["sure"]
    results = asyncio.run(concurrent_requests(svc, [(t, 3) for t in titles]))
    # the first request's record is committed alone; the six that were predicted together, together
    assert store.transactions == [1, 6]
    review_ids = [result[0].review_id for result in results]
    assert review_ids[-1] is None and results[-1][0].decision == "auto"
    stored = {item.id: item.title for item in store.items(limit=100)}
    assert {review_ids[i]: titles[i] for i in range(7)} == stored


def test_a_failed_review_write_fails_only_the_requests_it_holds(tmp_path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path / 'reviews.db'}", fail=True)
    svc, _ = service(store)
    results = asyncio.run(concurrent_requests(svc, [("?a", 3), ("?b", 3), ("sure", 3)]))
    assert [r[0].status for r in results[:2]] == [503, 503]
    assert results[2][0].category == "a" and results[2][0].review_id is None


def test_one_explanation_runs_at_a_time_and_none_is_recorded_for_review(tmp_path) -> None:
    """Each explanation is one model call of a row per word: concurrent ones queue behind each other rather
    than share the cores the predictions need; and an explanation never enters the review queue, even for a
    product that /predict would send there."""
    running, peak = 0, 0
    lock = threading.Lock()

    class SlowPredictor(FakePredictor):
        def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Prediction]:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.1)  # long enough for explanations started together to overlap, were they let
            with lock:
                running -= 1
            return super().predict(frame, top_k)

    store = CountingStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    predictor = SlowPredictor()
    svc = PredictionService(predictor, ServeSettings(), store, ApiMetrics())
    product = ProductRequest(title="?unsure lamp shade")  # a "review" decision (FakePredictor)
    recorded = store.count(None)

    async def explain_three() -> list:
        return await asyncio.gather(*(svc.explain(product, f"e{i}", 3, ExplainSettings(), False) for i in range(3)))

    explanations = asyncio.run(explain_three())
    assert len(predictor.calls) == 3 and peak == 1
    assert [e.prediction.decision for e in explanations] == ["review"] * 3
    assert [e.prediction.review_id for e in explanations] == [None] * 3
    assert store.count(None) == recorded and store.transactions == []
    # the same product through /predict's path is recorded: the store was there to write to
    (predicted,) = asyncio.run(svc.predict([product], "p", 3))
    assert predicted.review_id is not None and store.count(None) == recorded + 1


def test_an_explanation_abandoned_at_the_timeout_keeps_its_turn_until_it_ends() -> None:
    """A request cancelled at request_timeout_s leaves its explanation running in its thread: the next one
    waits for that thread to end rather than run beside it (anyio gave the limiter back as soon as the first
    caller was cancelled, so explanations retried after 504s piled up on the cores)."""
    release = threading.Event()
    started: list[int] = []

    class StuckPredictor(FakePredictor):
        def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Prediction]:
            started.append(len(frame))
            release.wait(30)
            return super().predict(frame, top_k)

    svc = PredictionService(StuckPredictor(), ServeSettings(), None, ApiMetrics())
    product = ProductRequest(title="lamp shade")

    async def abandon_then_explain() -> tuple[int, object]:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(svc.explain(product, "gone", 3, ExplainSettings(), False), timeout=0.2)
        second = asyncio.ensure_future(svc.explain(product, "next", 3, ExplainSettings(), False))
        await asyncio.sleep(1)  # ample time for the second to start, were it let
        running = len(started)
        release.set()
        return running, await asyncio.wait_for(second, timeout=30)

    running, explanation = asyncio.run(abandon_then_explain())
    assert running == 1
    assert len(started) == 2 and explanation.prediction.category == "a"


class OneSecondPerCall(FakePredictor):
    """Each call takes one second of the service's clock (:func:`model_clock`)."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self.clock = clock

    def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Prediction]:
        self.clock[0] += 1.0
        return super().predict(frame, top_k)


@pytest.fixture
def model_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clock the service times model calls with, moved only by :class:`OneSecondPerCall`."""
    clock = [0.0]
    monkeypatch.setattr(service_module, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    return clock


def model_seconds(metrics: ApiMetrics) -> tuple[float | None, float | None]:
    """The count and the sum of ``prodcat_model_latency_seconds``."""
    sample = metrics.registry.get_sample_value
    return sample("prodcat_model_latency_seconds_count"), sample("prodcat_model_latency_seconds_sum")


def test_a_failed_model_call_and_the_retries_of_its_rows_each_observe_their_own_time(model_clock: list[float]) -> None:
    """A batch call that failed was observed in prodcat_model_latency_seconds from its start to the end of the
    one-row retries it ran, which were observed too: their time counted twice (7 model-seconds for 4)."""

    class FailsOnBadRows(OneSecondPerCall):
        def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Prediction]:
            predictions = super().predict(frame, top_k)
            if "bad" in set(frame["title"]):
                raise ValueError("a row the model cannot read")
            return predictions

    metrics = ApiMetrics()
    svc = PredictionService(FailsOnBadRows(model_clock), ServeSettings(), None, metrics)
    rows = [({"product_id": title, "title": title, "description": "", "image": None}, 3) for title in ["a", "bad", "c"]]
    outcomes = svc._run_model(rows)
    assert [getattr(outcome, "status", 200) for outcome in outcomes] == [200, 500, 200]
    # one failed call of three rows, then each row alone: four calls, four seconds
    assert model_seconds(metrics) == (4, 4.0)


def test_an_explanation_observes_its_model_call_as_predictions_do(model_clock: list[float]) -> None:
    """/explain's model call (the product and one variant per word: its costliest) was left out of
    prodcat_model_latency_seconds, so /metrics showed no model time while explanations held the model."""
    metrics = ApiMetrics()
    svc = PredictionService(OneSecondPerCall(model_clock), ServeSettings(), None, metrics)
    explanation = asyncio.run(svc.explain(ProductRequest(title="lamp shade"), "r1", 3, ExplainSettings(), False))
    assert explanation.words is not None and len(explanation.words.weights) == 2
    assert model_seconds(metrics) == (1, 1.0)
    asyncio.run(svc.predict([ProductRequest(title="lamp")], "r2", 3))
    assert model_seconds(metrics) == (2, 2.0)


def test_a_photo_check_abandoned_at_the_timeout_keeps_its_thread_until_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Photo checks run PHOTO_CHECKS_AT_ONCE at a time (anyio's pool of 40 threads before), but one abandoned by its
    request's 504 gave its place back while it still decoded: under a flood of large photos, decodes piled up past
    the limit, each with its CPU and memory. It keeps its place until it ends (here a limit of one)."""
    svc, release, started = _photo_checks_held_until_released(monkeypatch)
    product = ProductRequest(title="mug", image_bytes=b"a photo", image_type="jpeg")

    async def abandon_then_predict() -> tuple[int, list]:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(svc.predict([product], "gone", 3), timeout=0.2)
        second = asyncio.ensure_future(svc.predict([product], "next", 3))
        await asyncio.sleep(1)  # ample time for the second check to start, were it let
        running = len(started)
        release.set()
        return running, await asyncio.wait_for(second, timeout=30)

    running, (prediction,) = asyncio.run(abandon_then_predict())
    assert running == 1
    assert len(started) == 2 and prediction.category == "a"


def test_a_batch_abandoned_at_the_timeout_checks_no_more_of_its_photos(monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread checking a batch's photos went on through all of them after the 504: up to 64 photos of a few
    seconds each held one of the PHOTO_CHECKS_AT_ONCE for minutes, and every photo request behind it waited. It now
    finishes the photo it checks and stops."""
    svc, release, checked = _photo_checks_held_until_released(monkeypatch)
    batch = [ProductRequest(title="mug", image_bytes=f"photo {i}".encode(), image_type="jpeg") for i in range(3)]

    async def abandon_then_predict() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(svc.predict(batch, "gone", 3), timeout=0.2)
        release.set()
        # starts once the abandoned thread has ended, its one place taken until then
        await asyncio.wait_for(svc.predict(batch[:1], "next", 3), timeout=30)

    asyncio.run(abandon_then_predict())
    assert checked == [b"photo 0", b"photo 0"]


def _photo_checks_held_until_released(
    monkeypatch: pytest.MonkeyPatch,
    slots: int = 1,
    held: Callable[[bytes], bool] = lambda photo: True,
    settings: ServeSettings | None = None,
) -> tuple[PredictionService, threading.Event, list[bytes]]:
    """A service running ``slots`` photo checks at once, each check noting its photo's bytes in the list returned, the
    checks of the photos ``held`` picks (all by default) then held until the event returned is set (30 s at most)."""
    release = threading.Event()
    checked: list[bytes] = []

    def held_check(data: bytes, settings: ServeSettings, side: int | None) -> bytes:
        checked.append(data)
        if held(data):
            release.wait(30)
        return data

    monkeypatch.setattr(service_module, "check_image_content", held_check)
    monkeypatch.setattr(service_module, "PHOTO_CHECKS_AT_ONCE", slots)
    svc = PredictionService(FakePredictor(), settings or ServeSettings(), None, ApiMetrics())
    return svc, release, checked


def _predicted_then_released(svc: PredictionService, products: list[ProductRequest], release: threading.Event) -> list:
    """The outcomes of ``products`` (10 s at most), then the held photo checks released."""

    async def predict() -> list:
        try:
            return await asyncio.wait_for(svc.predict(products, "r", 3), timeout=10)
        finally:
            release.set()

    return [(o.status, o.error) if isinstance(o, ApiError) else o.category for o in asyncio.run(predict())]


def _with_photos(*photos: bytes) -> list[ProductRequest]:
    return [
        ProductRequest(f"mug {i}", product_id=f"sku-{i}", image_bytes=p, image_type="png") for i, p in enumerate(photos)
    ]


def test_a_photo_slow_to_check_costs_its_own_item_an_error_and_the_batch_is_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A /predict-batch one of whose photos took longer to check than request_timeout_s (a 7000 x 7000 PNG, 3.6 s
    to decode at a 3 s limit) was answered 504 whole: the predictions of its other products were lost. Its photo
    checks now have half of the request's time: the slow photo's item alone is refused 504 image_check_timeout, the
    photos after it checked on another place meanwhile."""
    monkeypatch.setattr(service_module, "SLOW_PHOTO_S", 0.05)
    settings = ServeSettings(request_timeout_s=3)
    svc, release, checked = _photo_checks_held_until_released(monkeypatch, 2, lambda photo: photo == b"slow", settings)
    products = _with_photos(b"photo 0", b"slow", b"photo 2")
    outcomes = _predicted_then_released(svc, [*products, ProductRequest("text only")], release)
    assert outcomes == ["a", (504, "image_check_timeout"), "a", "a"]
    assert checked == [b"photo 0", b"slow", b"photo 2"]


def test_photos_whose_check_never_began_within_the_budget_are_refused_unchecked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With one photo check at a time (one core, or as many --workers as cores), the photos after a slow one wait
    for its place, which its abandoned decode keeps: at the request's budget they are refused 504 image_not_checked
    (send it again) and never checked, and the products without a photo are predicted."""
    monkeypatch.setattr(service_module, "SLOW_PHOTO_S", 0.05)
    settings = ServeSettings(request_timeout_s=3)
    svc, release, checked = _photo_checks_held_until_released(monkeypatch, 1, lambda photo: photo == b"slow", settings)
    products = [*_with_photos(b"slow", b"photo 1"), ProductRequest("text only")]
    outcomes = _predicted_then_released(svc, products, release)
    assert outcomes == [(504, "image_check_timeout"), (504, "image_not_checked"), "a"]
    assert checked == [b"slow"]


def test_a_photo_slow_to_check_lets_the_next_begin_and_is_not_refused_before_the_budget_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """f49d10e gave each photo but a request's last half of the time left for its checks, that time a third of the
    request's: at the default 30 s limit, a batch of 20 products, 10 of them 7000 x 7000 PNGs of about 1.5 s each,
    answered 20 predictions in 17 s before it and 11 after it, the later PNGs refused once their halved budgets fell
    under a second. No photo is refused now before the request's time for photo checks ends, and one still being
    checked after SLOW_PHOTO_S lets the next begin beside it: here the first photo's check lasts until the second's
    has begun."""
    monkeypatch.setattr(service_module, "SLOW_PHOTO_S", 0.05)
    settings = ServeSettings(request_timeout_s=60)
    svc, release, checked = _photo_checks_held_until_released(
        monkeypatch, 2, lambda photo: photo == b"photo 0", settings
    )

    async def predict() -> list:
        answer = asyncio.ensure_future(svc.predict(_with_photos(b"photo 0", b"photo 1"), "r", 3))
        try:
            async with asyncio.timeout(10):
                while b"photo 1" not in checked:
                    await asyncio.sleep(0.01)
        finally:
            release.set()
        return await answer

    assert [outcome.category for outcome in asyncio.run(predict())] == ["a", "a"]


def test_a_photo_check_that_fails_unexpectedly_costs_its_own_products_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A photo whose check raised something else than a refusal (a MemoryError decoding a photo of max_pixels, a
    decoder bug) failed its whole /predict-batch, 500 internal_error (logged as an ExceptionGroup since the checks run
    in a task group), the batch's other products unanswered. It is that photo's products' own error now, 500
    image_check_failed, logged, as a model failure is prediction_failed."""

    def check(data: bytes, settings: ServeSettings, side: int | None) -> bytes:
        if data == b"too big":
            raise MemoryError
        return data

    monkeypatch.setattr(service_module, "check_image_content", check)
    svc, _ = service(store=None)
    outcomes = asyncio.run(svc.predict(_with_photos(b"photo 0", b"too big", b"photo 2"), "r", 3))
    assert [(o.status, o.error) if isinstance(o, ApiError) else o.category for o in outcomes] == [
        "a",
        (500, "image_check_failed"),
        "a",
    ]
    assert outcomes[1].product_id == "sku-1"
    assert "photo check failed" in caplog.text


def test_the_server_processes_share_the_photo_checks_the_cores_can_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --workers N, each process ran as many photo checks at once as the machine has cores, N times the cores in
    all, each decoding a photo of up to max_pixels (a PNG in full: 150 MB at the default). Each now runs its share:
    of 4 cores, 2 in each of 2 processes."""
    monkeypatch.setattr(service_module, "PHOTO_CHECKS_AT_ONCE", 4)
    running, share = 0, 2
    lock = threading.Lock()
    release, past_the_share = threading.Event(), threading.Event()

    def check(data: bytes, settings: ServeSettings, side: int | None) -> bytes:
        nonlocal running
        with lock:
            running += 1
            if running > share:
                past_the_share.set()
        release.wait(30)
        return data

    monkeypatch.setattr(service_module, "check_image_content", check)
    svc = PredictionService(FakePredictor(), ServeSettings(workers=2), None, ApiMetrics())
    product = ProductRequest(title="mug", image_bytes=b"a photo", image_type="jpeg")

    async def three_requests() -> int:
        requests = [asyncio.ensure_future(svc.predict([product], f"r{i}", 3)) for i in range(3)]
        # a third check past the share starts at once, were it let
        await asyncio.to_thread(past_the_share.wait, 1)
        most = running
        release.set()
        await asyncio.wait_for(asyncio.gather(*requests), timeout=30)
        return most

    assert asyncio.run(three_requests()) == share


def test_a_thread_abandoned_as_the_server_stops_still_ends() -> None:
    """An abandoned thread gave its token back by waiting for the event loop to take it: one that ended while
    the server was stopping (its loop no longer running, not yet closed) waited for good, and the process,
    which waits for its threads, never exited."""
    release = threading.Event()
    workers: list[threading.Thread] = []

    def work() -> None:
        workers.append(threading.current_thread())
        release.wait(10)

    async def abandon() -> None:
        async with anyio.create_task_group() as group:

            async def cancel_once_working() -> None:  # a thread cancelled before it starts never runs
                while not workers:
                    await anyio.sleep(0.01)
                group.cancel_scope.cancel()

            group.start_soon(cancel_once_working)
            await run_abandonable(work, limiter=anyio.CapacityLimiter(1))

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(abandon())  # the loop stops, as a stopping server's does
        release.set()
        workers[0].join(10)
        assert not workers[0].is_alive()
    finally:
        loop.close()
