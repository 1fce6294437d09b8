"""A run lease kept in a zone, so one pipeline runs once at a time across every machine sharing the zones.

The lease of pipeline ``name`` is a folder of generations, ``<zone>/_lakegate/leases/<name>/<n>.json``,
each ``{"owner", "expires", "released"}``. Taking the lease is creating generation ``n + 1`` with a
put-if-absent (S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``, a hard link on a local disk): of
two runs racing for it exactly one creates it. Generation ``n`` blocks only while it is held and
unexpired; a holder renews its expiry every third of the TTL, so a holder killed with SIGKILL (or a lost
node) stops blocking the next run at most one TTL later — at once when the next run is on the same host
and sees the holder's process gone. The TTL is ``$LAKEGATE_LEASE_SECONDS``
(default 120 s); expiry compares wall clocks, so machines sharing zones keep NTP time.

The Delta commits stay safe without the lease (put-if-absent commits, app transactions); the lease keeps
two runs from ingesting the same source twice under different load ids.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from typing import Any

import fsspec

from zones.config import ZoneConfigError

log = logging.getLogger("lakegate.zones.lease")

DEFAULT_TTL = 120.0
_NAME = "{:012d}.json"


def lease_ttl() -> float:
    """Seconds a lease lasts without renewal (``$LAKEGATE_LEASE_SECONDS``, default 120)."""
    raw = os.environ.get("LAKEGATE_LEASE_SECONDS", "")
    try:
        return float(raw) if raw else DEFAULT_TTL
    except ValueError:
        raise ZoneConfigError(f"LAKEGATE_LEASE_SECONDS='{raw}' is not a number of seconds") from None


class LeaseHeld(Exception):
    """Another live run holds the lease; ``owner`` and ``expires`` (epoch seconds) say who and until when."""

    def __init__(self, owner: str, expires: float) -> None:
        super().__init__(owner, expires)
        self.owner, self.expires = owner, expires


def _dead_here(owner: str) -> bool:
    """True when ``owner`` (``host:pid:nonce``) is a process of this host that no longer exists: its
    lease is stale at once, without waiting for the TTL."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class ZoneLease:
    """The lease of pipeline ``name`` in the zone at ``zone_url``: :meth:`acquire`, then :meth:`release`.

    While held, a daemon thread renews it every third of ``ttl`` (default :func:`lease_ttl`).
    """

    def __init__(
        self, zone_url: str, fs_options: dict[str, Any], name: str, ttl: float | None = None
    ) -> None:
        self.fs, root = fsspec.core.url_to_fs(zone_url, **fs_options)
        self.folder = f"{root.rstrip('/')}/_lakegate/leases/{name}"
        self.local = "file" in self.fs.protocol
        self.ttl = ttl if ttl is not None else lease_ttl()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.generation = -1
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name=f"lease-{name}", daemon=True)

    def acquire(self) -> None:
        """Take the lease (taking over an expired one) and start renewing it.

        Raises:
            LeaseHeld: a live run holds it.
        """
        self._take()
        self._beat.start()

    def release(self) -> None:
        """Stop renewing and mark the lease released (the next run takes it at once)."""
        self._stop.set()
        self._beat.join()
        self._quietly(self.fs.pipe_file, self._path(self.generation), self._state(released=True))

    def _take(self) -> None:
        latest = self._latest()
        if latest is not None:
            generation, state = latest
            live = float(state.get("expires", 0)) > time.time() and not _dead_here(str(state.get("owner")))
            if not state.get("released") and live:
                raise LeaseHeld(str(state.get("owner")), float(state["expires"]))
            if not state.get("released"):
                log.warning(
                    "%s: taking over the expired lease of %s (a run that stopped without releasing it)",
                    self.folder.rsplit("/", 1)[-1],
                    state.get("owner"),
                )
            self.generation = generation + 1
        else:
            self.generation = 0
        if not self._create(self._path(self.generation), self._state(released=False)):
            # A retried put whose first attempt landed reports "exists" for our own lease: read it back.
            state = self._read(self.generation)
            if state.get("owner") != self.owner:
                raise LeaseHeld(str(state.get("owner")), float(state.get("expires", 0)))
        for older in range(max(0, self.generation - 2), self.generation):  # keep the folder small
            if self.fs.exists(self._path(older)):  # the one before it went with the previous holder
                self._quietly(self.fs.rm_file, self._path(older))

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self._quietly(self.fs.pipe_file, self._path(self.generation), self._state(released=False))

    # ------------------------------------------------------------------ storage
    def _path(self, generation: int) -> str:
        return f"{self.folder}/{_NAME.format(generation)}"

    def _state(self, *, released: bool) -> bytes:
        return json.dumps(
            {"owner": self.owner, "expires": time.time() + self.ttl, "released": released}
        ).encode()

    def _latest(self) -> tuple[int, dict[str, Any]] | None:
        try:
            names = self.fs.ls(self.folder, detail=False, refresh=True)
        except FileNotFoundError:
            return None
        generations = sorted(int(n.rsplit("/", 1)[-1][:-5]) for n in names if n.endswith(".json"))
        for generation in reversed(generations):
            try:
                return generation, self._read(generation)
            except FileNotFoundError:  # removed by a newer holder since the listing
                continue
        return None

    def _read(self, generation: int) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.fs.cat_file(self._path(generation)))
        return state

    def _create(self, path: str, data: bytes) -> bool:
        """Put-if-absent; False when the object exists."""
        if self.local:
            # A hard link is atomic and never exposes a half-written file (fsspec's local "create" is
            # check-then-write).
            self.fs.makedirs(self.folder, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as tmp:
                tmp.write(data)
            try:
                os.link(tmp.name, path)
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp.name)
        try:
            self.fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:
            return False

    def _quietly(self, action: Any, *args: Any) -> None:
        try:
            action(*args)
        except (OSError, ValueError) as exc:  # renewal and clean-up are retried at the next beat
            log.warning("lease %s: %s failed: %s", self.folder, action.__name__, type(exc).__name__)
