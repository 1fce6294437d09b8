"""Zone storage: the Delta table of a dataset and the options every library needs to reach it.

One zone config yields both option dialects (deltalake/polars ``aws_*``/``google_*`` names and fsspec's
``key``/``secret``/``token``) through one table per URL scheme (``zones._stores.STORES``), so the two
never drift apart.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from zones._stores import STORES
from zones.config import LakegateConfig, Location, ZoneConfig, ZoneConfigError, ZoneName, load_config
from zones.errors import ZoneStorageError


@dataclass(frozen=True)
class Zone:
    """A zone opened for reading and writing."""

    name: ZoneName
    config: ZoneConfig

    @property
    def scheme(self) -> str:
        return self.config.scheme

    def table_uri(self, domain: str, dataset: str) -> str:
        """``<zone url>/<domain>/<dataset>``: the Delta table of one dataset."""
        return f"{self.config.url}/{domain}/{dataset}"

    def delta_options(self) -> dict[str, str]:
        """Storage options in deltalake/polars (object_store) naming."""
        return delta_options(self.config)

    def fsspec_options(self) -> dict[str, Any]:
        """Storage options in fsspec naming."""
        return fsspec_options(self.config)

    def delta_table(self, domain: str, dataset: str, version: int | None = None) -> DeltaTable | None:
        """The dataset's Delta table, or ``None`` when nothing was ever committed to it.

        Raises:
            ZoneStorageError: the zone's store did not answer (after the client's retries): one line
                naming the zone and its URL.
        """
        try:
            return DeltaTable(
                self.table_uri(domain, dataset), version=version, storage_options=self.delta_options()
            )
        except TableNotFoundError:
            return None
        except OSError as exc:
            raise ZoneStorageError(
                f"zone '{self.name.value}' at {self.config.url} cannot be reached: {_last_cause(exc)}"
            ) from exc

    def read(self, domain: str, dataset: str, version: int | None = None) -> pl.DataFrame:
        """Read a dataset (optionally as of a version); an empty frame when the table does not exist."""
        table = self.delta_table(domain, dataset, version)
        if table is None:
            return pl.DataFrame()
        return pl.read_delta(table)


class TableHandles:
    """The Delta tables one run has opened, by URI, so its steps share one handle per table.

    :meth:`current` brings a held handle up to date (``update_incremental`` reads only the log's commits
    since, anyone's, ~0.4 ms) where opening again would replay the log (2-6 ms on a table with a few
    hundred files and a dozen JSON commits): either way the caller sees the table as of now. A commit
    made through a handle may leave it where it was (a small merge's rewrite, see ``zones._delta``): a
    step sees the table again through :meth:`current`. :meth:`open_ahead` opens tables on a thread while
    the run does something else. For one run's steps one after the other, not for concurrent use.
    """

    def __init__(self) -> None:
        self._held: dict[str, DeltaTable] = {}
        self._opening: dict[str, Future[DeltaTable | None]] = {}

    def open_ahead(self, openers: dict[str, Callable[[], DeltaTable | None]]) -> None:
        """Start opening the tables at these URIs on a thread, one after the other; :meth:`current` waits
        for them (and raises what an opener raised). A run opens its target tables this way while it builds
        its dlt pipeline (Python): opening a table is mostly deltalake's Rust, which releases the GIL (the
        curated and quarantine tables of ``benchmarks/curate_small.py``: ~4 ms of ~5 hidden; an open on an
        object store is several requests). The thread is a daemon: a run that fails before it uses the
        tables (its zone unreachable, say) exits without waiting for the opens."""
        pending = {u: open_ for u, open_ in openers.items() if u not in self._held and u not in self._opening}
        futures: dict[str, Future[DeltaTable | None]] = {uri: Future() for uri in pending}
        self._opening.update(futures)

        def open_all() -> None:
            for uri, opener in pending.items():
                if futures[uri].set_running_or_notify_cancel():
                    try:
                        futures[uri].set_result(opener())
                    except BaseException as exc:  # handed to current(), which raises it
                        futures[uri].set_exception(exc)

        if pending:
            threading.Thread(target=open_all, name="lakegate-open", daemon=True).start()

    def current(self, uri: str, opener: Callable[[], DeltaTable | None]) -> DeltaTable | None:
        """The table at ``uri`` as of now; ``opener`` opens it when no handle is held (``None``: no
        table yet, nothing held)."""
        opening = self._opening.pop(uri, None)
        if opening is not None:
            table = opening.result()
            if table is not None:
                self._held[uri] = table
        table = self._held.get(uri)
        if table is not None:
            table.update_incremental()
            return table
        table = opener()
        if table is not None:
            self._held[uri] = table
        return table

    def held(self, uri: str) -> DeltaTable | None:
        """The handle held for ``uri`` as it stands (``None``: none)."""
        return self._held.get(uri)

    def forget(self) -> None:
        """Drop every handle (after a failure that may have left one anywhere): the next use opens afresh."""
        for opening in self._opening.values():
            opening.cancel()
        self._opening.clear()
        self._held.clear()


_CHAIN = re.compile(r"\x1b\[[0-9;]*m|↳")


def _last_cause(error: OSError) -> str:
    """The innermost cause in object_store's chained message (e.g. ``Connection refused (os error
    111)``): the request URLs and retry counts before it would only repeat the zone URL, and the store's
    credentials never appear in it (they travel in headers)."""
    parts = [" ".join(part.split()) for part in _CHAIN.split(str(error))]
    return next((part for part in reversed(parts) if part), type(error).__name__)[:200]


def open_zone(name: ZoneName | str, config: LakegateConfig | None = None) -> Zone:
    """Open zone ``name`` from ``config`` (default: :func:`zones.config.load_config`)."""
    config = config or load_config()
    zone_config = config.zone(name)  # raises ZoneConfigError listing the zones for an unknown name
    return Zone(ZoneName(name), zone_config)


def delta_options(location: Location) -> dict[str, str]:
    """Storage options of ``location`` in deltalake/polars (object_store) naming (see ``zones._stores``)."""
    return _store_options(location, delta=True)


def fsspec_options(location: Location) -> dict[str, Any]:
    """Storage options of ``location`` in fsspec (s3fs, gcsfs) naming (see ``zones._stores``)."""
    return _store_options(location, delta=False)


def _store_options(location: Location, *, delta: bool) -> dict[str, Any]:
    store = STORES[location.scheme]
    try:
        return (store.delta if delta else store.fsspec)(location.resolved_storage())
    except ValueError as exc:  # a malformed credential: named, never echoed
        raise ZoneConfigError(f"{location.url}: {exc}") from None
