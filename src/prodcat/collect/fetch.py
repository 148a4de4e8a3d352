"""``prodcat fetch-photos DATA --out DIR``: a catalogue whose photos are URLs (a marketplace's export, a seller's
feed) made one that prodcat reads, which reads photos from files.

The catalogue is read as every command reads it (:func:`~prodcat.catalog.loaders.load_catalog`, the same column
options); each photo it gives as an ``http(s)://`` URL (:attr:`~prodcat.catalog.schema.Catalog.photo_urls`) is
downloaded by the photo downloader of ``prodcat collect`` (:func:`~prodcat.collect.photos.download_photos`: its rate,
retries, size limit, decoding check, hosts given up for the run, records of the photos that failed for good and of
the URL each photo came from), and the catalogue is written again with the files' paths. Output folder::

    DIR/products.csv            every product read, canonical columns (product_id, title, description, image,
                                category), then image_url (the URL its photo was given as, or its photo cell when
                                not one URL nor a file found; unless the catalogue has a column of that name, kept)
                                and the catalogue's other columns as its source wrote them (one named like a canonical
                                column but not read as it under ``<name>_source``, with a warning). ``image``:
                                ``images/<id>.<type>`` for a photo downloaded, the absolute path of a photo the
                                catalogue gave as a file (relative to DIR when inside it), empty for a photo that
                                failed, was not found, or none. Loads with load_catalog
    DIR/images/<id>.<type>      the photos downloaded that decoded safely
    DIR/failed_photos.json      photos that failed for good (404, not an image, too large): not tried again while
                                their URL is the same, unless ``refresh``
    DIR/photo_sources.json      the URL each photo in images/ was fetched from: a product whose URL changed gets the
                                new photo; a photo of a product no longer given by URL is removed at the end of a run
    DIR/fetch.json              the catalogue read, times, counts, and every photo that failed (``errors``) and issue
                                of the catalogue (``warnings``), with the product and field

Resumable as a collection is: a re-run downloads only the photos not on disk yet (from their URL), and Ctrl-C writes
``products.csv`` and ``fetch.json`` for the photos saved until then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.contrib.logging import logging_redirect_tqdm

from prodcat.bundle import sha256_file
from prodcat.catalog.loaders import catalog_files, source_cells
from prodcat.catalog.schema import COLUMNS, Catalog, RowIssue
from prodcat.collect.base import CollectedProduct
from prodcat.collect.http import HttpClient
from prodcat.collect.photos import (
    IMAGES_DIR,
    FailedPhotos,
    PhotoSources,
    download_photos,
    orphan_photos,
    photos_on_disk,
    remove_photos,
)
from prodcat.collect.pipeline import (
    PRODUCTS_CSV,
    CollectionBusyError,
    RunEntries,
    now,
    refuse_if_edited,
    remove_leftovers,
    replace_catalogue,
    write_report,
)
from prodcat.collect.writing import utf8
from prodcat.files import RunLock, csv_text
from prodcat.image.decode import DEFAULT_MAX_BYTES

log = logging.getLogger(__name__)

REPORT_JSON = "fetch.json"
#: held by the run fetching into the folder (:class:`~prodcat.files.RunLock`)
LOCK_FILE = ".fetch.lock"
#: the column of ``products.csv`` keeping the URL a photo was given as
IMAGE_URL = "image_url"
#: the products whose photos a finished run removes, as said of them
ORPHANS = "of products no longer given by URL"


@dataclass
class FetchReport(RunEntries):
    """What a ``prodcat fetch-photos`` run did; ``fetch.json`` is this as JSON.

    ``catalogue``: the catalogue read (an absolute path), its ``format``. ``stopped_by``: ``"finished"`` or
    ``"interrupted"`` (Ctrl-C). ``counts``: the photo downloader's (``photos_downloaded``, ``photos_from_cache``,
    ``photos_failed``, ``photos_failed_earlier``, ``photos_not_tried``...) and ``products``, ``photo_urls`` (the
    products whose photo is a URL), ``with_photo`` (a photo in ``products.csv``: downloaded or a file already),
    ``input_issues``. ``errors``: the photos that failed; ``warnings``: the catalogue's issues (a row skipped, a photo
    file not found...), each with its ``row``. ``products_sha256``, ``replacing_sha256``: as a collection's
    (:class:`~prodcat.collect.pipeline.CollectReport`), by which a re-run refuses to replace a ``products.csv`` edited
    since.
    """

    catalogue: str
    format: str
    started: str
    finished: str = ""
    seconds: float = 0.0
    stopped_by: str = ""
    products_sha256: str | None = None
    replacing_sha256: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)


def fetch_photos(
    catalog: Catalog,
    out_dir: str | Path,
    client: HttpClient,
    *,
    refresh: bool = False,
    max_image_bytes: int = DEFAULT_MAX_BYTES,
) -> FetchReport:
    """Download the photos ``catalog`` gives as URLs into ``out_dir/images`` through ``client``, and write
    ``out_dir/products.csv`` naming them, with ``out_dir/fetch.json`` (see the module docstring).

    ``refresh``: try again the photos that failed for good in an earlier run (404, not an image, too large).

    Raises:
        NotADirectoryError, FileExistsError: ``out_dir`` is a file, a catalogue folder, or holds a ``products.csv``
            that this command did not write from this catalogue, or that was edited since.
        CollectionBusyError: another run is fetching into ``out_dir``.

    Returns:
        The report, also written to ``out_dir/fetch.json``. Ctrl-C while downloading is not raised again: the report's
        ``stopped_by`` is ``"interrupted"``, and the outputs are written for the photos saved until then.
    """
    out = Path(out_dir)
    source = os.path.abspath(catalog.source)
    _check_output_folder(out, source)
    out.mkdir(parents=True, exist_ok=True)
    lock = RunLock(
        out / LOCK_FILE,
        command="prodcat fetch-photos",
        writing=f"the photos in {out}",
        instead="fetch into another --out",
        log=log,
        busy=CollectionBusyError,
    )
    with lock:
        _check_output_folder(out, source)  # again: a run that held the folder meanwhile wrote there
        remove_leftovers(out, {PRODUCTS_CSV, REPORT_JSON})
        started = time.monotonic()
        report = FetchReport(source, catalog.format, now())
        cells = source_cells(catalog)  # read before the downloads: the table may be changed meanwhile
        _report_renamed_columns(catalog, report)
        products = _products_to_fetch(catalog)
        sources = PhotoSources(out)
        failed = FailedPhotos(out, forget_earlier=refresh)
        with logging_redirect_tqdm():  # retry warnings above the progress bar, not through it
            try:
                download_photos(products, out, client, max_image_bytes, report, refresh, sources, failed)
                report.stopped_by = "finished"
            except KeyboardInterrupt:
                report.stopped_by = "interrupted"  # the photos saved are written below: a re-run fetches the others
        photos = photos_on_disk(products, out / IMAGES_DIR)
        if report.stopped_by == "finished":
            orphans = orphan_photos(out, catalog.photo_urls.keys(), {}, sources)
            remove_photos(out, orphans, report, sources, ORPHANS)
        _report_input_issues(catalog, report)
        _write_outputs(out, catalog, photos, cells, report, started)
        return report


def _check_output_folder(out: Path, source: str) -> None:
    """Refuse an output folder that is a file, a catalogue folder, or holds a ``products.csv`` that this command did
    not write from the catalogue ``source`` (a user's own, a collection, another catalogue's photos), or that was
    edited since; an earlier run from the same catalogue is resumed."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"the output folder {out} is a file")
    if out.is_dir() and (native := catalog_files(out)):
        raise FileExistsError(f"{out} is a catalogue folder ({native[0].name}): choose another output folder")
    catalogue = out / PRODUCTS_CSV
    if not catalogue.exists():
        return
    try:
        earlier = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
        earlier_source = earlier["catalogue"]
    except (OSError, ValueError, KeyError, TypeError):  # missing, damaged, or not this command's report
        raise FileExistsError(
            f"{catalogue} was not written by prodcat fetch-photos (no readable {REPORT_JSON} beside it): it would be "
            "replaced; choose another output folder"
        ) from None
    if earlier_source != source:
        raise FileExistsError(
            f"{out} holds the photos of {earlier_source}: fetching those of {source} there would replace its "
            f"{PRODUCTS_CSV}; choose another output folder (the same catalogue there resumes it)"
        )
    refuse_if_edited(
        catalogue, earlier, "prodcat fetch-photos", "a run would write it again from the catalogue", "write it again"
    )


def _products_to_fetch(catalog: Catalog) -> list[CollectedProduct]:
    """The products of ``catalog`` whose photo is a URL, as the photo downloader takes them."""
    frame = catalog.frame.set_index("product_id", drop=False)
    return [
        CollectedProduct(
            product_id,
            frame.at[product_id, "title"],
            frame.at[product_id, "description"],
            frame.at[product_id, "category"],
            url,
        )
        for product_id, url in catalog.photo_urls.items()
    ]


def _report_renamed_columns(catalog: Catalog, report: FetchReport) -> None:
    """Warn of the columns ``products.csv`` writes under another name (:func:`renamed_columns`)."""
    for name, new in renamed_columns(catalog).items():
        message = f"the column {name} is not read as the {name} (another column is): written as {new}"
        report.add_warning(name, message)
        log.warning("%s: %s", catalog.source, message)


def _report_input_issues(catalog: Catalog, report: FetchReport) -> None:
    """The issues of ``catalog`` among ``report``'s warnings, but for those of the photos given as URLs, which the run
    downloads (their failures are its errors)."""
    issues = input_issues(catalog)
    for issue in issues:
        where: dict[str, str | int] = {"row": issue.row}
        if issue.product_id is not None:
            where["product_id"] = issue.product_id
        report.add_warning(issue.field, issue.message, **where)
    report.counts["input_issues"] = len(issues)


def input_issues(catalog: Catalog) -> list[RowIssue]:
    """The issues of ``catalog`` but those of the photos it gives as URLs (which ``prodcat fetch-photos`` downloads)."""
    return [
        issue for issue in catalog.issues if not (issue.field == "image" and issue.product_id in catalog.photo_urls)
    ]


def _write_outputs(
    out: Path,
    catalog: Catalog,
    photos: dict[str, str],
    cells: pd.DataFrame | None,
    report: FetchReport,
    started: float,
) -> None:
    """``products.csv`` (its products' photos: ``photos``, by product id, downloaded now or earlier; its source's
    ``cells``) and ``fetch.json``."""
    table = catalogue_table(catalog, photos, out, cells)
    data = utf8(csv_text(table))
    catalogue = out / PRODUCTS_CSV
    on_disk = sha256_file(catalogue) if catalogue.is_file() else None
    report.products_sha256 = hashlib.sha256(data).hexdigest()
    report.counts.update(
        products=len(table), photo_urls=len(catalog.photo_urls), with_photo=int((table["image"] != "").sum())
    )
    report.counts = dict(sorted(report.counts.items()))
    report.finished = now()
    report.seconds = round(time.monotonic() - started, 3)
    replace_catalogue(catalogue, data, out / REPORT_JSON, replace(report, replacing_sha256=on_disk))
    write_report(out / REPORT_JSON, report)


def catalogue_table(
    catalog: Catalog, photos: dict[str, str], out: Path, cells: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``catalog`` as ``products.csv`` holds it in the folder ``out``: each product's photo the one downloaded
    (``photos``: its path in ``out``, by product id), else the file the catalogue gave (its absolute path, relative
    to ``out`` when inside it), else ``""``; then ``image_url``, and the catalogue's other columns as its source
    gives them (``cells``, :func:`~prodcat.catalog.loaders.source_cells`: ``4.50`` stays ``4.50``), one named like a
    canonical column under another name (:func:`renamed_columns`). ``image_url``: the URL a photo was given as, the
    photo cell as it was when it is neither that nor a file found (a JSON list of URLs, another scheme, a file not
    found), else ``""``.
    Without ``cells`` (Rakuten's catalogue, the fashion set's), its other columns are written as read."""
    frame = catalog.frame
    ids = frame["product_id"]
    folder = os.path.abspath(out)
    files = [_path_in(path, folder) for path in frame["image"].tolist()]
    canonical = frame[list(COLUMNS)].assign(
        image=[photos.get(product_id, file) for product_id, file in zip(ids, files, strict=True)],
        category=frame["category"].where(frame["category"].notna(), ""),
    )
    if cells is None:
        others = frame.drop(columns=list(COLUMNS))
        photo_cells = [None] * len(frame)
    else:
        others = cells[list(catalog.unread_columns)].rename(columns=renamed_columns(catalog))
        others.index = frame.index
        photo_cells = [None] * len(frame) if catalog.image_column is None else cells[catalog.image_column].tolist()
    if IMAGE_URL not in others.columns:
        canonical[IMAGE_URL] = [
            _image_url(catalog.photo_urls.get(product_id), cell, file != "")
            for product_id, cell, file in zip(ids, photo_cells, files, strict=True)
        ]
    return pd.concat([canonical, others], axis=1)


def renamed_columns(catalog: Catalog) -> dict[str, str]:
    """The columns of ``catalog``'s source that ``products.csv`` writes under another name, by name: those no field
    was read from but named like a canonical column (a table's own ``product_id`` when ``--id-column`` names
    another), which would stand for it there, written as ``<name>_source`` (or ``<name>_source2``...)."""
    taken = {*COLUMNS, IMAGE_URL, *catalog.unread_columns}
    renamed = {}
    for name in catalog.unread_columns:
        if name in COLUMNS:
            new = next(
                f"{name}_source{n or ''}" for n in range(len(taken) + 1) if f"{name}_source{n or ''}" not in taken
            )
            renamed[name] = new
            taken.add(new)
    return renamed


def _image_url(url: str | None, cell: object, file_found: bool) -> str:
    """The ``image_url`` of a product whose photo was given as ``url`` (a web URL, ``None``: none) in the photo
    cell ``cell`` (``None``: not known), ``file_found``: a file the catalogue gave it."""
    given = cell.strip() if isinstance(cell, str) else ""
    if url is not None:
        return url if given in ("", url) else str(cell)  # a JSON list of URLs: the list, whose first was fetched
    return "" if file_found or not given else str(cell)


def _path_in(path: str | None, folder: str) -> str:
    """The photo file ``path`` (absolute, as the loader resolves it; ``None``: none) as ``products.csv`` in
    ``folder`` names it: relative to ``folder`` when inside it, else absolute, so that it reads it wherever the
    catalogue was; ``""`` for none."""
    if path is None:
        return ""
    relative = os.path.relpath(path, folder)
    outside = relative == os.pardir or relative.startswith(os.pardir + os.sep)
    return path if outside else Path(relative).as_posix()
