"""How the messages a person reads write numbers, the same on the command line, in the reports and in the app."""

from __future__ import annotations

from numbers import Integral


def count_text(count: object) -> str:
    """A count with thousands separators (``12,345``), a numpy integer (a pandas sum) as well as Python's; anything
    but an integer (a value missing from a manifest, or edited by hand) as it is."""
    return f"{count:,}" if isinstance(count, Integral) and not isinstance(count, bool) else str(count)
