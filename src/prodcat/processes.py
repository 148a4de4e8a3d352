"""Whether a process runs on this machine: what a run killed outright (SIGKILL, the OOM killer, a power cut) left
behind, named after its pid, is removed by the next once that pid no longer runs. Imports nothing heavy: uvicorn's
supervisor (``prodcat serve --workers N``) reads it."""

from __future__ import annotations

import os
import socket

#: the inode of the machine's own pid namespace, the first one (Linux's PROC_PID_INIT_INO)
_INITIAL_PID_NAMESPACE = 0xEFFFFFFC


def machine() -> str:
    """Where this process's pid names it, to name what it leaves behind with: the host name, and in a pid namespace
    of its own (a container's) that namespace too. Two containers of one host name (``docker run --network host``
    gives the host's) sharing a folder (a mounted /tmp, a report folder) each number their processes apart: one's
    pid reads as ended, or as another process, in the other, which removed the folder of a run still going."""
    host = socket.gethostname()
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # no /proc (not Linux): the host alone
        return host
    return host if namespace == _INITIAL_PID_NAMESPACE else f"{host}~pidns{namespace}"


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
