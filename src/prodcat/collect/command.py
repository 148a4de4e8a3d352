"""``prodcat collect SOURCE --query Q --out DIR``: products from a public API, as a catalogue."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import sys
import textwrap
import urllib.parse
import urllib.request
from collections.abc import Callable

from prodcat.collect import COLLECTORS
from prodcat.collect.http import HttpClient
from prodcat.collect.pipeline import PRODUCTS_CSV, REPORT_JSON, collect

#: photos are static files, served apart from the search API and its stricter limit
DEFAULT_IMAGE_RATE = 2.0


def _number(kind: type[int] | type[float], *, zero_allowed: bool = False) -> Callable[[str], int | float]:
    """An argparse type for numbers of ``kind`` above zero (or at least zero)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < 0 or (value == 0 and not zero_allowed):
            raise argparse.ArgumentTypeError(f"must be {'0 or more' if zero_allowed else 'above 0'}, got {text}")
        return value

    return parse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
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
    parser.add_argument("--query", required=True, metavar="TERMS", help="search terms, e.g. champagne")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (re-used to resume)")
    parser.add_argument(
        "--max-products", type=_number(int), metavar="N", help="stop after N distinct products (default: all)"
    )
    parser.add_argument("--images", action="store_true", help="download each product's photo into DIR/images")
    parser.add_argument(
        "--page-size", type=_number(int), metavar="N", help="records per page (default: the API's largest)"
    )
    parser.add_argument(
        "--rate", type=_number(float), metavar="PER_S", help="API requests per second (default: the API's stated limit)"
    )
    parser.add_argument(
        "--image-rate",
        type=_number(float),
        default=DEFAULT_IMAGE_RATE,
        metavar="PER_S",
        help="photo requests per second (default %(default)s)",
    )
    parser.add_argument(
        "--retries",
        type=_number(int, zero_allowed=True),
        default=4,
        metavar="N",
        help=(
            "retries on 429/5xx/timeouts (default %(default)s); a host that refuses connections is tried at most "
            "twice more"
        ),
    )
    parser.add_argument(
        "--backoff",
        type=_number(float, zero_allowed=True),
        default=1.0,
        metavar="S",
        help="retries wait S, 2S, 4S... s, or the server's Retry-After (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=_number(float),
        default=30.0,
        metavar="S",
        help="seconds to wait for an answer (default %(default)s)",
    )
    parser.add_argument("--base-url", metavar="URL", help="the API's address (default: its public one), e.g. a mirror")
    parser.add_argument(
        "--proxy", metavar="URL", help="HTTP(S) proxy URL (default: $HTTPS_PROXY / $HTTP_PROXY unless $NO_PROXY)"
    )
    parser.add_argument(
        "--contact",
        metavar="EMAIL",
        default=os.environ.get("PRODCAT_CONTACT"),
        help="e-mail or URL put in the User-Agent, as public APIs ask (env PRODCAT_CONTACT)",
    )
    parser.add_argument("--refresh", action="store_true", help="fetch every page again instead of resuming")
    parser.set_defaults(func=run_collect)


def run_collect(args: argparse.Namespace) -> int:
    # our client logs each retry in one line; urllib3's warning repeats the whole query string
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    collector = COLLECTORS[args.source](args.base_url)
    proxy = args.proxy or _environment_proxy(collector.base_url)
    user_agent = _user_agent(args.contact)
    api_client = HttpClient(
        user_agent,
        args.rate or collector.default_requests_per_second,
        retries=args.retries,
        backoff=args.backoff,
        timeout=args.timeout,
        proxy=proxy,
    )
    image_client = None
    if args.images:
        image_client = HttpClient(
            user_agent, args.image_rate, retries=args.retries, backoff=args.backoff, timeout=args.timeout, proxy=proxy
        )
    report = collect(
        collector,
        args.query,
        args.out,
        api_client,
        max_products=args.max_products,
        page_size=args.page_size,
        image_client=image_client,
        refresh=args.refresh,
    )
    counts = report.counts
    if counts["products"]:
        print(
            f"{counts['products']} products ({counts['with_category']} with a category, {counts['with_photo']} "
            f"with a photo) written to {os.path.join(args.out, PRODUCTS_CSV)}"
        )
    print(f"{len(report.errors)} error(s); counts and errors in {os.path.join(args.out, REPORT_JSON)}")
    if report.fatal_error is None:
        return 0
    kept = (
        f"the {counts['products']} products collected so far are kept; run the same command again to resume"
        if counts["products"]
        else "nothing was collected"
    )
    print(
        f"error: {report.fatal_error}\n  {kept}. Check the network connection (or --proxy / --base-url); "
        "on a machine without internet access this command cannot work.",
        file=sys.stderr,
    )
    return 2


def _user_agent(contact: str | None) -> str:
    try:
        version = importlib.metadata.version("prodcat")
    except importlib.metadata.PackageNotFoundError:
        version = "dev"
    return f"prodcat/{version} (product catalogue collection{'; ' + contact if contact else ''})"


def _environment_proxy(url: str) -> str | None:
    """The proxy the environment sets for ``url``'s scheme, unless ``NO_PROXY`` exempts its host."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)
