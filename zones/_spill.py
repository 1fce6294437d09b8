"""Local folders a merge spills its sorted runs to, and the removal of those a killed process left behind.

A merge removes its folder when it is done or fails; a process killed mid-merge (SIGKILL, OOM killer, a
lost node's pod restarted on the same disk) cannot, and a 5M-row backfill spills gigabytes. Each folder is
named after its host and process id, and creating one first removes this host's folders whose process no
longer runs (another host's, e.g. a container sharing the volume, are left to it).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "lakegate-merge-"


def spill_folder() -> Path:
    """A new folder for this process's spill files (the caller removes it), after removing orphans."""
    host = _host()
    remove_orphans(host)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{host}-{os.getpid()}-"))


def remove_orphans(host: str) -> None:
    """Remove the spill folders of ``host``'s processes that no longer run."""
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}{host}-*-*"):
        pid = folder.name[len(f"{PREFIX}{host}-") :].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d spill folder(s) left by merges that were killed", removed)


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname()) or "host"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
