"""Source positions: where an ordered source (an upstream table version, a Kafka offset, an LSN) stands,
committed as Delta app transactions in the same commit as the data they cover, so any machine resumes
from the zones and a replay is a no-op."""

from __future__ import annotations

from typing import Any, cast

import dlt
import polars as pl
import pyarrow.parquet as pq

from lakegate import columns as col
from zones._records import DatasetSpec
from zones.storage import Zone

_PACKAGE_KEY = "lakegate"


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


def package_position() -> tuple[str, int] | None:
    """The position :func:`record_position` recorded for the load package being loaded, if any."""
    found = _package_state().get(_PACKAGE_KEY, {}).get("position")
    return None if found is None else (str(found[0]), int(found[1]))
