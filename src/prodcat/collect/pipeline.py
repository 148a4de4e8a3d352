"""Run a :class:`~prodcat.collect.base.Collector`: pages → products → photos → ``products.csv`` + ``collect.json``.

Output folder::

    DIR/products.csv            canonical columns (product_id, title, description, image, category), then
                                source, image_url and the collector's extra columns; loads with load_catalog
    DIR/images/<id>.<type>      photos that decoded safely (--images); ``image`` holds ``images/<id>.<type>``
    DIR/pages/<source>-<key>/   each results page as the API sent it (key: a hash of base URL, query, page size)
    DIR/collect.json            source, query, times, counts, and every error with its page / product and field

Resumable: a re-run reads the pages and photos already on disk and only asks the network for the rest,
so an interrupted collection (network down, Ctrl-C, a larger ``max_products``) continues where it stopped.
Files are written beside their final name and renamed, so an interruption never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from prodcat.catalog.schema import COLUMNS
from prodcat.collect.base import CollectedProduct, Collector, Page, PageFormatError, RecordError
from prodcat.collect.http import HttpClient, NetworkError
from prodcat.files import write_atomically
from prodcat.image.decode import DEFAULT_MAX_BYTES, ImageDecodeError, load_image, sniff_image_type

log = logging.getLogger(__name__)

PRODUCTS_CSV = "products.csv"
REPORT_JSON = "collect.json"
IMAGES_DIR = "images"
PAGES_DIR = "pages"


@dataclass
class CollectReport:
    """What a collection did; ``collect.json`` is this as JSON.

    ``stopped_by``: ``"max_products"``, ``"exhausted"`` (no more results) or ``"error"`` (a page could not be
    fetched after its retries: ``fatal_error`` says which and why). ``errors``: one dict per page, product
    or photo that failed, with ``field`` and ``message`` (and ``page``, ``record``, ``product_id`` when known).
    """

    source: str
    query: str
    base_url: str
    started: str
    finished: str = ""
    seconds: float = 0.0
    max_products: int | None = None
    total_matching: int | None = None
    stopped_by: str = ""
    fatal_error: str | None = None
    counts: dict[str, int] = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)


def collect(
    collector: Collector,
    query: str,
    out_dir: str | Path,
    api_client: HttpClient,
    *,
    max_products: int | None = None,
    page_size: int | None = None,
    image_client: HttpClient | None = None,
    max_image_bytes: int = DEFAULT_MAX_BYTES,
    refresh: bool = False,
) -> CollectReport:
    """Collect up to ``max_products`` products matching ``query`` (all of them when ``None``) into ``out_dir``.

    Args:
        api_client: fetches the results pages (its rate limit is the API's).
        page_size: records per page, at most the collector's ``max_page_size`` (its default).
        image_client: when given, each product's photo is downloaded through it, checked by
            :func:`prodcat.image.decode.load_image` (real image, not corrupt, at most ``max_image_bytes``
            bytes and its pixel limit) and saved under ``out_dir/images``; products whose photo fails
            keep ``image`` empty and the failure is in the report.
        refresh: fetch every page again instead of reading the pages saved by an earlier run.

    Returns:
        The report, also written to ``out_dir/collect.json``. ``products.csv`` is written unless the very
        first page failed (then an earlier run's file, if any, is left as it was); when a later page fails
        it holds the products collected until then, and the report says so.
    """
    if max_products is not None and max_products < 1:
        raise ValueError(f"max_products must be at least 1, got {max_products}")
    page_size = min(page_size or collector.max_page_size, collector.max_page_size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report = CollectReport(collector.name, query, collector.base_url, _now(), max_products=max_products)
    pages = _PageCache(out / PAGES_DIR, collector, query, page_size, refresh)
    products = _collect_products(collector, query, page_size, max_products, api_client, pages, report)
    images: dict[str, str] = {}
    if image_client is not None:
        images = _download_photos(products, out / IMAGES_DIR, image_client, max_image_bytes, report)
    if products or report.fatal_error is None:  # a query matching nothing is an empty catalogue, not an error
        _write_products(out / PRODUCTS_CSV, collector, products, images)
    report.counts["products"] = len(products)
    report.counts["with_category"] = sum(p.category is not None for p in products)
    report.counts["with_photo"] = len(images)
    report.counts = dict(sorted(report.counts.items()))  # a plain dict: asdict() cannot copy a Counter
    report.finished = _now()
    report.seconds = round(time.monotonic() - started, 3)
    _write_bytes(out / REPORT_JSON, json.dumps(asdict(report), indent=2, ensure_ascii=False).encode())
    return report


def _collect_products(
    collector: Collector,
    query: str,
    page_size: int,
    max_products: int | None,
    client: HttpClient,
    pages: _PageCache,
    report: CollectReport,
) -> list[CollectedProduct]:
    """Walk the result pages until ``max_products`` distinct products, the last page, or a page that fails."""
    products: dict[str, CollectedProduct] = {}
    counts = report.counts
    limit = max_products if max_products is not None else math.inf
    number = served = 0  # pages read, and the records they held
    with tqdm(total=max_products, desc=f"{collector.name} {query!r}", unit="product") as progress:
        while len(products) < limit:
            number += 1
            try:
                page = pages.get(number, client)
            except (NetworkError, PageFormatError) as exc:
                report.stopped_by = "error"
                report.fatal_error = f"page {number}: {exc}"
                report.errors.append({"page": number, "field": "page", "message": str(exc)})
                break
            if page.total is not None:
                report.total_matching = page.total
                progress.total = min(page.total, limit)
            known_before = len(products)
            served += len(page.records)
            _add_records(collector, page, number, products, limit, report, progress)
            if _is_last_page(page, served, page_size):
                break
            if len(products) == known_before and len(page.records) == page_size:
                # a whole page of products seen already: the API ignores the page number; stop instead of looping
                message = "a full page of products already collected (the API seems to ignore paging); stopped"
                report.errors.append({"page": number, "field": "page", "message": message})
                break
    counts["pages_fetched"] = pages.fetched
    counts["pages_from_cache"] = pages.reused
    if not report.stopped_by:
        report.stopped_by = "max_products" if len(products) >= limit else "exhausted"
    return list(products.values())


def _add_records(
    collector: Collector,
    page: Page,
    number: int,
    products: dict[str, CollectedProduct],
    limit: float,
    report: CollectReport,
    progress: tqdm,
) -> None:
    """Add a page's new products to ``products`` (by id) until ``limit``; count and report the rest."""
    counts = report.counts
    for index, record in enumerate(page.records, start=1):
        counts["records"] += 1
        try:
            product = collector.to_product(record)
        except RecordError as exc:
            counts["records_skipped"] += 1
            report.errors.append({"page": number, "record": index, "field": exc.field, "message": str(exc)})
            continue
        if product.product_id in products:
            # result orders shift while paging (popularity sorts): the same product on two pages
            counts["duplicates"] += 1
            continue
        products[product.product_id] = product
        progress.update()
        if len(products) >= limit:
            return


def _is_last_page(page: Page, served: int, page_size: int) -> bool:
    """``page`` is the last: empty, or the API's total is reached by the ``served`` records of the pages read
    so far (counted, not pages x ``page_size``: an API may serve fewer per page than asked), or (no total)
    it is not full."""
    if not page.records:
        return True
    return served >= page.total if page.total is not None else len(page.records) < page_size


class _PageCache:
    """Results pages, read from ``root/<source>-<key>/page-NNNN.json`` when an earlier run saved them."""

    def __init__(self, root: Path, collector: Collector, query: str, page_size: int, refresh: bool):
        request = json.dumps([collector.base_url, query, page_size], ensure_ascii=False)
        self.folder = root / f"{collector.name}-{hashlib.sha1(request.encode()).hexdigest()[:12]}"
        self.collector = collector
        self.query = query
        self.page_size = page_size
        self.refresh = refresh
        self.fetched = 0
        self.reused = 0

    def get(self, number: int, client: HttpClient) -> Page:
        path = self.folder / f"page-{number:04d}.json"
        if path.is_file() and not self.refresh:
            try:
                page = self.collector.parse_page(json.loads(path.read_text(encoding="utf-8")))
                self.reused += 1
                return page
            except (ValueError, PageFormatError) as exc:  # damaged on disk since: asked for again
                log.warning("saved page %s is unreadable (%s): fetching it again", path, exc)
        url, params = self.collector.page_request(self.query, number, self.page_size)
        payload = client.get_json(url, params)
        page = self.collector.parse_page(payload)  # an unexpected page is never saved
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_bytes(path, json.dumps(payload, ensure_ascii=False).encode())
        self.fetched += 1
        return page


def _download_photos(
    products: list[CollectedProduct], folder: Path, client: HttpClient, max_bytes: int, report: CollectReport
) -> dict[str, str]:
    """``product_id`` → photo path relative to the output folder (``images/<id>.<type>``), for the photos
    on disk from an earlier run or downloaded now; every failure goes to the report."""
    folder.mkdir(parents=True, exist_ok=True)
    on_disk = {path.stem: path.name for path in folder.iterdir() if path.suffix != ".tmp"}
    paths: dict[str, str] = {}
    counts = report.counts
    for product in tqdm([p for p in products if p.image_url], desc="photos", unit="photo"):
        stem = _file_stem(product.product_id)
        if stem in on_disk:
            counts["photos_from_cache"] += 1
            paths[product.product_id] = f"{IMAGES_DIR}/{on_disk[stem]}"
            continue
        try:
            data = client.get_bytes(product.image_url, max_bytes)
            load_image(data, product_id=product.product_id, max_bytes=max_bytes)  # refuse what cannot be used
        except (NetworkError, ImageDecodeError) as exc:
            counts["photos_failed"] += 1
            message = exc.reason if isinstance(exc, ImageDecodeError) else str(exc)
            report.errors.append({"product_id": product.product_id, "field": "image", "message": message})
            log.warning("product %s, image: %s; kept without a photo", product.product_id, message)
            continue
        name = f"{stem}.{sniff_image_type(data)}"
        _write_bytes(folder / name, data)  # the file as served: decoding it again loses nothing
        counts["photos_downloaded"] += 1
        paths[product.product_id] = f"{IMAGES_DIR}/{name}"
    return paths


def _write_products(path: Path, collector: Collector, products: list[CollectedProduct], images: dict[str, str]) -> None:
    rows = [
        {
            "product_id": p.product_id,
            "title": p.title,
            "description": p.description,
            "image": images.get(p.product_id, ""),
            "category": p.category or "",
            "source": collector.name,
            "image_url": p.image_url or "",
            **p.extras,
        }
        for p in products
    ]
    columns = [*COLUMNS, "source", "image_url", *collector.extra_columns]
    _write_bytes(path, pd.DataFrame(rows, columns=columns).to_csv(index=False).encode("utf-8"))


def _file_stem(product_id: str) -> str:
    """A file name for a product's photo: the id itself when it is filename-safe, else a safe form and a hash."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", product_id)[:100]
    return safe if safe == product_id else f"{safe}-{hashlib.sha1(product_id.encode()).hexdigest()[:8]}"


def _write_bytes(path: Path, data: bytes) -> None:
    write_atomically(path, lambda handle: handle.write(data))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
