"""Where chunks are scored: in this process (here), or on a ``dask.distributed`` cluster
(:mod:`prodcat.batch.dask_engine`, imported only when asked for).

An engine is a context manager whose :meth:`score` takes ``(chunk index, chunk frame)`` pairs and
yields ``(chunk index, predictions table)`` pairs as chunks finish, in any order: the caller
(:func:`prodcat.batch.score_catalog`) writes each finished chunk to disk at once, so both engines
resume the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, Self

import pandas as pd

from prodcat.batch.scoring import score_chunk
from prodcat.predict import Predictor

#: ``(chunk index, rows)`` going in, ``(chunk index, predictions table)`` coming out
Chunk = tuple[int, pd.DataFrame]


def bundle_identity(manifest: dict[str, Any]) -> str:
    """SHA-256 of a bundle's manifest (which holds the SHA-256 of every file): another model, or the same
    model retrained, has another identity."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class Engine(Protocol):
    """What :func:`prodcat.batch.score_catalog` needs: the model's manifest (to tell whose parts a work directory
    holds), a context in which workers are up, and :meth:`score`, yielding chunks as they finish."""

    #: the manifest of the bundle the engine scores with
    manifest: dict[str, Any]

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def score(self, chunks: Iterable[Chunk], top_k: int) -> Iterator[Chunk]: ...


class LocalEngine:
    """Scores chunks one after another in this process, with one :class:`~prodcat.predict.Predictor`."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.manifest = predictor.manifest

    @classmethod
    def from_bundle(cls, bundle_dir: str | os.PathLike[str]) -> LocalEngine:
        """An engine on the bundle in ``bundle_dir``, verified and loaded (:meth:`~prodcat.predict.Predictor.load`)."""
        return cls(Predictor.load(bundle_dir))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def score(self, chunks: Iterable[Chunk], top_k: int) -> Iterator[Chunk]:
        """Each ``(index, chunk frame)`` of ``chunks`` scored, as ``(index, predictions table)``, in their order."""
        for index, chunk in chunks:
            yield index, score_chunk(self.predictor, chunk, top_k)
