"""Audit log: one record per zone commit, kept as a Delta table inside the zone it describes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

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


def record(zone: Zone, entry: AuditRecord) -> None:
    """Append ``entry`` to the zone's audit log."""
    frame = pl.DataFrame([asdict(entry)]).with_columns(pl.col("at").dt.cast_time_unit("us"))
    write_deltalake(audit_uri(zone), frame.to_arrow(), mode="append", storage_options=zone.delta_options())


def read_audit(zone: Zone) -> pl.DataFrame:
    """The zone's audit log (empty when nothing was committed yet)."""
    try:
        table = DeltaTable(audit_uri(zone), storage_options=zone.delta_options())
    except TableNotFoundError:
        return pl.DataFrame()
    return pl.read_delta(table)
