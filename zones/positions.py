"""Source positions: where an ordered source (an upstream table version, a Kafka offset, an LSN) stands,
and which source units (landing files) are ingested, committed as Delta app transactions in the same
commit as the data they cover, so any machine resumes from the zones and a replay is a no-op."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

import dlt
import polars as pl
import pyarrow.parquet as pq
from deltalake import Transaction
from dlt.common.configuration.container import Container
from dlt.common.storages.load_package import LoadPackageStateInjectableContext

from lakegate import columns as col
from lakegate.package import STATE_KEY, UNITS
from zones._records import DatasetSpec
from zones.storage import Zone

_PACKAGE_KEY = STATE_KEY


def record_position(app_id: str, version: int) -> None:
    """Call while extracting (inside a dlt resource): the package covers source position ``version`` of
    ``app_id`` (an offset, an LSN, an upstream table version). It travels with the load package and is
    committed with the package's data and quarantine commits, even when the package is loaded by a later
    run, so :func:`committed_position` tells where to resume."""
    _package_state().setdefault(_PACKAGE_KEY, {})["position"] = [app_id, version]


def _package_state() -> dict[str, Any]:
    """The current load package's state, where lakegate keeps what travels with the package."""
    return cast(dict[str, Any], dlt.current.load_package_state()["state"])


def position_app_id(source: str) -> str:
    """The Delta app id under which the committed position of ``source`` (``_lakegate_source``) is kept."""
    return f"pos:{source}"


def source_positions(parquet: pq.ParquetFile) -> tuple[tuple[str, int], ...]:
    """``(source, highest position)`` of every source in a load file, rejected rows included (a
    quarantined record is consumed too)."""
    names = parquet.schema_arrow.names
    if col.SOURCE not in names or col.POSITION not in names:
        return ()
    table = pl.from_arrow(parquet.read(columns=[col.SOURCE, col.POSITION]))
    assert isinstance(table, pl.DataFrame)
    highest = table.drop_nulls().group_by(col.SOURCE).agg(pl.col(col.POSITION).max()).sort(col.SOURCE)
    return tuple((str(s), int(p)) for s, p in highest.iter_rows())


def committed_positions(zones: list[Zone], dataset: DatasetSpec, sources: list[str]) -> dict[str, int]:
    """The highest committed position of each of ``sources`` over ``zones`` (absent: never committed).

    Ordered connectors resume right after these: they live in the zones, so any machine resumes
    exactly, whatever its local working folder holds.
    """
    found: dict[str, int] = {}
    for zone in zones:
        table = zone.delta_table(dataset.domain, dataset.name)
        if table is None:
            continue
        for source in sources:
            version = table.transaction_version(position_app_id(source))
            if version is not None:
                found[source] = max(version, found.get(source, version))
    return found


def committed_position(zone: Zone, dataset: DatasetSpec, app_id: str) -> int | None:
    """The last source position recorded under ``app_id`` in ``dataset``'s table of ``zone``."""
    table = zone.delta_table(dataset.domain, dataset.name)
    return None if table is None else table.transaction_version(app_id)


def package_transactions() -> list[Transaction]:
    """The positions a data or quarantine commit of the package being loaded carries.

    - the position :func:`record_position` recorded (every load job of the package);
    - the units the connector recorded (:data:`lakegate.package.UNITS`), only on the package's **last**
      load job: dlt loads a package's jobs one at a time in no fixed order, so only then is every row
      of those units committed. A package cut short by a crash leaves its units unrecorded: they are
      read again (nothing lost) unless dlt's folder still holds the package, which then completes.

    A unit's position is its commit day as ``YYYYMMDD`` (UTC; the files connector archives by it); an
    expiring one carries ``lastUpdated``, so table upkeep (``delta.setTransactionRetentionDuration``)
    forgets it once it left the time-travel window.
    """
    state = _package_state().get(_PACKAGE_KEY, {})
    txns = []
    if "position" in state:
        txns.append(Transaction(str(state["position"][0]), int(state["position"][1])))
    units: dict[str, bool] = state.get(UNITS, {})
    if units and _last_job():
        day, now_ms = int(datetime.now(UTC).strftime("%Y%m%d")), int(time.time() * 1000)
        txns += [
            Transaction(position_app_id(unit), day, last_updated=now_ms if expires else None)
            for unit, expires in sorted(units.items())
        ]
    return txns


def _last_job() -> bool:
    """Whether the load job being loaded is the last one of its package still to load (the loader runs
    one job at a time: ``max_parallel_load_jobs=1``; a job to retry goes back among the new ones)."""
    ctx = Container()[LoadPackageStateInjectableContext]
    left = len(ctx.storage.list_new_jobs(ctx.load_id)) + len(ctx.storage.list_started_jobs(ctx.load_id))
    return left <= 1
