"""The results pages of a collection, read from the disk where an earlier run saved them, or from the API and
saved there (``DIR/pages/``, :mod:`prodcat.collect.pipeline`): a re-run asks the network only for the pages it lacks,
and a refresh keeps its pages apart until it ends."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import shutil
import time
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prodcat.collect.base import Collector, Page, PageFormatError
from prodcat.collect.http import HttpClient, InvalidAnswer, decode_json
from prodcat.collect.writing import write_bytes

if TYPE_CHECKING:
    from prodcat.collect.pipeline import CollectReport

log = logging.getLogger(__name__)


#: beside a query's pages, the pages of a refresh that has not reached the end of its results
REFRESH_DIR = "refreshing"
#: in :data:`REFRESH_DIR`, the file whose time is when that refresh began
REFRESH_BEGAN = "began"
#: seconds after its last page saved that a refresh stopped halfway is started over rather than resumed: its pages would
#: be as old as those it was run to replace. A refresh under way saves a page every few seconds, and one stopped (a
#: failing page, Ctrl-C) is resumed within hours, while one left for days was forgotten
REFRESH_ABANDONED_AFTER = 24 * 3600


class PageCache:
    """Results pages, read from ``root/<source>-<key>/size-<N>/page-NNNN.json`` when an earlier run saved them at
    this page size ``N``, else cut from the pages an earlier run saved of the same results at another page size.

    A refresh reads and saves its pages apart, in :data:`REFRESH_DIR`, until :meth:`end_refresh`: one stopped halfway
    (a page failing, Ctrl-C) resumes where it stopped, rather than at page 1 (``refresh_resumed``: when it began),
    unless it saved no page for :data:`REFRESH_ABANDONED_AFTER`; one refused (it would empty ``products.csv``) leaves
    the earlier pages as they were.
    """

    def __init__(self, root: Path, collector: Collector, query: str, page_size: int, refresh: bool):
        # the request with its page and page size fixed: the same query, sort and fields at any page size share the
        # key, so that a resume at another --page-size keeps the pages saved (the results' positions are the same)
        request = json.dumps(collector.page_request(query, 1, 1), ensure_ascii=False)
        self.results = root / f"{collector.name}-{hashlib.sha1(request.encode()).hexdigest()[:12]}"
        self.collector = collector
        self.query = query
        self.page_size = page_size
        self.refresh_resumed: str | None = None
        self.pages = self._begin_refresh() if refresh else self.results
        self.folder = self.pages / f"size-{page_size}"
        self.fetched = 0
        self.reused = 0

    def get(self, number: int, client: HttpClient, served: int, report: CollectReport) -> Page:
        """Page ``number``, from disk when an earlier run saved its records, else from the API (then saved as
        received). ``served``: the records of the pages before it. A page whose bytes had to be repaired is
        reported."""
        check = partial(self._checked, served=served)
        saved = self._saved(number) or self._cut_from_other_sizes(number)
        if saved is not None:
            page, warnings = saved
            try:
                check(page)
            except InvalidAnswer as exc:  # an incomplete page an older version saved
                log.warning("saved page %d is unusable (%s): fetching it again", number, exc)
            else:
                self.reused += 1
                for warning in warnings:
                    _report_repair(report, number, warning)
                return page
        url, params = self.collector.page_request(self.query, number, self.page_size)
        answer = client.get_json(url, params, lambda payload: check(self._parsed(payload)))
        self.folder.mkdir(parents=True, exist_ok=True)
        # as received: the decoded JSON may not encode again (a lone surrogate)
        write_bytes(self.folder / _page_file(number), answer.body)
        self.fetched += 1
        _report_repair(report, number, answer.warning)
        return answer.value

    def _saved(self, number: int, folder: Path | None = None) -> tuple[Page, list[str]] | None:
        """Page ``number`` as saved in ``folder`` (this page size's by default) and its repair warning; ``None`` when
        it was not saved (by the refresh under way), or is damaged on disk since."""
        path = (folder or self.folder) / _page_file(number)
        if not path.is_file():
            return None
        try:
            payload, warning = decode_json(path.read_bytes())
            page = self._parsed(payload)
            saved = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
        except ValueError as exc:  # InvalidAnswer included
            log.warning("saved page %s is unusable (%s): not used", path, exc)
            return None
        return replace(page, saved=saved), [warning] if warning is not None else []

    def _begin_refresh(self) -> Path:
        """The folder of the refresh under way's pages: emptied, unless an earlier refresh did not reach the end of the
        results and saved a page there within :data:`REFRESH_ABANDONED_AFTER` (resumed, said on the console)."""
        refreshing = self.results / REFRESH_DIR
        began_file = refreshing / REFRESH_BEGAN
        if began_file.is_file():
            began = began_file.stat().st_mtime  # the file system's clock, as the pages' times are
            last_saved = max((page.stat().st_mtime for page in refreshing.glob("size-*/page-*.json")), default=began)
            begun_on = datetime.fromtimestamp(began, UTC).strftime("%Y-%m-%d %H:%M UTC")
            if time.time() - max(began, last_saved) < REFRESH_ABANDONED_AFTER:
                self.refresh_resumed = datetime.fromtimestamp(began, UTC).isoformat(timespec="seconds")
                log.warning("resuming the refresh begun on %s; delete %s to start over", begun_on, refreshing)
                return refreshing
            idle = f"{REFRESH_ABANDONED_AFTER / 3600:g} hours"
            log.warning("the refresh begun on %s saved no page for over %s: started over", begun_on, idle)
        shutil.rmtree(refreshing, ignore_errors=True)
        refreshing.mkdir(parents=True)
        began_file.touch()
        return refreshing

    def end_refresh(self, *, keep: bool) -> None:
        """The results were read to their end (or ``max_products``): the refresh's pages replace the earlier ones when
        ``keep`` (its products replace ``products.csv``), else they are dropped, and the next refresh fetches every
        page again. Nothing to do without a refresh."""
        if self.pages == self.results:
            return
        if keep:
            for page in self.pages.glob("size-*/page-*.json"):
                earlier = self.results / page.relative_to(self.pages)
                earlier.parent.mkdir(exist_ok=True)
                page.replace(earlier)
        shutil.rmtree(self.pages)

    def _cut_from_other_sizes(self, number: int) -> tuple[Page, list[str]] | None:
        """Page ``number`` made of the records of pages an earlier run saved at another page size, when they hold
        them all (``None``: none does). Page ``n`` of size ``N`` holds the results from position ``(n - 1) * N``: a
        saved page of another size than asked, but the last, says the API does not page so, and is not used."""
        first = (number - 1) * self.page_size  # the position of its first record in the results
        for folder in sorted(self.pages.glob("size-*")):
            size_name = folder.name.removeprefix("size-")
            if folder == self.folder or not size_name.isdigit() or int(size_name) < 1:
                continue
            size = int(size_name)
            start = first // size + 1  # the saved page holding that record
            skip = first - (start - 1) * size
            records: list[Any] = []
            warnings: list[str] = []
            for saved_number in itertools.count(start):
                saved = self._saved(saved_number, folder)
                if saved is None:
                    break
                page, page_warnings = saved
                ended = is_last_page(page, (saved_number - 1) * size + len(page.records), size)
                if len(page.records) != size and not ended:  # the API did not serve the size asked: positions unknown
                    break
                records += page.records
                warnings += page_warnings
                if ended or len(records) >= skip + self.page_size:
                    if len(records) > skip:
                        cut = Page(records[skip : skip + self.page_size], page.total, page.saved)
                        return cut, list(dict.fromkeys(warnings))
                    break
        return None

    def _parsed(self, payload: Any) -> Page:
        """The page ``payload`` holds; :class:`InvalidAnswer` (retried, never saved) when it has an unexpected
        shape."""
        try:
            return self.collector.parse_page(payload)
        except PageFormatError as exc:
            raise InvalidAnswer(str(exc)) from None

    @staticmethod
    def _checked(page: Page, served: int) -> Page:
        """``page``; :class:`InvalidAnswer` (retried, never saved) when it holds no record although the API counts
        more results than the ``served`` ones."""
        if not page.records and page.total is not None and served < page.total:
            raise InvalidAnswer(
                f"an empty page, although the API counts {page.total} results and the pages before held {served}"
            )
        return page


def _page_file(number: int) -> str:
    return f"page-{number:04d}.json"


def _report_repair(report: CollectReport, number: int, warning: str | None) -> None:
    if warning is not None:
        report.add_warning("page", warning, page=number)


def is_last_page(page: Page, served: int, page_size: int) -> bool:
    """``page`` is the last: the API's total is reached by the ``served`` records of the pages read so far
    (counted, not pages x ``page_size``: an API may serve fewer per page than asked), or (no total) it is not
    full. An empty page before the total never gets here: :meth:`PageCache.get` refuses it."""
    return served >= page.total if page.total is not None else len(page.records) < page_size
