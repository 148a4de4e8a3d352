"""Collect products from public APIs into the canonical catalogue format (``prodcat collect``).

:class:`~prodcat.collect.base.Collector` is the interface one API implements (pages → records →
products); :func:`~prodcat.collect.pipeline.collect` runs any of them politely and resumably.
"""

from __future__ import annotations

from prodcat.collect.base import CollectedProduct, Collector, Page, PageFormatError, RecordError
from prodcat.collect.http import HttpClient, NetworkError, RateLimiter
from prodcat.collect.openfoodfacts import OpenFoodFactsCollector
from prodcat.collect.pipeline import CollectReport, collect

#: collectors by their SOURCE name on the command line
COLLECTORS: dict[str, type[Collector]] = {OpenFoodFactsCollector.name: OpenFoodFactsCollector}

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
