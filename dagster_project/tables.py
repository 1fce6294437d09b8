"""Describe a zone table for people and scripts (``lakegate table``)."""

from __future__ import annotations

from typing import Any

import polars as pl
from deltalake.exceptions import DeltaError

from zones import load_config, open_zone


def describe(zone_name: str, dataset: str, version: int | None = None) -> dict[str, Any]:
    """Zone, dataset, URI, version, row count, schema and commit history of one table.

    Raises:
        ValueError: the zone or dataset path is malformed, or the table does not exist.
    """
    domain, sep, name = dataset.partition("/")
    if not sep or not domain or not name or "/" in name:
        raise ValueError(f"dataset '{dataset}' must be DOMAIN/DATASET, e.g. sales/orders")
    zone = open_zone(zone_name, load_config())
    try:
        table = zone.delta_table(domain, name, version=version)
    except DeltaError:
        latest = zone.delta_table(domain, name)
        newest = "no table" if latest is None else f"the latest is {latest.version()}"
        raise ValueError(f"{zone_name}/{dataset} has no version {version}; {newest}") from None
    if table is None:
        raise ValueError(
            f"no table {zone_name}/{dataset} at {zone.table_uri(domain, name)} (run its pipeline first)"
        )
    rows = pl.scan_delta(table).select(pl.len()).collect().item()
    return {
        "zone": zone.name.value,
        "dataset": dataset,
        "uri": zone.table_uri(domain, name),
        "version": table.version(),
        "rows": int(rows),
        "schema": {f.name: str(f.type) for f in table.schema().fields},
        "history": [
            {k: entry.get(k) for k in ("version", "timestamp", "operation", "operationMetrics")}
            for entry in table.history()
        ],
    }
