"""The operating-system process behind a CLI run: recorded on the run (tags) and beside it (run markers),
and tested for liveness without Dagster, so the cheap "nothing new" check can use it too."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOST_TAG = "lakegate/host"
BOOT_TAG = "lakegate/boot_id"
PID_TAG = "lakegate/pid"
PID_START_TAG = "lakegate/pid_start"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class RunProcess:
    """The operating-system process that executes a run."""

    host: str
    boot_id: str
    pid: int
    start: str

    @classmethod
    def current(cls) -> RunProcess:
        """This process."""
        pid = os.getpid()
        return cls(socket.gethostname(), _boot_id(), pid, _start_time(pid) or "")

    def tags(self) -> dict[str, str]:
        """Run tags that identify this process (none of them is secret)."""
        return {
            HOST_TAG: self.host,
            BOOT_TAG: self.boot_id,
            PID_TAG: str(self.pid),
            PID_START_TAG: self.start,
        }

    @classmethod
    def of(cls, tags: Mapping[str, str]) -> RunProcess | None:
        """The process recorded in a run's ``tags``; ``None`` for runs not started by ``lakegate run``."""
        if not {HOST_TAG, BOOT_TAG, PID_TAG, PID_START_TAG} <= tags.keys():
            return None
        try:
            pid = int(tags[PID_TAG])
        except ValueError:
            return None
        return cls(tags[HOST_TAG], tags[BOOT_TAG], pid, tags[PID_START_TAG])

    def is_dead(self) -> bool | None:
        """``True`` when provably dead, ``False`` when alive, ``None`` when this host cannot tell."""
        if self.host != socket.gethostname() or not self.boot_id:
            return None
        if self.boot_id != _boot_id():
            return True  # the machine rebooted since: every process of that boot is gone
        # A pid reused by another process has another start time (clock ticks since boot).
        return _start_time(self.pid) != self.start


def _boot_id() -> str:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """Start time of ``pid`` from ``/proc/<pid>/stat``; ``None`` when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after its last ")" are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    state, start = fields[0], fields[19]
    return None if state in {"Z", "X"} else start  # a zombie has exited: it holds nothing any more
