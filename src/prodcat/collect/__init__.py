"""Collect products from public APIs into the canonical catalogue format (``prodcat collect``).

:class:`~prodcat.collect.base.Collector` is the interface one API implements (pages → records →
products); :func:`~prodcat.collect.pipeline.collect` runs any of them politely and resumably.
"""

from __future__ import annotations

from prodcat.collect.base import CollectedProduct, Collector, Page, PageFormatError, RecordError
from prodcat.collect.http import HttpClient, NetworkError, RateLimiter
from prodcat.collect.openfoodfacts import OpenFoodFactsCollector

#: collectors by their SOURCE name on the command line
COLLECTORS: dict[str, type[Collector]] = {OpenFoodFactsCollector.name: OpenFoodFactsCollector}


def __getattr__(name: str) -> object:
    # the pipeline imports pandas and Pillow: only when it is used, not with `prodcat collect`'s parser
    if name in ("CollectReport", "collect"):
        from prodcat.collect import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COLLECTORS",
    "CollectReport",
    "CollectedProduct",
    "Collector",
    "HttpClient",
    "NetworkError",
    "OpenFoodFactsCollector",
    "Page",
    "PageFormatError",
    "RateLimiter",
    "RecordError",
    "collect",
]
