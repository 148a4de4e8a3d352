"""``prodcat cache [info | prune | clear]``: what the prodcat cache holds, and deleting what this prodcat no longer
reads (:mod:`prodcat.features.cache_files`, imported when the command runs)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from prodcat.arguments import user_path

if TYPE_CHECKING:
    from prodcat.features.cache_files import CacheEntry

#: the columns of ``prodcat cache``'s table
COLUMNS = ("FILE", "SIZE", "ITEMS", "HOLDS", "EXTRACTOR", "VERSION", "DECODER", "STATUS")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prodcat cache`` among ``subparsers``; its ``func`` runs it."""
    parser = subparsers.add_parser(
        "cache",
        help="list the feature cache, and delete the files of old extractor or decoder versions",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            info (the default) lists the prodcat cache: each file with its size, what it holds (the extractor,
            its version and, for photos, the decoder's; its items), and whether it is current (what this
            prodcat reads and writes), stale (an older version: no code of this prodcat opens it), newer (a
            later prodcat's, sharing the folder) or unknown (an extractor this prodcat does not know, or a
            file prodcat does not write); the ONNX exports and the review queue's photos too. A
            sentence_transformer model's file is current whichever model it is (one file per model: the
            weights are not checked), so an old model's is deleted by hand.

            prune deletes the stale files, and damaged ones set aside (*.corrupt), and says how much it freed:
            a run of this prodcat, even one running now, never opens them. Current, newer and unknown files
            are kept.

            clear deletes every file prodcat wrote there, current ones included, and keeps the files put
            there by hand: run it when no prodcat is running (one that is recomputes what it reads, or fails
            on a file deleted under it)."""),
        epilog=textwrap.dedent("""\
            examples:
              prodcat cache
              prodcat cache prune --dry-run
              prodcat cache prune
              prodcat cache clear --yes --cache-dir /scratch/prodcat
            """),
    )
    parser.add_argument("action", nargs="?", choices=("info", "prune", "clear"), default="info", help="default: info")
    parser.add_argument(
        "--cache-dir",
        type=user_path,
        metavar="DIR",
        help="the cache folder (default: $PRODCAT_CACHE_DIR, else ~/.cache/prodcat)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="prune or clear: list what would be deleted, delete none"
    )
    parser.add_argument("--yes", action="store_true", help="clear: delete the current files too (required)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from prodcat.features.cache import default_cache_dir
    from prodcat.features.cache_files import scan
    from prodcat.formatting import say_error

    if args.dry_run and args.action == "info":
        return say_error("--dry-run goes with prune or clear: info deletes nothing")
    if args.yes and args.action != "clear":
        return say_error(
            f"--yes goes with clear: {args.action} deletes {'no current file' if args.action == 'prune' else 'nothing'}"
        )
    folder: Path = args.cache_dir or default_cache_dir()
    entries = scan(folder)
    if args.action == "info":
        return _info(folder, entries)
    chosen = [entry for entry in entries if (entry.prunable if args.action == "prune" else entry.ours)]
    if args.action == "clear" and chosen and not (args.yes or args.dry_run):
        return say_error(
            f"clear deletes every file prodcat wrote in {folder}, current ones included "
            f"({_entries_text(chosen)}): give --yes to delete them, or --dry-run to list them"
        )
    return _delete(folder, chosen, args.action, dry_run=args.dry_run)


def _info(folder: Path, entries: list[CacheEntry]) -> int:
    from prodcat.features.cache_files import size_text
    from prodcat.formatting import count_text, one_line

    if not entries:
        print(f"the prodcat cache {one_line(str(folder))} is empty")
        return 0
    print(f"the prodcat cache {one_line(str(folder))}:")
    rows = [COLUMNS] + [
        (
            one_line(entry.name),
            size_text(entry.size),
            "" if entry.items is None else count_text(entry.items),
            entry.holds,
            entry.extractor,
            entry.version,
            entry.decoder,
            f"{entry.status}: {entry.note}" if entry.note else entry.status,
        )
        for entry in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    right = {1, 2}  # sizes and counts aligned on their units
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    prunable = [entry for entry in entries if entry.prunable]
    total = f"total {size_text(sum(entry.size for entry in entries))}"
    if prunable:
        print(f"{total}; stale or damaged: {_entries_text(prunable)}, which `prodcat cache prune` deletes")
    else:
        print(f"{total}; nothing stale")
    return 0


def _entries_text(entries: list[CacheEntry]) -> str:
    from prodcat.features.cache_files import size_text
    from prodcat.formatting import counted

    files = sum(len(entry.files) for entry in entries)
    return f"{counted(files, 'file')}, {size_text(sum(entry.size for entry in entries))}"


def _delete(folder: Path, entries: list[CacheEntry], action: str, *, dry_run: bool) -> int:
    from prodcat.features.cache_files import delete, size_text
    from prodcat.formatting import counted, one_line, say_error

    if not entries:
        print(
            f"nothing {'stale' if action == 'prune' else 'prodcat wrote'} in the prodcat cache {one_line(str(folder))}"
        )
        return 0
    doing = "would delete" if dry_run else "deleting"
    for entry in entries:
        why = f" ({entry.status}: {entry.note})" if entry.note and action == "prune" else ""
        print(f"{doing} {one_line(entry.name)}, {size_text(entry.size)}{why}")
    if dry_run:
        print(f"would free {_entries_text(entries)} in {one_line(str(folder))}; run without --dry-run to delete them")
        return 0
    freed, failed = delete(entries)
    print(f"freed {size_text(freed)} in {one_line(str(folder))}")
    if failed:
        say_error(f"{counted(len(failed), 'file')} could not be deleted:", *failed)
        return 1
    return 0
