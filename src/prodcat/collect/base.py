"""The collector interface: one public API's search pages → its records → canonical catalogue rows.

A collector knows three things about its API, and nothing about HTTP, caching or files:

1. :meth:`Collector.page_request`: the URL and query parameters of results page ``n`` (1-based);
2. :meth:`Collector.parse_page`: the records of a decoded JSON page and, when the API says, the total;
3. :meth:`Collector.to_product`: one record as a :class:`CollectedProduct` (raise :class:`RecordError`
   naming the field when a record cannot be used).

:func:`prodcat.collect.pipeline.collect` does the rest for every collector: rate limit, retries,
resumable page cache, de-duplication, photos, ``products.csv`` and ``collect.json``. Adding an API
is a subclass registered in :data:`prodcat.collect.COLLECTORS`; one that needs credentials (Edamam's
``app_id`` / ``app_key``) reads them from environment variables in its ``__init__`` and adds them
in :meth:`~Collector.page_request`, so they never appear on a command line or in ``collect.json``.
"""

from __future__ import annotations

import unicodedata
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar


def search_query(text: str) -> str:
    """``text`` as one query however it was typed, so that a re-run typed otherwise resumes its collection: accents
    composed (NFC: a macOS terminal gives 'crémant' as 'e' and a combining accent) and spacing collapsed ('pâte  à
    tartiner', a tab or a no-break space pasted: the API answers them as 'pâte à tartiner')."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class RecordError(ValueError):
    """A source record that cannot become a product: the ``field`` at fault and why."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class PageFormatError(ValueError):
    """A page whose JSON does not have the shape the collector expects (the API changed, or an error page)."""


@dataclass(frozen=True)
class Page:
    """One results page: the raw ``records`` and the number of results the query matches (``None``: unknown).

    Every record the API served, a malformed one (``null``, not an object) included: the paging counts them,
    and the pipeline reports them as skipped. ``saved``: when an earlier run saved the page, read from disk (ISO 8601,
    UTC), so that its count is not taken for today's; ``None``: fetched by this run.
    """

    records: list[Any]
    total: int | None = None
    saved: str | None = None


@dataclass(frozen=True)
class CollectedProduct:
    """One product in catalogue terms, before its photo is downloaded.

    ``category`` is a canonical path (``"A > B"``) or ``None``; ``image_url`` the photo to fetch;
    ``extras`` the source's other columns worth keeping (brand, quantity, product page, language...);
    ``warnings`` ``(field, message)`` pairs for values the record had but that could not be used (a list
    where a text was expected...): the product is kept without them, and the report lists them.
    Texts must be encodable as UTF-8 (no lone surrogate, which JSON allows) and hold no NUL (the catalogue
    loader takes one for a damaged file).
    """

    product_id: str
    title: str
    description: str
    category: str | None
    image_url: str | None
    extras: dict[str, str] = field(default_factory=dict)
    warnings: tuple[tuple[str, str], ...] = ()


class Collector(ABC):
    """A public JSON search API seen as pages of products; subclasses set the class attributes below."""

    #: the SOURCE name on the command line and in ``collect.json``
    name: ClassVar[str]
    #: where the API lives; tests point a collector to a local server instead
    default_base_url: ClassVar[str]
    #: requests per second the API allows for searches
    default_requests_per_second: ClassVar[float]
    #: seconds over which the API counts requests: a 429 without ``Retry-After`` waits this long
    rate_limit_window: ClassVar[float] = 60.0
    #: the largest page size the API serves
    max_page_size: ClassVar[int]
    #: the extra columns :meth:`to_product` fills, in ``products.csv`` order
    extra_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, base_url: str | None = None):
        self.base_url = (base_url or self.default_base_url).rstrip("/")

    @abstractmethod
    def page_request(self, query: str, page: int, page_size: int) -> tuple[str, dict[str, str | int]]:
        """URL and query parameters of results page ``page`` (1-based) of ``page_size`` records."""

    @abstractmethod
    def parse_page(self, payload: Any) -> Page:
        """The records of one decoded JSON page; :class:`PageFormatError` when it has an unexpected shape."""

    @abstractmethod
    def to_product(self, record: dict[str, Any]) -> CollectedProduct:
        """One record as a product; :class:`RecordError` when it cannot be one (e.g. no identifier)."""
