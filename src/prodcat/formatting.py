"""How the messages a person reads write numbers, the same on the command line, in the reports and in the app."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral


def count_text(count: object) -> str:
    """A count with thousands separators (``12,345``), a numpy integer (a pandas sum) as well as Python's; anything
    but an integer (a value missing from a manifest, or edited by hand) as it is."""
    return f"{count:,}" if isinstance(count, Integral) and not isinstance(count, bool) else str(count)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` as :func:`count_text` writes it, then ``noun``, or its ``plural`` (default: ``noun`` + "s") unless
    the count is one: ``1 product``, ``12,345 products``, ``2 categories``."""
    return f"{count_text(count)} {noun if count == 1 else plural or noun + 's'}"


def first_few(items: Sequence[str], most: int) -> str:
    """The first ``most`` of ``items`` joined by commas, then "and N more" for the others, so that a message naming
    them stays one readable line however many there are: ``a, b, c and 12 more``."""
    shown = ", ".join(items[:most])
    return shown + (f" and {count_text(len(items) - most)} more" if len(items) > most else "")
