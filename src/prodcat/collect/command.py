"""``prodcat collect SOURCE --query Q --out DIR``: products from a public API, as a catalogue."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import textwrap
import unicodedata
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from prodcat import installed_version
from prodcat.arguments import (
    into_bundle,
    non_negative_int,
    positive_int,
    positive_rate,
    positive_seconds,
    seconds,
    writable_folder,
)
from prodcat.collect import COLLECTORS, http
from prodcat.collect.base import search_query
from prodcat.collect.http import HttpClient, host_of
from prodcat.formatting import count_text, counted, say_error

if TYPE_CHECKING:
    from prodcat.collect.pipeline import CollectReport, RunEntries

#: photos are static files, served apart from the search API and its stricter limit
DEFAULT_IMAGE_RATE = 2.0
#: a write failing so (a full disk, a quota reached) succeeds once there is room: the run can be resumed then
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT)


def output_folder(what: str) -> Callable[[str], Path]:
    """An argparse type for ``--out``, the folder of ``what`` (``"the collection"``): a folder that takes files (one
    that takes none failed at its first write, a page fetched, in OSError's traceback), and no model bundle's, which
    would no longer load once it held them."""
    writable = writable_folder(what)

    def folder(text: str) -> Path:
        path = writable(text)
        if problem := into_bundle("", path):
            raise argparse.ArgumentTypeError(problem)
        return path

    return folder


#: the largest --page-size, that of the source serving the largest pages
_LARGEST_PAGE = max(collector.max_page_size for collector in COLLECTORS.values())


#: each source's stated request rate, the default --rate: "openfoodfacts 0.167 (10 a minute)"
_STATED_RATES = ", ".join(
    f"{name} {collector.default_requests_per_second:.3g} ({collector.default_requests_per_second * 60:g} a minute)"
    for name, collector in COLLECTORS.items()
)


def _page_size(text: str) -> int:
    """An argparse type for --page-size: a whole number from 1 to the largest page a source serves (a larger one was
    cut to it without a word)."""
    size = positive_int(text)
    if size > _LARGEST_PAGE:
        raise argparse.ArgumentTypeError(f"at most {_LARGEST_PAGE}, the largest page the API serves, got {size}")
    return size


def _search_terms(text: str) -> str:
    """An argparse type for --query: refuses blank terms, which a full-text search takes for "everything", and
    terms that are not UTF-8, which no URL can carry; the others as one query however typed
    (:func:`~prodcat.collect.base.search_query`)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is blank: give search terms (a blank query matches every product)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a terminal in another encoding (Latin-1): Python keeps its bytes as surrogates
        raise argparse.ArgumentTypeError(
            f"is not UTF-8 text ({text!a}): the terminal sends another encoding; set it to UTF-8"
        ) from None
    return search_query(text)


def _contact(text: str) -> str:
    """An argparse type for --contact (and PRODCAT_CONTACT, its default): a text the User-Agent header can carry,
    the spaces and line breaks around it dropped (a Windows .env file leaves a CR at the end). One it cannot carry
    failed the first request as 'cannot fetch this address', blaming --base-url."""
    contact = text.strip()
    if any(unicodedata.category(character) == "Cc" for character in contact):
        why = "holds a line break or another control character"
    elif any(ord(character) > 0xFF for character in contact):  # http.client sends header values as Latin-1
        why = "holds characters outside Latin-1"
    else:
        return contact
    raise argparse.ArgumentTypeError(
        f"{text!r} {why}, which an HTTP header cannot carry: give an e-mail address or a URL (PRODCAT_CONTACT is "
        "this option's default)"
    )


def _base_url(text: str) -> str:
    """An argparse type for --base-url: an http:// or https:// URL naming a host, and a port if it has one. Another (a
    host without its scheme, a mistyped value or port) was only said after every retry, the API 'unreachable', blaming
    the network."""
    problem = _base_url_problem(text)
    if problem is None:
        return text
    raise argparse.ArgumentTypeError(f"{text!r} {problem}: give the API's address as https://HOST[:PORT][/PATH]")


def _base_url_problem(text: str) -> str | None:
    """What makes ``text`` no API address, in words after it; ``None`` if nothing does."""
    not_a_url = "is not an http:// or https:// URL naming a host"
    if any(character.isspace() for character in text):
        # urllib drops a space before the URL and a tab or newline anywhere, and keeps a space in the host, which no
        # request reaches: none is in a URL (RFC 3986)
        return f"{not_a_url} (it holds white space)"
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError as error:  # "http://[::1", an IPv6 address without its closing bracket
        return f"{not_a_url} ({error})"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return not_a_url
    # the port as urllib reads it (after the user's password, after an IPv6 address's bracket): urllib says only "out
    # of range" for 99999, and takes 0, which no server listens on; an empty one is the scheme's
    port = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return f"has the port {port!r}, not a number from 1 to 65535"
    return None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prodcat collect`` among ``subparsers``, then ``prodcat fetch-photos``, which downloads photos as it
    does (:mod:`prodcat.collect.fetch_command`); each one's ``func`` runs it (the command's code imported then)."""
    _add_collect_parser(subparsers)
    from prodcat.collect import fetch_command  # it imports this module's options

    fetch_command.add_parser(subparsers)


def _add_collect_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "collect",
        help="collect products matching a query from a public API into a catalogue",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write DIR/products.csv (canonical columns + the source's), DIR/collect.json (counts, errors) "
        "and, with --images, the photos that decode safely under DIR/images. Re-running the same command "
        "resumes: pages and photos already in DIR are not fetched again.",
        epilog=textwrap.dedent("""\
            examples:
              prodcat collect --query champagne --out data/champagne --max-products 500 --images
              prodcat collect openfoodfacts --query "pâte à tartiner" --out data/spreads --contact me@example.org
              prodcat predict models/food data/champagne/products.csv --out preds.csv
            """),
    )
    parser.add_argument(
        "source", nargs="?", default="openfoodfacts", choices=sorted(COLLECTORS), help="API (default openfoodfacts)"
    )
    parser.add_argument(
        "--query", required=True, type=_search_terms, metavar="TERMS", help="search terms, e.g. champagne"
    )
    parser.add_argument(
        "--out",
        required=True,
        type=output_folder("the collection"),
        metavar="DIR",
        help="output folder (re-used to resume; one holding another catalogue or query's collection is refused)",
    )
    parser.add_argument(
        "--max-products", type=positive_int, metavar="N", help="stop after N distinct products (default: all)"
    )
    parser.add_argument("--images", action="store_true", help="download each product's photo into DIR/images")
    parser.add_argument(
        "--page-size",
        type=_page_size,
        metavar="N",
        help=f"records per page, at most {_LARGEST_PAGE} (default: the API's largest)",
    )
    parser.add_argument(
        "--rate",
        type=positive_rate,
        metavar="PER_S",
        help=f"API requests per second (default: the API's stated limit, {_STATED_RATES})",
    )
    add_http_options(parser, "5xx, timeouts and answers that are not the API's pages")
    parser.add_argument(
        "--base-url", type=_base_url, metavar="URL", help="the API's address (default: its public one), e.g. a mirror"
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="fetch every page again instead of resuming, and the photos that failed for good (404, not an image, "
        "too large); a refresh stopped halfway resumes where it stopped when run again, unless it saved no page for a "
        "day",
    )
    parser.add_argument(
        "--allow-fewer",
        action="store_true",
        help="replace DIR/products.csv even with fewer than half of the products it holds (they left the API); "
        "without it such a run leaves the file as it was and exits 2",
    )
    parser.set_defaults(func=run_collect)


def add_http_options(parser: argparse.ArgumentParser, retried: str) -> None:
    """The options of the HTTP clients of a command that downloads (``collect``, ``fetch-photos``): the photos' rate,
    retries (on what is ``retried``), timeouts, proxy and contact, read by :func:`http_client`."""
    parser.add_argument(
        "--image-rate",
        type=positive_rate,
        default=DEFAULT_IMAGE_RATE,
        metavar="PER_S",
        help="photo requests per second (default %(default)s)",
    )
    parser.add_argument(
        "--retries",
        type=non_negative_int,
        default=http.DEFAULT_RETRIES,
        metavar="N",
        help=(
            f"retries on {retried} (default %(default)s), and as many again on 429s, which wait 60 s unless "
            "Retry-After says; a host that refuses connections is tried at most twice more"
        ),
    )
    parser.add_argument(
        "--backoff",
        type=seconds,
        default=http.DEFAULT_BACKOFF,
        metavar="S",
        help="retries wait S, 2S, 4S... s (at most 60), or the server's Retry-After (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=http.DEFAULT_TIMEOUT,
        metavar="S",
        help="seconds to wait for a connection, and for each read of an answer (default %(default)s)",
    )
    parser.add_argument(
        "--deadline",
        type=positive_seconds,
        default=http.DEFAULT_DEADLINE,
        metavar="S",
        help="seconds a whole answer (a page, a photo) may take; one still downloading after them is abandoned "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--proxy",
        metavar="URL",
        help="HTTP(S) proxy URL, HOST:PORT for an http:// one (default: for each host, $HTTPS_PROXY / $HTTP_PROXY "
        "unless $NO_PROXY exempts it)",
    )
    parser.add_argument(
        "--contact",
        metavar="EMAIL",
        default=os.environ.get("PRODCAT_CONTACT"),
        type=_contact,
        help="e-mail or URL put in the User-Agent, as public APIs ask (env PRODCAT_CONTACT)",
    )


def run_collect(args: argparse.Namespace) -> int:
    """Run ``prodcat collect`` with the parsed ``args``; returns the exit code."""
    from prodcat.collect.pipeline import collect

    # our client logs each retry in one line; urllib3 would add a line for each photo's redirect
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    collector = COLLECTORS[args.source](args.base_url)
    requests_per_second = args.rate or collector.default_requests_per_second
    api_client = http_client(args, requests_per_second, rate_limit_window=collector.rate_limit_window)
    report = run_resumably(
        lambda: collect(
            collector,
            args.query,
            args.out,
            api_client,
            max_products=args.max_products,
            page_size=args.page_size,
            # the API's host, named by the user, may be private (a mirror on the local network); others may not
            image_client=http_client(args, args.image_rate, private_hosts=_api_host(collector.base_url))
            if args.images
            else None,
            refresh=args.refresh,
            allow_fewer=args.allow_fewer,
        ),
        "the pages and photos",
    )
    if isinstance(report, int):
        return report
    _print_summary(report, args.out)
    if report.stopped_by == "interrupted":
        print(f"interrupted: {_kept(report)}", file=sys.stderr)
        return 130
    if report.fatal_error is not None:
        cause = cast(str, report.fatal_cause)  # set with fatal_error, by the pipeline's _stop_on_error
        return say_error(report.fatal_error, f"  {_kept(report)}. {_ADVICE[cause]}")
    if report.kept_earlier is not None:  # a finished run that would have emptied the collection
        return say_error(report.kept_earlier)
    return 0


_Report = TypeVar("_Report")


def run_resumably(run: Callable[[], _Report], saved: str) -> _Report | int:
    """What ``run()`` returns, or the exit code of a failure it left resumable, said in one line: a full disk, or
    Ctrl-C while its outputs were written (they agree whichever was reached). ``saved``: what it keeps to resume from
    (``"the photos"``)."""
    try:
        return run()
    except OSError as exc:
        if exc.errno not in _NO_ROOM:
            raise
        return say_error(
            f"cannot write {exc.filename}: {exc.strerror}. Free some space, then run the same command again to resume: "
            f"{saved} saved so far are kept"
        )
    except KeyboardInterrupt:
        print(f"interrupted: {saved} saved so far are kept; run the same command again to resume", file=sys.stderr)
        return 130


def _api_host(base_url: str) -> tuple[str, ...]:
    """The API's own host, as the photo client reads a URL's (:func:`host_of`), which may be private."""
    host = host_of(base_url)
    return (host,) if host else ()


def http_client(args: argparse.Namespace, requests_per_second: float, **options: Any) -> HttpClient:
    """The HTTP client of the options of :func:`add_http_options` in ``args``, at ``requests_per_second``, given the
    other ``options`` of :class:`HttpClient`."""
    return HttpClient(
        _user_agent(args.contact),
        requests_per_second,
        retries=args.retries,
        backoff=args.backoff,
        timeout=args.timeout,
        deadline=args.deadline,
        proxy=args.proxy,
        **options,
    )


def _print_summary(report: CollectReport, out: str) -> None:
    from prodcat.collect.photos import IMAGES_DIR
    from prodcat.collect.pipeline import FINISHED, ORPHANS, PRODUCTS_CSV, REPORT_JSON

    counts = report.counts
    said = {name: count_text(value) for name, value in counts.items()}  # 12,345 as the other commands write it
    if report.kept_earlier is not None:
        pass  # said on stderr, with the exit code
    elif counts["products"]:
        print(
            f"{counted(counts['products'], 'product')} ({said['with_category']} "
            f"with a category, {said['with_photo']} with a photo) written to {os.path.join(out, PRODUCTS_CSV)}"
        )
    elif report.stopped_by in FINISHED and counts.get("records"):  # results came, none usable
        print(
            f"none of the {said['records']} results for {report.query!r} on {report.source} could be used (see "
            f"the errors): {os.path.join(out, PRODUCTS_CSV)} is empty"
        )
    elif report.stopped_by == "exhausted":
        print(f"no product matches {report.query!r} on {report.source}: {os.path.join(out, PRODUCTS_CSV)} is empty")
    # what follows each of these counts, said when it is not zero
    notes = {
        "left_out_without_text_or_photo": f"product(s) without a name or description, nor a photo on disk, left out "
        f"of {os.path.join(out, PRODUCTS_CSV)} (see the errors): {report.to_write_left_out}",
        "earlier_products_dropped": f"product(s) of the earlier {PRODUCTS_CSV} are not in this one (no longer among "
        "the results, past --max-products, or not reached by an unfinished run)",
        "orphan_photos_removed": f"photo(s) {ORPHANS} removed from {os.path.join(out, IMAGES_DIR)}",
    }
    print_notes(report, out, REPORT_JSON, notes)


def print_notes(report: RunEntries, out: str, report_json: str, notes: dict[str, str]) -> None:
    """Say each count of ``report`` that ``notes`` (by count), or the photo downloader's notes, tell what follows
    from, when it is not zero; then how many errors and warnings ``out/report_json`` details."""
    from prodcat.collect.photos import IMAGES_DIR

    photo_notes = {
        "photos_damaged": f"photo(s) saved in {os.path.join(out, IMAGES_DIR)} by an earlier run no longer decoded "
        "(emptied or cut short on disk since): removed and fetched again (see the warnings)",
        "photos_not_tried": "photo(s) not tried, their host being unreachable or rate limiting: run the same command "
        "again to fetch them",
    }
    for name, note in {**notes, **photo_notes}.items():
        if count := report.counts.get(name):
            print(f"{count_text(count)} {note}")
    print(
        f"{count_text(len(report.errors))} error(s), {count_text(len(report.warnings))} warning(s); counts and "
        f"details in {os.path.join(out, report_json)}"
    )


def _kept(report: CollectReport) -> str:
    if report.kept_earlier is not None:
        return f"{report.kept_earlier}; {_RESUME}"
    written = report.counts["products"]
    # not among the products written to products.csv: counted apart (and said by the summary)
    left_out = report.counts.get("left_out_without_text_or_photo", 0)
    collected = written + left_out
    if not collected:
        return "nothing was collected"
    products = f"{counted(collected, 'product')} collected so far"
    are = "is" if written == 1 else "are"
    if not left_out:
        return f"the {products} {are} kept; {_RESUME}"
    kept = f"the {count_text(written)} with a name, description or photo {are} kept"
    if not written:
        kept = "none has a name, description or photo: nothing is kept"
    return f"of the {products}, {kept}; {_RESUME}"


_RESUME = "run the same command again to resume"


#: what to do about a failed page, by its cause
_ADVICE = {
    http.UNREACHABLE: "Check the network connection (or --proxy / --base-url); on a machine without internet "
    "access this command cannot work.",
    http.RATE_LIMITED: "The API kept answering 'too many requests': wait a few minutes before resuming, or lower "
    "--rate.",
    http.SERVER_ERROR: "The API is failing or overloaded: try again later (--retries and --timeout allow more).",
    http.TOO_SLOW: "The API answers too slowly: try again later, or allow more with --deadline.",
    http.BAD_ANSWER: "The API sent something other than its results pages (a maintenance page, a cut answer, a "
    "changed format): try again later, and check --base-url.",
    http.REFUSED: "The API refused the request: check --base-url (and --proxy).",
    http.TOO_LARGE: "The API's answer is larger than a results page can be: check --base-url.",
    http.UNTRUSTED: "The API's certificate could not be verified (a proxy inspecting HTTPS, a wrong --base-url or "
    "an outdated certificate store): retrying will not help.",
    http.TLS_FAILED: "The API's server and this machine could not agree on a secure connection (an https:// "
    "--base-url on a plain-HTTP port, or no TLS version or cipher in common): check --base-url; retrying will "
    "not help.",
}


def _user_agent(contact: str | None) -> str:
    return f"prodcat/{installed_version()} (product catalogue collection{'; ' + contact if contact else ''})"
