"""What makes ``prodcat predict``'s predictions besides the model: the versions of prodcat and its libraries, and the
digests of prodcat's prediction code (an edit under one version, which the version does not tell).

A resumable run records the driver's (:class:`prodcat.batch.job.RunState`) and refuses to resume parts of another; a
dask worker compares its own with the driver's (:class:`prodcat.batch.dask_engine.PredictorPlugin`) and refuses to
score with another: either would mix the predictions of two programs in one output. Apart from the dask engine, so
that local runs never import dask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import prodcat.catalog.schema
import prodcat.config
import prodcat.features
import prodcat.image
import prodcat.models
import prodcat.parameters
import prodcat.predict
import prodcat.text
from prodcat.batch import scoring
from prodcat.bundle import library_versions, source_digests
from prodcat.formatting import first_few

#: the code that makes a prediction of ``prodcat predict``: the model's own packages (its heads and fusion, the
#: feature extractors and their caches, text cleaning, photo decoding) and the defaults its objects unpickle with
#: (:mod:`prodcat.parameters`), the Predictor, the canonical columns it reads and the config its heads hold, the making
#: of a row. The catalogue's loaders are not: what they read is in the input fingerprint
PREDICTION_CODE = (
    prodcat.models,
    prodcat.features,
    prodcat.text,
    prodcat.image,
    prodcat.parameters,
    prodcat.predict,
    prodcat.catalog.schema,
    prodcat.config,
    scoring,
)


@dataclass(frozen=True)
class Installation:
    """The versions of prodcat and its libraries (:func:`~prodcat.bundle.library_versions`, Python's among them) and
    the :func:`~prodcat.bundle.source_digests` of :data:`PREDICTION_CODE`."""

    libraries: dict[str, str]
    code: dict[str, str]

    @classmethod
    def here(cls, also: Iterable[str] = ()) -> Installation:
        """This process's; ``also``: more distributions whose versions are to match (dask's own, on a cluster)."""
        return cls(library_versions(also), source_digests(PREDICTION_CODE))

    def differences(self, other: Installation, *, here: str = "now", there: str = "there") -> list[str]:
        """What differs in ``other``, in words naming ``other``'s values ``there`` and this one's ``here``; empty if
        nothing does."""
        found = []
        if versions := _changed(other.libraries, self.libraries):
            said = "; ".join(
                f"{name} {other.libraries.get(name, 'none')} {there}, {self.libraries.get(name, 'none')} {here}"
                for name in versions
            )
            found.append(f"other versions of prodcat or its libraries ({said})")
        if edited := _changed(other.code, self.code):
            found.append(f"other prediction code (in {first_few(edited, 3)})")
        return found


def _changed(there: dict[str, str], now: dict[str, str]) -> list[str]:
    """The keys whose value differs between ``there`` and ``now``, or that only one has, in the order they were
    recorded."""
    return [key for key in dict.fromkeys([*there, *now]) if there.get(key) != now.get(key)]
