"""Source positions: where an ordered source (an upstream table version, a Kafka offset, an LSN) stands,
and which source units (landing files) are ingested, committed as Delta app transactions in the same
commit as the data they cover, so any machine resumes from the zones and a replay is a no-op."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import dlt
import polars as pl
import pyarrow.parquet as pq
from deltalake import Transaction
from dlt.common.configuration.container import Container
from dlt.common.storages.load_package import LoadPackageStateInjectableContext, ParsedLoadJobFileName

from lakegate import columns as col
from lakegate.package import STATE_KEY, UNITS
from zones._records import DatasetSpec
from zones.storage import TableHandles, Zone

_PACKAGE_KEY = STATE_KEY


def record_position(app_id: str, version: int) -> None:
    """Call while extracting (inside a dlt resource): the package covers source position ``version`` of
    ``app_id`` (an offset, an LSN, an upstream table version). It travels with the load package and is
    committed with the commits of the package's last load job (:func:`package_transactions`), even when
    the package is loaded by a later run, so :func:`committed_position` tells where to resume."""
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


def committed_position(
    zone: Zone, dataset: DatasetSpec, app_id: str, tables: TableHandles | None = None
) -> int | None:
    """The last source position recorded under ``app_id`` in ``dataset``'s table of ``zone`` (read
    through ``tables`` when given, whose handle the run's later steps then share)."""
    if tables is None:
        table = zone.delta_table(dataset.domain, dataset.name)
    else:
        uri = zone.table_uri(dataset.domain, dataset.name)
        table = tables.current(uri, lambda: zone.delta_table(dataset.domain, dataset.name))
    return None if table is None else table.transaction_version(app_id)


def package_transactions(loaded_ahead: frozenset[str] = frozenset()) -> list[Transaction]:
    """The package-wide positions a data or quarantine commit carries, only on the package's **last**
    load job still to commit (dlt loads a package's jobs one at a time in no fixed order, so only then
    is every row they cover committed):

    - the position :func:`record_position` recorded (curate's raw version);
    - the units the connector recorded (:data:`lakegate.package.UNITS`).

    A package cut short by a crash leaves them unrecorded: its input is read again (curate merges by
    key; a landing file is ingested once more only if dlt's folder lost the package) unless dlt's folder
    still holds the package, which then completes. ``loaded_ahead`` names jobs already committed out of
    dlt's order (:func:`unloaded_earlier_jobs`), which no longer count as still to load.

    A unit's position is its commit day as ``YYYYMMDD`` (UTC; the files connector archives by it); an
    expiring one carries ``lastUpdated``, so table upkeep (``delta.setTransactionRetentionDuration``)
    forgets it once it left the time-travel window.
    """
    state = _package_state().get(_PACKAGE_KEY, {})
    units: dict[str, bool] = state.get(UNITS, {})
    if not (units or "position" in state) or not _last_job(loaded_ahead):
        return []
    txns = []
    if "position" in state:
        txns.append(Transaction(str(state["position"][0]), int(state["position"][1])))
    day, now_ms = int(datetime.now(UTC).strftime("%Y%m%d")), int(time.time() * 1000)
    txns += [
        Transaction(position_app_id(unit), day, last_updated=now_ms if expires else None)
        for unit, expires in sorted(units.items())
    ]
    return txns


def unloaded_earlier_jobs(path: Path, loaded_ahead: frozenset[str]) -> list[Path]:
    """The load files of ``path``'s package and table, not loaded yet, that hold earlier source
    positions than ``path``, in extraction order.

    An ordered source commits the highest position of each job's rows with them, so its jobs must commit
    in the order they were extracted: loaded out of order, a crash after a later job would leave the
    earlier one's rows behind a committed position — lost to a run without dlt's folder. The order comes
    from the rows' positions: the jobs of one package cover consecutive, disjoint ranges of each source.
    """
    ctx = Container()[LoadPackageStateInjectableContext]
    table = ParsedLoadJobFileName.parse(path.name).table_name
    files = ctx.storage.storage
    pending = [
        Path(files.make_full_path(rel))
        for rel in ctx.storage.list_new_jobs(ctx.load_id)
        if ParsedLoadJobFileName.parse(Path(rel).name).table_name == table
        and Path(rel).name not in loaded_ahead
        and Path(rel).name != path.name
    ]
    if not pending:
        return []
    mine = _lowest_positions(path)
    lowest = {job: _lowest_positions(job) for job in pending}
    earlier = [job for job in pending if _before(lowest[job], mine)]

    def order(a: Path, b: Path) -> int:
        return -1 if _before(lowest[a], lowest[b]) else 1

    return sorted(earlier, key=functools.cmp_to_key(order))


@functools.lru_cache(maxsize=1024)  # a load file never changes; each job asks about its pending siblings
def _lowest_positions(path: Path) -> dict[str, int]:
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    if col.SOURCE not in names or col.POSITION not in names:
        return {}
    table = pl.from_arrow(parquet.read(columns=[col.SOURCE, col.POSITION]))
    assert isinstance(table, pl.DataFrame)
    lowest = table.drop_nulls().group_by(col.SOURCE).agg(pl.col(col.POSITION).min())
    return {str(s): int(p) for s, p in lowest.iter_rows()}


def _before(a: dict[str, int], b: dict[str, int]) -> bool:
    """Whether a job whose sources start at ``a`` was extracted before one starting at ``b``."""
    common = sorted(a.keys() & b.keys())
    return bool(common) and a[common[0]] < b[common[0]]


def _last_job(loaded_ahead: frozenset[str]) -> bool:
    """Whether the load job being loaded is the last one of its package still to load (the loader runs
    one job at a time: ``max_parallel_load_jobs=1``; a job to retry goes back among the new ones)."""
    ctx = Container()[LoadPackageStateInjectableContext]
    new = [rel for rel in ctx.storage.list_new_jobs(ctx.load_id) if Path(rel).name not in loaded_ahead]
    return len(new) + len(ctx.storage.list_started_jobs(ctx.load_id)) <= 1
