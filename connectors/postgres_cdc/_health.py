"""Slot health and the source's row count, for the CDC checks (read-only: acknowledges nothing)."""

from __future__ import annotations

from psycopg2 import sql

from connectors.postgres_cdc._connect import SetupError, connect
from connectors.postgres_cdc.config import PostgresCdcConfig


def slot_health(config: PostgresCdcConfig) -> dict[str, int]:
    """The slot's lag (WAL written since its confirmed position, not yet acknowledged) and the WAL the
    server retains for it (from its restart position), in bytes.

    Raises:
        SetupError: the slot does not exist.
    """
    conn = connect(config.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, "
                "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                "FROM pg_replication_slots WHERE slot_name = %s",
                (config.slot,),
            )
            found = cur.fetchone()
    finally:
        conn.close()
    if found is None:
        raise SetupError(f"replication slot {config.slot} does not exist (no run yet, or it was dropped)")
    return {"slot_lag_bytes": int(found[0]), "retained_wal_bytes": int(found[1])}


def source_rows(config: PostgresCdcConfig) -> int:
    """``count(*)`` of the replicated table now."""
    conn = connect(config.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(config.schema_name, config.table_name)
                )
            )
            found = cur.fetchone()
    finally:
        conn.close()
    return int(found[0]) if found else 0
