"""Audit log: one record per zone commit, kept as a Delta table inside the zone it describes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from zones._delta import TABLE_CONFIGURATION
from zones.storage import Zone

AUDIT_DATASET = "_lakegate/audit"


@dataclass(frozen=True)
class AuditRecord:
    """What one commit did. Never holds data values."""

    zone: str
    table: str
    operation: str
    rows: int
    version: int
    app_id: str
    txn_version: int
    pipeline: str
    run_id: str
    load_id: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def audit_uri(zone: Zone) -> str:
    """Where zone ``zone`` keeps its audit log."""
    return f"{zone.config.url}/{AUDIT_DATASET}"


def append_record(zone: Zone, log: str, entry: Any) -> None:
    """Append one record (a dataclass with an ``at`` timestamp) to the Delta log table ``<zone>/<log>``.

    The zone's audit log, its retention audit and the pii zone's rights log are such tables.
    """
    frame = pl.DataFrame([asdict(entry)]).with_columns(pl.col("at").dt.cast_time_unit("us"))
    uri = f"{zone.config.url}/{log}"
    write_deltalake(
        uri,
        frame.to_arrow(),
        mode="append",
        configuration=TABLE_CONFIGURATION,  # (when this record creates the log table)
        storage_options=zone.delta_options(),
    )


def read_records(zone: Zone, log: str) -> pl.DataFrame:
    """The Delta log table ``<zone>/<log>`` (empty when nothing was recorded yet)."""
    try:
        table = DeltaTable(f"{zone.config.url}/{log}", storage_options=zone.delta_options())
    except TableNotFoundError:
        return pl.DataFrame()
    return pl.read_delta(table)


def record(zone: Zone, entry: AuditRecord) -> None:
    """Append ``entry`` to the zone's audit log."""
    append_record(zone, AUDIT_DATASET, entry)


def read_audit(zone: Zone) -> pl.DataFrame:
    """The zone's audit log (empty when nothing was committed yet)."""
    return read_records(zone, AUDIT_DATASET)
