"""The photos of a collection (``DIR/images/``, :mod:`prodcat.collect.pipeline`): their download, the records of
those that failed for good and of the URL each was fetched from, and the files on disk."""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.parse
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from prodcat.collect.base import CollectedProduct
from prodcat.collect.http import PERMANENT_CAUSES, RATE_LIMITED, UNREACHABLE, HttpClient, NetworkError
from prodcat.collect.journal import JournaledRecord
from prodcat.collect.writing import write_bytes
from prodcat.image.decode import DECODABILITY_SIDE, ImageDecodeError, load_image, sniff_image_type
from prodcat.image.formats import decoded_image_types

if TYPE_CHECKING:
    from prodcat.collect.pipeline import RunEntries

log = logging.getLogger(__name__)


IMAGES_DIR = "images"
FAILED_PHOTOS_JSON = "failed_photos.json"
#: beside :data:`FAILED_PHOTOS_JSON`, the photos failed since it was written: a JSON ``[product_id, failure]`` a line
FAILED_PHOTOS_JOURNAL = "failed_photos.journal"
PHOTO_SOURCES_JSON = "photo_sources.json"
#: beside :data:`PHOTO_SOURCES_JSON`, the photos downloaded since it was written: a JSON ``[product_id, url]`` a line
PHOTO_SOURCES_JOURNAL = "photo_sources.journal"


def download_photos(
    products: list[CollectedProduct],
    out: Path,
    client: HttpClient,
    max_bytes: int,
    report: RunEntries,
    refresh: bool,
    sources: PhotoSources,
    failed: FailedPhotos,
) -> None:
    """Download into ``out/images`` the photo of each product that has none there yet, or one fetched from
    another URL than the product's now (with ``refresh``, one of no recorded URL too: replaced once the new one is
    fetched), unless it failed for good in an earlier run (and ``refresh`` is off), or its host could not be reached
    (or kept answering 429) for an earlier photo of this run; every failure goes to the report, and those for good to
    ``failed`` too."""
    folder = out / IMAGES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    on_disk = _files_by_stem(folder)
    # host -> why its photos are not tried: the network lost mid-run had every photo spend its retries (and its
    # connection timeouts) in turn, hours for a few thousand photos, a warning per attempt; a host rate limiting
    # had every photo wait its window at each retry
    hosts_given_up: dict[str, str] = {}
    try:
        photos = [(product, url) for product in products if (url := product.image_url)]
        for product, url in tqdm(photos, desc="photos", unit="photo"):
            saved = on_disk.get(_file_stem(product.product_id))
            source = sources.get(product.product_id)
            damaged = saved is not None and _removed_as_damaged(product.product_id, folder / saved, max_bytes, report)
            if damaged:  # fetched again, even from a URL that failed for good since it was saved
                saved = None
            if saved is not None and source == url:
                report.count("photos_from_cache")
            elif not damaged and (earlier := failed.reason(product.product_id, url)) is not None:
                report.count("photos_failed_earlier")
                message = f"{earlier} (in an earlier run; not fetched again, --refresh does){_kept_photo(saved)}"
                report.add_error("image", message, product_id=product.product_id)
            elif saved is not None and source is None and not refresh:
                # saved before photo_sources.json existed, from this URL or one that products.csv no longer holds (a
                # run without --images rewrote it): kept, recorded nowhere, until a refresh fetches it again
                report.count("photos_from_cache")
            elif (host := _host(url)) in hosts_given_up:
                report.count("photos_not_tried")
                report.add_error("image", hosts_given_up[host] + _kept_photo(saved), product_id=product.product_id)
            else:
                photo = _PhotoDownload(product.product_id, url, replaces=saved)
                error = _download_photo(photo, folder, client, max_bytes, report, failed, sources)
                if error is not None and (failure := _HOST_FAILURES.get(error.cause)) is not None:
                    log.warning("%s %s: its other photos are not tried in this run", host, failure)
                    hosts_given_up[host] = (
                        f"not tried: {host} {failure} for the photo of product {product.product_id} "
                        f"({error.reason}); run the same command again to fetch it"
                    )
    finally:
        failed.save()  # Ctrl-C included: the failures met so far are not paid for again
        sources.save()


#: bytes of a saved photo read to tell its type (an AVIF's brands are in its first box, well within them)
_TYPE_HEAD_BYTES = 4096


def _removed_as_damaged(product_id: str, path: Path, max_bytes: int, report: RunEntries) -> bool:
    """Whether the photo ``path`` saved in an earlier run no longer decodes (emptied, truncated or overwritten on disk
    since: it was checked as it was saved), by the check of a download; removed then, and said so, to be fetched
    again: kept, it stayed linked to its product on every run, and only deleting it by hand helped. A file this run
    cannot read (its permissions, an I/O error), or a photo of a type this installation does not decode (AVIF before
    Pillow 11.3) saved by one that does, is not known damaged: it is kept, as fetched again it would be refused for
    good and its product left without it."""
    try:
        with path.open("rb") as file:
            head = file.read(_TYPE_HEAD_BYTES)
    except OSError:
        return False
    if (kind := sniff_image_type(head)) is not None and kind not in decoded_image_types():
        return False
    try:  # the path, not its bytes: a file over max_bytes is refused by its size, never read whole
        load_image(path, product_id=product_id, max_side=DECODABILITY_SIDE, max_bytes=max_bytes)
    except ImageDecodeError as exc:
        report.count("photos_damaged")
        message = (
            f"{IMAGES_DIR}/{path.name}, saved in an earlier run, does not decode ({exc.reason}): removed, fetched again"
        )
        report.add_warning("image", message, product_id=product_id)
        log.warning("product %s, image: %s", product_id, message)
        path.unlink(missing_ok=True)
        return True
    return False


#: the failures of a photo that its host's other photos would meet too, in the words that say so
_HOST_FAILURES = {UNREACHABLE: "could not be reached", RATE_LIMITED: "kept answering 'too many requests'"}


def _host(url: str) -> str:
    """The host (and port) of ``url``; ``url`` itself when it cannot be parsed (its download fails alone)."""
    try:
        return urllib.parse.urlsplit(url).netloc
    except ValueError:
        return url


@dataclass(frozen=True)
class _PhotoDownload:
    """The photo of product ``product_id`` to fetch from ``url``, replacing the file ``replaces`` (the product's photo
    fetched in an earlier run) once fetched."""

    product_id: str
    url: str
    replaces: str | None = None


def _download_photo(
    photo: _PhotoDownload,
    folder: Path,
    client: HttpClient,
    max_bytes: int,
    report: RunEntries,
    failed: FailedPhotos,
    sources: PhotoSources,
) -> NetworkError | None:
    """Download and check one photo; the network error it failed with, if any."""
    try:
        data = client.get_bytes(photo.url, max_bytes)
        # refuse what cannot be used; decoded small, as only the decoding is checked
        load_image(data, product_id=photo.product_id, max_side=DECODABILITY_SIDE, max_bytes=max_bytes)
    except (NetworkError, ImageDecodeError) as exc:
        report.count("photos_failed")
        message = exc.reason if isinstance(exc, ImageDecodeError) else str(exc)
        report.add_error("image", message + _kept_photo(photo.replaces), product_id=photo.product_id)
        kept = "without a photo" if photo.replaces is None else "with the photo fetched in an earlier run"
        log.warning("product %s, image: %s; kept %s", photo.product_id, message, kept)
        if isinstance(exc, ImageDecodeError) or exc.cause in PERMANENT_CAUSES:
            failed.record(photo.product_id, {"url": photo.url, "message": message})
        return exc if isinstance(exc, NetworkError) else None
    name = f"{_file_stem(photo.product_id)}.{sniff_image_type(data)}"
    write_bytes(folder / name, data)  # the file as served
    sources.record(photo.product_id, photo.url)
    if photo.replaces is not None:
        report.count("photos_replaced")
        if photo.replaces != name:  # another type: the old file would stand beside the new one under its stem
            (folder / photo.replaces).unlink(missing_ok=True)
    report.count("photos_downloaded")
    return None


def _kept_photo(saved: str | None) -> str:
    """What a failure message adds when the product keeps the photo ``saved`` in an earlier run."""
    return "" if saved is None else f"; {IMAGES_DIR}/{saved}, fetched in an earlier run, is kept"


class FailedPhotos(JournaledRecord[dict[str, str]]):
    """Photos that failed for good (404, not an image, too large), by product id with their URL and why: a resume
    does not download them again while the product's photo URL is the same. ``forget_earlier``: a refresh, which
    tries them all again."""

    def __init__(self, out: Path, *, forget_earlier: bool):
        super().__init__(
            out / FAILED_PHOTOS_JSON,
            out / FAILED_PHOTOS_JOURNAL,
            _failure,
            "the photos that failed are tried again",
            forget_earlier=forget_earlier,
        )

    def reason(self, product_id: str, url: str) -> str | None:
        """Why the photo at ``url`` failed before, ``None`` when it did not (or the product's URL changed since)."""
        failure = self.get(product_id)
        return failure["message"] if failure is not None and failure["url"] == url else None


def _failure(saved: Any) -> dict[str, str] | None:
    """A photo's failure as :class:`FailedPhotos` records it, read back."""
    if not isinstance(saved, dict) or not {"url", "message"} <= saved.keys():
        return None
    return {"url": str(saved["url"]), "message": str(saved["message"])}


class PhotoSources(JournaledRecord[str]):
    """The URL each photo in ``out/images`` was fetched from, by product id, so that a product whose photo URL changed
    gets the new photo. Only a download records one: the URL in an earlier ``products.csv`` may not be its photo's (a
    run without ``--images``, or before this file existed, rewrote it and kept the photo)."""

    def __init__(self, out: Path):
        super().__init__(out / PHOTO_SOURCES_JSON, out / PHOTO_SOURCES_JOURNAL, _url, _SOURCES_UNKNOWN)


def _url(saved: Any) -> str | None:
    """A photo's URL as :class:`PhotoSources` records it, read back."""
    return saved if isinstance(saved, str) else None


#: what follows when a record of the photos' sources cannot be read: the photos it records are of no recorded URL, kept
#: without being fetched again until ``--refresh``, and not taken for those of their products' URLs now, which may not
#: be theirs (a run without ``--images`` rewrites ``products.csv`` with the new URLs and keeps the photos): recorded so,
#: a photo would pass for its product's forever, --refresh included
_SOURCES_UNKNOWN = (
    "the URLs of the photos it records are unknown: a run keeps those photos as they are (for a product whose photo "
    "URL changed too), --refresh fetches them again"
)


def photos_on_disk(products: Iterable[CollectedProduct], folder: Path) -> dict[str, str]:
    """``product_id`` → its photo's path relative to the output folder (``images/<id>.<type>``), when on disk."""
    on_disk = _files_by_stem(folder)
    return {
        product.product_id: f"{IMAGES_DIR}/{on_disk[stem]}"
        for product in products
        if (stem := _file_stem(product.product_id)) in on_disk
    }


def _files_by_stem(folder: Path) -> dict[str, str]:
    """The photos saved in ``folder``, file name by stem (the product's), a half-written file left out."""
    if not folder.is_dir():
        return {}
    return {path.stem: path.name for path in folder.iterdir() if path.suffix != ".tmp"}


def _file_stem(product_id: str) -> str:
    """A file name for a product's photo: the id itself when it is filename-safe, else a safe form and a hash."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", product_id)[:100]
    return safe if safe == product_id else f"{safe}-{hashlib.sha1(product_id.encode()).hexdigest()[:8]}"


def orphan_photos(
    out: Path, collected: Collection[str], earlier: dict[str, str], sources: PhotoSources
) -> dict[str, str]:
    """The photos in ``out/images`` that the collection saved for products it no longer holds (not among
    ``collected``), file name by product id: those ``sources`` records as downloaded, or that the ``earlier``
    products.csv (product id -> image) linked to their product. Any other file there (a user's own) is none of them."""
    on_disk = _files_by_stem(out / IMAGES_DIR)
    recorded = sources.product_ids()
    orphans = {}
    for product_id in (recorded | earlier.keys()) - set(collected):
        name = on_disk.get(_file_stem(product_id))
        if name is not None and (product_id in recorded or earlier.get(product_id) == f"{IMAGES_DIR}/{name}"):
            orphans[product_id] = name
    return orphans


def remove_photos(out: Path, photos: dict[str, str], report: RunEntries, sources: PhotoSources, whose: str) -> None:
    """Delete these photos (file name by product id) from ``out/images``, then forget where they were fetched from:
    stopped between the two, the next finished run finds them again in ``photo_sources.json``. ``whose``: the
    products they were of, as the log says it ("of products no longer collected")."""
    if not photos:
        return
    for name in photos.values():
        (out / IMAGES_DIR / name).unlink(missing_ok=True)
    log.info("removed %d photo(s) %s from %s", len(photos), whose, out / IMAGES_DIR)
    report.counts["orphan_photos_removed"] = len(photos)
    sources.forget(photos.keys())
    sources.save()
