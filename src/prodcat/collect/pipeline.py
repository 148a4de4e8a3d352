"""Run a :class:`~prodcat.collect.base.Collector`: pages → products → photos → ``products.csv`` + ``collect.json``.

Output folder::

    DIR/products.csv            canonical columns (product_id, title, description, image, category), then
                                source, image_url and the collector's extra columns; loads with load_catalog. A
                                product with no title or description is left out (an error in collect.json) while its
                                photo is not on disk: nothing could classify it
    DIR/images/<id>.<type>      photos that decoded safely (--images); ``image`` holds ``images/<id>.<type>``
    DIR/pages/<source>-<key>/size-<N>/page-NNNN.json
                                each results page of N records as the API sent it (key: a hash of the request but
                                its page and page size: base URL, query, sort, fields)
    DIR/pages/<source>-<key>/refreshing/size-<N>/page-NNNN.json
                                the pages of a refresh that has not reached the end of the results, kept apart from
                                the earlier ones (read by a run without refresh) and not fetched again by the same
                                command run again, unless it saved none for
                                :data:`~prodcat.collect.pages.REFRESH_ABANDONED_AFTER` (it starts over then); at the
                                end they replace the earlier pages if its products replace ``products.csv``, else they
                                are dropped; ``refreshing/began``: when it began
    DIR/failed_photos.json      photos that failed for good (404, not an image, too large), by product id; emptied
                                as the downloads of a --refresh begin
    DIR/failed_photos.journal   the photos failed since failed_photos.json was written, one a line, folded into it as
                                photo_sources.journal (below) is into photo_sources.json
    DIR/photo_sources.json      the URL each photo in images/ was fetched from, by product id: a product whose photo
                                URL changed gets the new photo, the old one kept until it is fetched; a photo of no
                                recorded URL (saved before this file existed, or recorded in one that became
                                unreadable) is kept as it is, and fetched again by --refresh. A
                                finished run that replaces products.csv deletes the photos it saved (recorded here,
                                or linked by the products.csv it replaces) of products it no longer holds
    DIR/photo_sources.journal   the URLs of the photos saved since photo_sources.json was written, one a line, folded
                                into it at the end of the downloads: left by a run killed outright (kill -9), folded
                                by the next run
    DIR/collect.json            source, query, times, counts, and every error and warning with its page /
                                product and field

Never a loss of products: a run stopped by an error or Ctrl-C leaves a ``products.csv`` holding more products than it
collected as it was, and so does a finished run that would keep fewer than :data:`MIN_SHARE_KEPT` of them (the API
answering nothing for a while, or an error page read as an empty one, emptied a whole collection) unless
``allow_fewer`` says that the products left the API.

Resumable: a re-run reads the pages and photos already on disk and only asks the network for the rest
(photos that failed for good are not asked for again while their URL is the same), so an interrupted
collection (network down, Ctrl-C, a larger ``max_products``) continues where it stopped, at another page size
too (its pages are cut from the records of the pages saved). Ctrl-C still writes ``products.csv`` and
``collect.json`` for what was collected until then. Files are written beside their final name and renamed, so
an interruption never leaves half a file (a run killed outright leaves the temporary file, deleted by the next run).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import reprlib
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from prodcat.bundle import sha256_file
from prodcat.catalog.loaders import MAX_TEXT_CHARS, catalog_files
from prodcat.catalog.schema import COLUMNS, is_readable
from prodcat.collect.base import CollectedProduct, Collector, Page, RecordError, search_query
from prodcat.collect.http import HttpClient, NetworkError
from prodcat.collect.pages import PageCache, is_last_page
from prodcat.collect.photos import (
    FAILED_PHOTOS_JSON,
    IMAGES_DIR,
    PHOTO_SOURCES_JSON,
    FailedPhotos,
    PhotoSources,
    download_photos,
    orphan_photos,
    photos_on_disk,
    remove_photos,
)
from prodcat.collect.writing import utf8, write_bytes, write_text
from prodcat.errors import RunRefused
from prodcat.files import RunBusyError, RunLock, csv_text, temporary_sibling_of
from prodcat.formatting import count_text, counted
from prodcat.image.decode import DEFAULT_MAX_BYTES

log = logging.getLogger(__name__)

PRODUCTS_CSV = "products.csv"
REPORT_JSON = "collect.json"
#: the products whose photos a finished collection removes, as said of them
ORPHANS = "of products no longer collected"
PAGES_DIR = "pages"
#: held by the run collecting into the folder (:class:`~prodcat.files.RunLock`)
LOCK_FILE = ".collect.lock"
#: a finished run replaces ``products.csv`` only when it keeps at least this share of its products (or ``allow_fewer``)
MIN_SHARE_KEPT = 0.5
#: the ``stopped_by`` of a run that reached the end of its results or ``max_products``, or of one that a re-run would
#: end as it did: the API served a page of products already collected again (it ignores paging)
FINISHED = ("exhausted", "max_products", "paging_ignored")
#: how the photo of a product left out of ``products.csv`` for want of a name, description or photo on disk gets
#: there (the count of such photos in its place), by why it is not on disk
_FETCH_STEPS = {
    "not_asked": "run the same command with --images to fetch {}",
    "not_fetched_yet": "run the same command again to fetch {} not fetched yet (a server error, a timeout, a host "
    "not reached, Ctrl-C)",
    "failed_for_good": "add --refresh to fetch again {} refused for good (404, not an image, too large)",
}


class CollectionBusyError(RunBusyError, RunRefused):
    """Another run is collecting into the output folder (it holds its :data:`LOCK_FILE`)."""


class RunEntries:
    """What a run that fetches photos (a collection, ``prodcat fetch-photos``) counts and records: the ``counts``,
    ``errors`` and ``warnings`` fields of the dataclass of its report, which mixes this in (the photo downloader,
    :func:`~prodcat.collect.photos.download_photos`, writes to either)."""

    counts: dict[str, int]
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]

    def count(self, key: str) -> None:
        """Add one to ``counts[key]``."""
        self.counts[key] = self.counts.get(key, 0) + 1

    def add_error(self, field: str, message: str, **where: str | int) -> None:
        """Record an error of ``field`` in :attr:`errors`, ``where`` (page, product) it happened among its keys."""
        self.errors.append({**where, "field": field, "message": message})

    def add_warning(self, field: str, message: str, **where: str | int) -> None:
        """Record a warning of ``field`` in :attr:`warnings`, as :meth:`add_error` does an error."""
        self.warnings.append({**where, "field": field, "message": message})


@dataclass
class CollectReport(RunEntries):
    """What a collection did; ``collect.json`` is this as JSON.

    ``stopped_by``: ``"max_products"``, ``"exhausted"`` (no more results), ``"paging_ignored"`` (a page served
    products already collected again: an error in ``errors`` says so), ``"error"`` (a page could not be
    fetched after its retries: ``fatal_error`` says which and why, ``fatal_cause`` the kind of failure, one of
    :mod:`prodcat.collect.http`'s causes) or ``"interrupted"`` (Ctrl-C). ``errors``: one dict per page,
    product or photo that failed, with ``field`` and ``message`` (and ``page``, ``record``, ``product_id``
    when known); ``warnings``: the same for what was kept with a defect (a page with bytes that are not
    UTF-8, a field of the wrong type left out, a text cut, results the API counted but no page held).
    ``to_write_left_out``: what writes the products left out of ``products.csv`` for want of a name, description or
    photo on disk (:func:`_how_to_write_left_out`; ``None``: none was). ``kept_earlier``: why ``products.csv`` was left
    as an earlier run wrote it, holding more products than this run collected (``None``: this run wrote it, or had
    nothing to write). ``refresh_resumed``: when the refresh this run resumed began (its pages saved since were not
    fetched again; ``None``: not a resumed refresh). ``total_matching``: the count of results the last page read gave;
    ``total_matching_saved``: when an earlier run saved that page (a resume read it from disk: the count is of that
    day, and ``--refresh`` asks again), ``None`` when this run fetched it.
    ``products_sha256``: the checksum of the ``products.csv`` the run left, by which a re-run refuses to replace one
    edited since; ``replacing_sha256``: the
    checksum of the ``products.csv`` being replaced, in the report written just before the new file, so that a run
    stopped between the two writes (a full disk, Ctrl-C) leaves a file its report accepts (``None`` once written).
    """

    source: str
    query: str
    base_url: str
    started: str
    finished: str = ""
    seconds: float = 0.0
    max_products: int | None = None
    total_matching: int | None = None
    total_matching_saved: str | None = None
    stopped_by: str = ""
    fatal_error: str | None = None
    fatal_cause: str | None = None
    to_write_left_out: str | None = None
    kept_earlier: str | None = None
    refresh_resumed: str | None = None
    products_sha256: str | None = None
    replacing_sha256: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)


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
    allow_fewer: bool = False,
) -> CollectReport:
    """Collect up to ``max_products`` products matching ``query`` (all of them when ``None``) into ``out_dir``.

    Args:
        api_client: fetches the results pages (its rate limit is the API's).
        page_size: records per page, at most the collector's ``max_page_size`` (its default).
        image_client: when given, each product's photo is downloaded through it, checked by
            :func:`prodcat.image.decode.load_image` (real image, not corrupt, at most ``max_image_bytes``
            bytes and its pixel limit) and saved under ``out_dir/images``; products whose photo fails
            keep ``image`` empty and the failure is in the report. Photos already on disk are linked to
            their products with or without it.
        refresh: fetch every page again instead of reading the pages saved by an earlier run, and the
            photos that failed for good in an earlier run. A refresh stopped before the end of the results (an
            error, Ctrl-C) is resumed by the next one (the pages it saved are not fetched again), unless it saved no
            page for :data:`~prodcat.collect.pages.REFRESH_ABANDONED_AFTER`. Its pages are kept apart until it ends:
            a run without refresh meanwhile, or after a refresh refused for keeping too few products, reads the earlier
            pages.
        allow_fewer: replace ``products.csv`` at the end of the results (or ``max_products``) even when it held
            more than twice as many products as this run collected (they left the API).

    Raises:
        ValueError: a blank ``query``, ``max_products`` below 1, or ``page_size`` above the collector's
            ``max_page_size``.
        NotADirectoryError, FileExistsError: ``out_dir`` is a file, or holds a ``products.csv`` that is not an
            earlier collection of ``query`` from this source (a user's catalogue, another query's collection).
        CollectionBusyError: another run is collecting into ``out_dir``.

    Returns:
        The report, also written to ``out_dir/collect.json``. ``products.csv`` is written unless a failure or
        Ctrl-C came before any product; when a later page fails, or Ctrl-C stops the run, it holds the products
        collected until then, and the report says so. An earlier run's ``products.csv`` holding more products is
        left as it was when the run did not finish, or kept less than :data:`MIN_SHARE_KEPT` of them (unless
        ``allow_fewer``): the report's ``kept_earlier`` says so. Ctrl-C while collecting is not raised again: the
        report's ``stopped_by`` is ``"interrupted"``; while the outputs are written it is (``collect.json`` accepts
        the ``products.csv`` on disk, the earlier one or this run's, and a re-run resumes).
    """
    if not query.strip():
        raise ValueError("query is blank: it would match every product")
    if max_products is not None and max_products < 1:
        raise ValueError(f"max_products must be at least 1, got {max_products}")
    if page_size is not None and page_size > collector.max_page_size:
        raise ValueError(f"page_size is at most {collector.max_page_size} on {collector.name}, got {page_size}")
    page_size = page_size or collector.max_page_size
    out = Path(out_dir)
    _check_output_folder(out, collector, query)  # before the folder is made: a file there, a catalogue folder
    out.mkdir(parents=True, exist_ok=True)
    # a second run on the folder would delete the first's temporary files as leftovers, and replace its products.csv
    # with another query's, both runs saying they wrote theirs
    lock = RunLock(
        out / LOCK_FILE,
        command="prodcat collect",
        writing=f"the collection in {out}",
        instead="collect into another --out",
        log=log,
        busy=CollectionBusyError,
    )
    with lock:
        _check_output_folder(out, collector, query)  # again: a run that held the folder meanwhile wrote there
        remove_leftovers(out, {PRODUCTS_CSV, REPORT_JSON})
        earlier = _earlier_products(out / PRODUCTS_CSV)
        started = time.monotonic()
        report = CollectReport(collector.name, query, collector.base_url, now(), max_products=max_products)
        pages = PageCache(out / PAGES_DIR, collector, query, page_size, refresh)
        report.refresh_resumed = pages.refresh_resumed
        sources = PhotoSources(out)
        failed: FailedPhotos | None = None  # with --images: the photos that failed for good
        products: dict[str, CollectedProduct] = {}
        reached_end = False
        with logging_redirect_tqdm():  # retry warnings above the progress bars, not through them
            try:
                _collect_products(collector, pages, max_products, api_client, products, report)
                reached_end = report.stopped_by in FINISHED
                if image_client is not None:
                    failed = FailedPhotos(out, forget_earlier=refresh)
                    download_photos(
                        list(products.values()), out, image_client, max_image_bytes, report, refresh, sources, failed
                    )
            except KeyboardInterrupt:
                report.stopped_by = "interrupted"  # what was collected is written below: a re-run resumes from it
        if image_client is not None and failed is None:
            # interrupted before its photos: a re-run fetches them, but for those that failed for good in an earlier
            # run
            failed = FailedPhotos(out, forget_earlier=False)
        photos = photos_on_disk(products.values(), out / IMAGES_DIR)
        classifiable = _leave_out_unclassifiable(products, photos, report, failed)
        report.kept_earlier = _why_keep_earlier(report, len(products), len(classifiable), len(earlier), allow_fewer)
        if reached_end:  # the pages left are those of products.csv: a re-run without refresh makes the same file
            pages.end_refresh(keep=report.kept_earlier is None)
        # of the products collected: those left out for want of a text or photo are reported apart
        if report.kept_earlier is None and (dropped := len(earlier.keys() - products.keys())):
            report.counts["earlier_products_dropped"] = dropped
        # only at the end of the results: the products an unfinished run has not reached yet may be collected by a
        # resume
        removes_orphans = reached_end and report.kept_earlier is None
        orphans = orphan_photos(out, products.keys(), earlier, sources) if removes_orphans else {}
        _write_outputs(out, collector, classifiable, photos, pages, report, started, orphans, sources)
        return report


def _check_output_folder(out: Path, collector: Collector, query: str) -> None:
    """Refuse an output folder holding a catalogue that a collection of ``query`` would replace or mix with: a
    Flipkart, Rakuten or fashion folder, a ``products.csv`` prodcat collect did not write (a user's own) or that was
    changed since (edited by hand), or the collection of another query or source; an earlier run of the same query is
    resumed.

    Raises:
        NotADirectoryError: ``out`` is a file.
        FileExistsError: naming the catalogue there.
    """
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"the output folder {out} is a file")
    if out.is_dir() and (native := catalog_files(out)):
        raise FileExistsError(
            f"{out} is a catalogue folder ({native[0].name}): a collection would write its products.csv and photos "
            "among its files; choose another output folder"
        )
    catalogue = out / PRODUCTS_CSV
    if not catalogue.exists():
        return
    try:
        earlier = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
        source, earlier_query = str(earlier["source"]), str(earlier["query"])
    except (OSError, ValueError, KeyError, TypeError):  # missing, damaged, or not a collection's report
        raise FileExistsError(
            f"{catalogue} was not written by prodcat collect (no readable {REPORT_JSON} beside it): a collection "
            "would replace it; choose another output folder"
        ) from None
    # as typed: a run before the command line composed accents and collapsed spacing wrote them so
    if (source, search_query(earlier_query)) != (collector.name, search_query(query)):
        raise FileExistsError(
            f"{out} holds the collection of {earlier_query!r} from {source}: collecting {query!r} from "
            f"{collector.name} there would replace its {PRODUCTS_CSV}; choose another output folder (the same "
            "query there resumes it)"
        )
    refuse_if_edited(
        catalogue, earlier, "prodcat collect", "a collection would replace it with the API's products", "collect again"
    )


def refuse_if_edited(catalogue: Path, earlier: dict[str, Any], command: str, replaced: str, again: str) -> None:
    """Refuse (``FileExistsError``) the ``catalogue`` that ``command`` wrote, as its report ``earlier`` records by
    checksum, changed since (edited by hand): ``replaced`` says what a run would do to it, ``again`` what deleting it
    lets the user do."""
    # absent from the reports of older versions; two while a run was replacing the file
    written = [
        checksum for key in ("products_sha256", "replacing_sha256") if isinstance(checksum := earlier.get(key), str)
    ]
    if written and sha256_file(catalogue) not in written:
        raise FileExistsError(
            f"{catalogue} was changed since {command} wrote it (edited by hand?): {replaced}, the changes lost; move "
            f"it elsewhere to keep them, or delete it to {again}"
        )


def remove_leftovers(out: Path, files: set[str]) -> None:
    """Delete the temporary files that runs killed outright (kill -9, a power cut) left beside the ``files`` of a run
    (its catalogue, its report) and the photos' records, and in its photos and pages: nothing reads them, and a
    photo's can be megabytes. Only a run's own: in ``out``, the temporary siblings of its files, never of a user's."""
    ours = files | {FAILED_PHOTOS_JSON, PHOTO_SOURCES_JSON}
    leftovers = [path for path in out.glob("*.tmp") if temporary_sibling_of(path.name) in ours]
    in_own_folders = itertools.chain((out / IMAGES_DIR).glob("*.tmp"), (out / PAGES_DIR).rglob("*.tmp"))
    leftovers += [path for path in in_own_folders if temporary_sibling_of(path.name) is not None]
    for path in leftovers:
        log.info("removing %s, left by an interrupted run", path)
        path.unlink()


def _earlier_products(path: Path) -> dict[str, str]:
    """The products of the ``products.csv`` at ``path``, each product id with its ``image`` (``""``: no photo); none
    when there is no such file, or it cannot be read (damaged: replaced as a missing one would be)."""
    if not path.is_file():
        return {}
    try:
        table = pd.read_csv(
            path, dtype=str, keep_default_na=False, usecols=lambda column: column in {"product_id", "image"}
        )
    except (OSError, ValueError) as exc:  # pandas' parser and decoding errors are ValueErrors
        log.warning("%s is unreadable (%s): it is replaced by this run's products", path, exc)
        return {}
    if "product_id" not in table:
        return {}
    images = table["image"] if "image" in table else [""] * len(table)
    return {product_id: image for product_id, image in zip(table["product_id"], images, strict=True) if product_id}


def _leave_out_unclassifiable(
    products: dict[str, CollectedProduct], photos: dict[str, str], report: CollectReport, failed: FailedPhotos | None
) -> list[CollectedProduct]:
    """The ``products`` that have a text (as the loader and the models count one, :func:`is_readable`) or a photo on
    disk (``photos``, by product id); each of the others, which nothing could classify, is reported and left out of
    ``products.csv`` until a run fetches its photo (its page is kept: every run reads it again, and tries its photo as
    any other), and the report says how (``failed``: the photos that failed for good, ``None`` without --images)."""
    classifiable, left_out = [], []
    for product in products.values():
        if is_readable(product.title) or is_readable(product.description) or product.product_id in photos:
            classifiable.append(product)
        else:
            left_out.append(product)
            report.count("left_out_without_text_or_photo")
            until = " until its photo is fetched" if product.image_url else ""
            report.add_error("product", f"{_NOTHING_TO_CLASSIFY}{until}", product_id=product.product_id)
    if left_out:
        report.to_write_left_out = _how_to_write_left_out(left_out, failed)
    return classifiable


_NOTHING_TO_CLASSIFY = f"no name or description, and no photo: nothing to classify it from; left out of {PRODUCTS_CSV}"


def _how_to_write_left_out(left_out: list[CollectedProduct], failed: FailedPhotos | None) -> str:
    """What writes the products ``left_out`` of ``products.csv`` for want of a text or photo on disk: the next step
    that fetches each one's photo (:data:`_FETCH_STEPS`), by why it is not on disk (``failed``: the photos that failed
    for good, ``None`` when the run fetched no photo), and how many have no photo to fetch."""
    steps: dict[str, int] = dict.fromkeys(_FETCH_STEPS, 0)
    for product in left_out:
        if not product.image_url:
            continue
        if failed is None:
            steps["not_asked"] += 1
        elif failed.reason(product.product_id, product.image_url) is not None:
            steps["failed_for_good"] += 1
        else:  # failed for a while, not tried (its host not reached), or not reached (Ctrl-C)
            steps["not_fetched_yet"] += 1
    said = [_FETCH_STEPS[step].format(counted(count, "photo")) for step, count in steps.items() if count]
    if without_photo := sum(not product.image_url for product in left_out):
        said.append(f"{count_text(without_photo)} with no photo to fetch cannot be written")
    return "; ".join(said)


def _why_keep_earlier(
    report: CollectReport, collected: int, written: int, earlier: int, allow_fewer: bool
) -> str | None:
    """Why the ``products.csv`` holding ``earlier`` products must stay as it is rather than hold the ``written``
    products of this run (``None``: it may be replaced), which ``collected`` more (those left out by
    :func:`_leave_out_unclassifiable`); see :data:`MIN_SHARE_KEPT`."""
    if written >= earlier:
        return None
    would_write = _would_write(collected, written)
    if report.stopped_by not in FINISHED:  # a re-run resumes from the pages saved: nothing is lost by waiting
        held = counted(earlier, "product")
        return f"{PRODUCTS_CSV} keeps the {held} it held: this run had collected {count_text(collected)}{would_write}"
    if allow_fewer or written >= MIN_SHARE_KEPT * earlier:
        return None
    if report.stopped_by == "max_products":
        how_counted = " (--max-products)"
    elif report.total_matching is None:
        how_counted = ""
    else:
        how_counted = f" ({_api_count(report)})"
    refused = (
        f"this run collected {counted(collected, 'product')}{how_counted}"
        f"{would_write}, fewer than half of the {count_text(earlier)} that {PRODUCTS_CSV} holds: it is kept as it was."
    )
    if collected >= MIN_SHARE_KEPT * earlier:  # short for want of photos alone, not because the API answered fewer
        return (
            f"{refused} To write the {count_text(collected - written)} left out: {report.to_write_left_out}; to "
            "replace it without them, add --allow-fewer"
        )
    return (
        f"{refused} If the API answered wrongly, run the command again later (with --refresh); if the products left "
        "it, add --allow-fewer to replace it"
    )


def _would_write(collected: int, written: int) -> str:
    """What a message on the number of products a run ``collected`` adds when it would write fewer of them to
    ``products.csv``: the share of products kept is counted on those ``written``."""
    left_out = collected - written
    if not left_out:
        return ""
    return f" but would write only {count_text(written)} ({count_text(left_out)} without a name, description or photo)"


def _collect_products(
    collector: Collector,
    pages: PageCache,
    max_products: int | None,
    client: HttpClient,
    products: dict[str, CollectedProduct],
    report: CollectReport,
) -> None:
    """Walk the result pages into ``products`` (by id) until ``max_products`` distinct ones, the last page,
    or a page that fails."""
    limit = max_products if max_products is not None else math.inf
    number = served = 0  # pages read, and the records they held
    previous: list[Any] = []  # the records of the page before
    most_counted: int | None = None  # the largest count of results a page read said
    with tqdm(total=max_products, desc=f"{collector.name} {pages.query!r}", unit="product") as progress:
        while len(products) < limit:
            number += 1
            try:
                page = pages.get(number, client, served, report)
            except NetworkError as exc:
                _stop_on_error(report, number, exc)
                return
            if page.total is not None:
                report.total_matching, report.total_matching_saved = page.total, page.saved
                most_counted = max(page.total, most_counted or 0)
                progress.total = min(page.total, limit)
            known_before, duplicates_before = len(products), report.counts.get("duplicates", 0)
            served += len(page.records)
            _add_records(collector, page, number, products, limit, report, progress)
            if is_last_page(page, served, pages.page_size):
                break
            nothing_new = len(products) == known_before and len(page.records) >= pages.page_size
            seen_again = report.counts.get("duplicates", 0) > duplicates_before
            if nothing_new and (page.records == previous or (page.total is None and seen_again)):
                # the page before served again, or (no count to stop at) a whole page of products seen already: the
                # API ignores the page number (and may serve more than asked, ignoring the page size too); stop
                # instead of looping. With a count, other pages of products seen already are results that moved
                # under the pager (products new ahead of the pages read, or a resume days later): the count ends it.
                # A page whose records are none of them a product (no barcode, nothing to classify) is neither: the
                # next page may hold products
                message = "a full page of products already collected (the API seems to ignore paging); stopped"
                report.add_error("page", message, page=number)
                report.stopped_by = "paging_ignored"
                return
            previous = page.records
    report.stopped_by = "max_products" if len(products) >= limit else "exhausted"
    _warn_about_unserved_results(report)
    _warn_about_fewer_results(report, most_counted)


def _stop_on_error(report: CollectReport, number: int, error: NetworkError) -> None:
    report.stopped_by = "error"
    report.fatal_error = f"page {number}: {error}"
    report.fatal_cause = error.cause
    report.add_error("page", str(error), page=number)


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
    for index, record in enumerate(page.records, start=1):
        report.count("records")
        try:
            if not isinstance(record, dict):
                raise RecordError("record", f"{reprlib.repr(record)} where a product (a JSON object) was expected")
            product = collector.to_product(record)
        except RecordError as exc:
            report.count("records_skipped")
            report.add_error(exc.field, str(exc), page=number, record=index)
            continue
        if product.product_id in products:
            # result orders shift while paging (popularity sorts): the same product on two pages
            report.count("duplicates")
            continue
        product = _cut_long_texts(product)
        for field_name, message in product.warnings:
            report.add_warning(field_name, message, page=number, record=index, product_id=product.product_id)
        products[product.product_id] = product
        progress.update()
        if len(products) >= limit:
            return


def _cut_long_texts(product: CollectedProduct) -> CollectedProduct:
    """``product`` with each text cut at the catalogue loader's :data:`MAX_TEXT_CHARS` (it would cut there
    too, and Python's csv reader refuses a longer field by default), each cut noted in its warnings."""
    texts = {"title": product.title, "description": product.description, **product.extras}
    cuts = tuple(
        (name, f"{len(text):,} characters, cut at {MAX_TEXT_CHARS:,}")
        for name, text in texts.items()
        if len(text) > MAX_TEXT_CHARS
    )
    if not cuts:
        return product
    return replace(
        product,
        title=product.title[:MAX_TEXT_CHARS],
        description=product.description[:MAX_TEXT_CHARS],
        extras={name: text[:MAX_TEXT_CHARS] for name, text in product.extras.items()},
        warnings=product.warnings + cuts,
    )


def _warn_about_unserved_results(report: CollectReport) -> None:
    """Warn when the results ran out before the API's count of them: the order moved while paging
    (popularity sorts), so that some products slipped past the pages read while others came twice."""
    if report.stopped_by != "exhausted" or report.total_matching is None:
        return
    duplicates = report.counts.get("duplicates", 0)
    missing = report.total_matching - (report.counts.get("records", 0) - duplicates)
    if missing > 0:
        message = (
            f"{_api_count(report)}, but {count_text(missing)} of them "
            f"{'was' if missing == 1 else 'were'} on no page read (the results moved between pages while paging: "
            f"{count_text(duplicates)} came twice); a run with --refresh later may find them"
        )
        report.add_warning("page", message)


def _api_count(report: CollectReport) -> str:
    """The API's count of results the run ended on, ``"the API counts 12 results"``, said with its day when it is
    that of a page an earlier run saved (a resume reading its last page from disk): not taken for today's."""
    results = counted(report.total_matching or 0, "result")
    if report.total_matching_saved is None:
        return f"the API counts {results}"
    day = datetime.fromisoformat(report.total_matching_saved).strftime("%Y-%m-%d %H:%M UTC")
    return f"the API counted {results} on {day} (on a page an earlier run saved)"


def _warn_about_fewer_results(report: CollectReport, most_counted: int | None) -> None:
    """Warn when an earlier page read counted more results than the last (``most_counted`` against its count): results
    left the search between the pages (a resume reads the pages an earlier run saved, then asks the API for the next;
    a product deleted, or edited out of the query, meanwhile), and the ones after them moved back onto pages already
    read, so that as many were skipped. The count reached says nothing of them: a resume after 50 products had left
    the results read 200 records for a count of 200, 50 of the products of the search on no page read and 50 no
    longer in it kept, without a word."""
    if most_counted is None or report.total_matching is None or most_counted <= report.total_matching:
        return
    message = (
        f"the API counted {counted(most_counted, 'result')} on a page read (one saved by an earlier run, or fetched "
        f"earlier in this one) and {count_text(report.total_matching)} on the last: the results changed between the "
        f"pages, and up to {counted(most_counted - report.total_matching, 'product')} may have moved onto pages "
        "already read, skipped; a run with --refresh reads every page again"
    )
    report.add_warning("page", message)


def _write_outputs(
    out: Path,
    collector: Collector,
    products: list[CollectedProduct],
    images: dict[str, str],
    pages: PageCache,
    report: CollectReport,
    started: float,
    orphans: dict[str, str],
    sources: PhotoSources,
) -> None:
    """``products.csv`` (each product linked to its photo in ``images``
    (:func:`~prodcat.collect.photos.photos_on_disk`), downloaded now or in an earlier run) and ``collect.json``; once
    ``products.csv`` is replaced, the ``orphans`` (:func:`~prodcat.collect.photos.orphan_photos`) are deleted and
    forgotten by ``sources``."""
    catalogue = out / PRODUCTS_CSV
    on_disk = sha256_file(catalogue) if catalogue.is_file() else None
    new_catalogue = None
    # a query matching nothing, or whose results hold no product, is an empty catalogue once the run has finished
    if report.kept_earlier is None and (products or report.stopped_by in FINISHED):
        new_catalogue = _products_csv(collector, products, images)
    report.products_sha256 = on_disk if new_catalogue is None else hashlib.sha256(new_catalogue).hexdigest()
    report.counts.update(
        pages_fetched=pages.fetched,
        pages_from_cache=pages.reused,
        products=len(products),
        with_category=sum(p.category is not None for p in products),
        with_photo=len(images),
    )
    report.counts = dict(sorted(report.counts.items()))
    report.finished = now()
    report.seconds = round(time.monotonic() - started, 3)
    if new_catalogue is not None:
        replace_catalogue(catalogue, new_catalogue, out / REPORT_JSON, replace(report, replacing_sha256=on_disk))
        remove_photos(out, orphans, report, sources, ORPHANS)
    write_report(out / REPORT_JSON, report)


def replace_catalogue(catalogue: Path, data: bytes, report_json: Path, accepting_both: Any) -> None:
    """Write ``data`` at ``catalogue``, the report ``accepting_both`` written first at ``report_json`` (a dataclass
    whose ``products_sha256`` is the checksum of ``data`` and ``replacing_sha256`` that of the file it replaces):
    written after, a full disk (or Ctrl-C) between the two left the earlier report, whose checksum had every later run
    refuse the new file as edited by hand (:func:`refuse_if_edited`). The caller writes its final report next."""
    write_report(report_json, accepting_both)
    write_bytes(catalogue, data)


def write_report(path: Path, report: Any) -> None:
    """Write the dataclass ``report`` at ``path`` as JSON."""
    write_text(path, json.dumps(asdict(report), indent=2, ensure_ascii=False))


def _products_csv(collector: Collector, products: list[CollectedProduct], images: dict[str, str]) -> bytes:
    """The bytes of ``products.csv``, each product linked to its photo in ``images``."""
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
    # csv_text quotes a text holding a lone CR (an old-Mac line break), which would cut its product in two
    return utf8(csv_text(pd.DataFrame(rows, columns=columns)))


def now() -> str:
    """The time now, as a report records it (ISO 8601, UTC, to the second)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
