"""Slot health, the source's row count and sampled rows, for the CDC checks (read-only: acknowledges
nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def source_sample(
    config: PostgresCdcConfig, key: Sequence[str], keys: Sequence[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """The rows of the replicated table whose ``key`` columns hold one of ``keys``, now."""
    if not keys:
        return []
    query = sql.SQL("SELECT * FROM {} WHERE ({}) IN %s").format(
        sql.Identifier(config.schema_name, config.table_name), sql.SQL(", ").join(map(sql.Identifier, key))
    )
    conn = connect(config.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query, (tuple(tuple(k) for k in keys),))
            names = [d.name for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()
