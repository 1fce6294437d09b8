"""Describe a zone table for people and scripts (``lakegate table``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lakegate.columns import POSITION, RAW_TEXT, REASON, RULE, SOURCE
from pipelines.errors import TableRequestError
from zones import Zone, load_config, open_zone

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


def describe(
    zone_name: str, dataset: str, version: int | None = None, as_of: datetime | None = None
) -> dict[str, Any]:
    """Zone, dataset, URI, version, row count, schema and commit history of one table (optionally as of
    a version, or of the version current at time ``as_of``).

    Types are plain names (``string``, ``int64``, ``decimal(12,2)``, ``timestamp``); history times are
    ISO 8601 in UTC.

    Raises:
        TableRequestError: the dataset path is malformed, or the table or version does not exist (also
            at ``as_of``: the message names the first commit time).
        ZoneConfigError: the zone is unknown.
    """
    zone, table = _open(zone_name, dataset, version, as_of)
    domain, name = dataset.split("/")
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


def _open(
    zone_name: str, dataset: str, version: int | None = None, as_of: datetime | None = None
) -> tuple[Zone, DeltaTable]:
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
    if as_of is not None:
        _load_as_of(table, as_of, f"{zone_name}/{dataset}")
    return zone, table


def _load_as_of(table: DeltaTable, as_of: datetime, name: str) -> None:
    """Load the version current at ``as_of`` (naive: UTC); refuse a time before the first commit.

    Delta would silently load the first version for an earlier time, which is not what the table was.
    """
    when = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    first = min(entry["timestamp"] for entry in table.history())
    if when.timestamp() * 1000 < first:
        raise TableRequestError(
            f"{name} did not exist at {when.isoformat()}; its first commit is at {_iso(first)}"
        )
    table.load_as_version(when)


def rows(
    zone_name: str,
    dataset: str,
    *,
    head: int = 10,
    where: str | None = None,
    columns: list[str] | None = None,
    version: int | None = None,
    as_of: datetime | None = None,
) -> pl.DataFrame:
    """The first ``head`` rows of a zone table, optionally filtered by a SQL condition and projected.

    Only the rows shown are read (the filter and the limit are pushed into the Delta scan).

    Raises:
        TableRequestError: the table, a column or the condition is wrong (named, with the columns).
    """
    _, table = _open(zone_name, dataset, version, as_of)
    scan = pl.scan_delta(table)
    present = scan.collect_schema().names()
    if columns and (unknown := [c for c in columns if c not in present]):
        raise TableRequestError(
            f"--columns: {', '.join(unknown)} not in {zone_name}/{dataset}; columns: {', '.join(present)}"
        )
    try:
        if where:
            scan = scan.filter(pl.sql_expr(where))
        return scan.select(columns or present).head(head).collect()
    except (pl.exceptions.PolarsError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise TableRequestError(
            f"--where {where!r} cannot be applied to {zone_name}/{dataset} ({first}); "
            f"columns: {', '.join(present)}"
        ) from None


def quarantine_summary(dataset: str, samples: int = 3) -> list[dict[str, Any]]:
    """Quarantined records of ``dataset`` grouped by rule: count, and a few samples per rule.

    A sample shows the source, position, reason and the raw text as stored (already tokenized for
    datasets that declare PII, so plaintext never shows here), cut to 200 characters.
    """
    _, table = _open("quarantine", dataset)
    frame = (
        pl.scan_delta(table)
        .select(RULE, SOURCE, POSITION, REASON, RAW_TEXT)
        .with_columns(pl.col(RAW_TEXT).str.slice(0, 200))
        .collect()
    )
    summary = []
    for (rule,), group in sorted(frame.group_by(RULE), key=lambda g: (-g[1].height, str(g[0][0]))):
        shown = group.sort(POSITION, nulls_last=True).head(samples)
        summary.append(
            {
                "rule": rule,
                "records": group.height,
                "samples": [
                    {"source": r[SOURCE], "position": r[POSITION], "reason": r[REASON], "raw": r[RAW_TEXT]}
                    for r in shown.iter_rows(named=True)
                ],
            }
        )
    return summary
