"""Whether a process runs on this machine: what a run killed outright (SIGKILL, the OOM killer, a power cut) left
behind, named after its pid, is removed by the next once that pid no longer runs. Imports nothing heavy: uvicorn's
supervisor (``prodcat serve --workers N``) reads it."""

from __future__ import annotations

import os


def running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (a reused pid reads as running: what it names is kept, as is
    what a pid beyond any process's names, which no run made)."""
    if os.name == "nt":  # os.kill would end it there: kept
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's; beyond a C int, which os.kill raised to the caller
        pass
    return True
