"""Describe a zone table for people and scripts (``lakegate table``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
from deltalake.exceptions import DeltaError

from pipelines.errors import TableRequestError
from zones import load_config, open_zone

# Delta's primitive type names -> the names lakegate declares columns with.
_PLAIN = {
    "long": "int64",
    "integer": "int32",
    "short": "int16",
    "byte": "int8",
    "double": "float64",
    "float": "float32",
    "boolean": "bool",
}


def type_name(delta_type: Any) -> str:
    """A Delta type as a plain name: ``string``, ``int64``, ``decimal(12,2)``, ``timestamp``, ``list<..>``."""
    if hasattr(delta_type, "element_type"):
        return f"list<{type_name(delta_type.element_type)}>"
    if hasattr(delta_type, "key_type"):
        return f"map<{type_name(delta_type.key_type)},{type_name(delta_type.value_type)}>"
    if hasattr(delta_type, "fields"):
        return "struct<" + ",".join(f"{f.name}:{type_name(f.type)}" for f in delta_type.fields) + ">"
    kind = getattr(delta_type, "type", None)
    return _PLAIN.get(kind, kind) if isinstance(kind, str) else str(delta_type)


def _iso(millis: Any) -> str | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC).isoformat()


def describe(zone_name: str, dataset: str, version: int | None = None) -> dict[str, Any]:
    """Zone, dataset, URI, version, row count, schema and commit history of one table.

    Types are plain names (``string``, ``int64``, ``decimal(12,2)``, ``timestamp``); history times are
    ISO 8601 in UTC.

    Raises:
        TableRequestError: the dataset path is malformed, or the table or version does not exist.
        ZoneConfigError: the zone is unknown.
    """
    domain, sep, name = dataset.partition("/")
    if not sep or not domain or not name or "/" in name:
        raise TableRequestError(f"dataset '{dataset}' must be DOMAIN/DATASET, e.g. sales/orders")
    zone = open_zone(zone_name, load_config())
    try:
        table = zone.delta_table(domain, name, version=version)
    except DeltaError:
        latest = zone.delta_table(domain, name)
        newest = "no table" if latest is None else f"the latest is {latest.version()}"
        raise TableRequestError(f"{zone_name}/{dataset} has no version {version}; {newest}") from None
    if table is None:
        raise TableRequestError(
            f"no table {zone_name}/{dataset} at {zone.table_uri(domain, name)} (run its pipeline first)"
        )
    rows = pl.scan_delta(table).select(pl.len()).collect().item()
    return {
        "zone": zone.name.value,
        "dataset": dataset,
        "uri": zone.table_uri(domain, name),
        "version": table.version(),
        "rows": int(rows),
        "partition_columns": list(table.metadata().partition_columns),
        "schema": {f.name: type_name(f.type) for f in table.schema().fields},
        "history": [
            {
                "version": entry.get("version"),
                "timestamp": _iso(entry.get("timestamp")),
                "operation": entry.get("operation"),
                "operationMetrics": entry.get("operationMetrics"),
            }
            for entry in table.history()
        ],
    }
