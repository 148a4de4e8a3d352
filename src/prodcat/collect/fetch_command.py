"""``prodcat fetch-photos DATA --out DIR``: download the photos a catalogue gives as URLs, and write it naming them."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap

from prodcat.arguments import add_loader_arguments
from prodcat.collect.command import add_http_options, http_client, output_folder, print_notes, run_resumably
from prodcat.formatting import count_text, counted

log = logging.getLogger(__name__)


def _host(text: str) -> str:
    """An argparse type for --private-host: a host name or address, without a scheme, port or path."""
    host = text.strip().lower()
    if not host or any(character in host for character in "/@ ") or host.count(":") == 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a host name or address: give it alone, e.g. photos.intranet or 192.168.1.20"
        )
    return host.removeprefix("[").removesuffix("]")  # an IPv6 address, as a URL's host is read


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prodcat fetch-photos`` among ``subparsers``; its ``func`` runs it (the command's code imported
    then)."""
    parser = subparsers.add_parser(
        "fetch-photos",
        help="download the photos a catalogue gives as URLs, and write the catalogue naming the files",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read the catalogue DATA as every command does, download each photo it gives as an http(s) URL "
        "into DIR/images (checked as prodcat collect checks its photos), and write DIR/products.csv, the catalogue "
        "with the files' paths (a photo that failed left empty: the product is classified from its text), and "
        "DIR/fetch.json (counts, failures). Re-running the same command resumes: photos already in DIR are not "
        "fetched again, nor those that failed for good (404, not an image, too large) unless --refresh.",
        epilog=textwrap.dedent("""\
            examples:
              prodcat fetch-photos export.csv --out data/export --contact me@example.org
              prodcat fetch-photos feed.parquet --out data/feed --id-column sku --image-column image_link
              prodcat predict models/demo data/export/products.csv --out preds.csv
            """),
    )
    add_loader_arguments(parser)
    parser.add_argument(
        "--out",
        required=True,
        type=output_folder("the photos and catalogue"),
        metavar="DIR",
        help="output folder (re-used to resume; one holding another catalogue is refused)",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="try again the photos that failed for good in an earlier run (404, not an image, too large)",
    )
    parser.add_argument(
        "--private-host",
        action="append",
        type=_host,
        default=[],
        metavar="HOST",
        help="a host photos may come from although it is not public (your photo server on a private network; "
        "repeat for several; default: none, a photo is fetched from a public host only)",
    )
    add_http_options(parser, "5xx and timeouts")
    parser.set_defaults(func=run_fetch_photos)


def run_fetch_photos(args: argparse.Namespace) -> int:
    """Run ``prodcat fetch-photos`` with the parsed ``args``; returns the exit code."""
    from prodcat.catalog.loaders import load_from_args
    from prodcat.collect.fetch import ORPHANS, REPORT_JSON, fetch_photos, input_issues
    from prodcat.collect.photos import IMAGES_DIR

    logging.getLogger("urllib3").setLevel(logging.WARNING)  # as collect: our client logs each retry in one line
    catalog = load_from_args(args)
    log.info("%s: %s, %s", args.data, counted(len(catalog), "product"), counted(len(catalog.photo_urls), "photo URL"))
    if issues := input_issues(catalog):
        log.warning(
            "%s while reading %s, listed in %s (warnings); the first: %s",
            counted(len(issues), "issue"),
            args.data,
            os.path.join(args.out, REPORT_JSON),
            issues[0],
        )
    client = http_client(args, args.image_rate, private_hosts=args.private_host, private_host_option="--private-host")
    report = run_resumably(lambda: fetch_photos(catalog, args.out, client, refresh=args.refresh), "the photos")
    if isinstance(report, int):
        return report
    _print_summary(report.counts, str(args.out))
    removed = f"photo(s) {ORPHANS} removed from {os.path.join(args.out, IMAGES_DIR)}"
    print_notes(report, str(args.out), REPORT_JSON, {"orphan_photos_removed": removed})
    if report.stopped_by == "interrupted":
        print(
            "interrupted: the photos saved so far are kept, and named in products.csv; run the same command again "
            "to fetch the others",
            file=sys.stderr,
        )
        return 130
    return 0


def _print_summary(counts: dict[str, int], out: str) -> None:
    from prodcat.collect.pipeline import PRODUCTS_CSV

    # the photos not tried are said by print_notes, with what to do
    fetched = {
        "downloaded": counts.get("photos_downloaded", 0),
        "already in the folder": counts.get("photos_from_cache", 0),
        "failed": counts.get("photos_failed", 0),
        "failed in an earlier run, not tried again (--refresh does)": counts.get("photos_failed_earlier", 0),
    }
    said = ", ".join(f"{count_text(count)} {what}" for what, count in fetched.items() if count)
    print(f"{counted(counts['photo_urls'], 'photo URL')}{': ' + said if said else ''}")
    print(
        f"{counted(counts['products'], 'product')} ({count_text(counts['with_photo'])} with a photo) written to "
        f"{os.path.join(out, PRODUCTS_CSV)}"
    )
