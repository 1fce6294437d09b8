"""Source-side setup and reads: preflight checks, publication, slot, the initial snapshot, the drain mark.

Every check runs before anything is created or read, so a misconfigured source fails with one line and
leaves the slot (and its acknowledged position) untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

from connectors.postgres_cdc._connect import CdcError, SetupError, SlotInUseError, explain, where
from connectors.postgres_cdc._pgoutput import ChangeBatch, Relation, position
from connectors.postgres_cdc.config import PostgresCdcConfig
from lakegate.columns import OP_READ

DRAIN_PREFIX = "lakegate.drain"
"""Prefix of the non-transactional WAL message that marks where a run stops."""


@dataclass(frozen=True)
class SlotState:
    """The slot as ``pg_replication_slots`` shows it (``None``: no such slot)."""

    active_pid: int | None
    confirmed_flush: int


def parse_lsn(text: str) -> int:
    """``'16/B374D848'`` -> integer LSN."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def preflight(conn: psycopg2.extensions.connection, config: PostgresCdcConfig) -> Relation:
    """Check wal_level, the table and its replica identity; return the table's current columns.

    Raises:
        SetupError: naming what is wrong and the fix.
    """
    at = f"postgres_cdc {where(conn.dsn)}"
    with conn.cursor() as cur:
        cur.execute("SHOW wal_level")
        level = cur.fetchone()[0]
        if level != "logical":
            raise SetupError(
                f"{at}: wal_level is '{level}', logical replication needs 'logical' "
                "(ALTER SYSTEM SET wal_level = logical, then restart the server)"
            )
        cur.execute(
            "SELECT c.oid, c.relreplident, c.relkind, EXISTS (SELECT 1 FROM pg_index i "
            "WHERE i.indrelid = c.oid AND i.indisprimary) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            (config.schema_name, config.table_name),
        )
        found = cur.fetchone()
        if found is None or found[2] not in ("r", "p"):
            raise SetupError(f"{at}: table {config.table} does not exist (config.table)")
        oid, identity, _, has_pk = found
        if identity == "n" or (identity == "d" and not has_pk):
            raise SetupError(
                f"{at}: table {config.table} has no primary key and replica identity "
                f"{'NOTHING' if identity == 'n' else 'DEFAULT'}: updates and deletes cannot be "
                f"replicated or merged; add a primary key or ALTER TABLE {config.table} REPLICA IDENTITY FULL"
            )
        cur.execute(
            "SELECT a.attname, a.atttypid, COALESCE(a.attnum = ANY(i.indkey), false) FROM pg_attribute a "
            "LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
            "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (oid,),
        )
        rows = cur.fetchall()
    return Relation(
        schema=config.schema_name,
        name=config.table_name,
        columns=[r[0] for r in rows],
        types=[int(r[1]) for r in rows],
        keys=[i for i, r in enumerate(rows) if r[2]],
    )


def ensure_publication(conn: psycopg2.extensions.connection, config: PostgresCdcConfig) -> None:
    """Create the publication for the table, or add the table to an existing one."""
    table = sql.Identifier(config.schema_name, config.table_name)
    pub = sql.Identifier(config.publication)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT puballtables FROM pg_publication WHERE pubname = %s", (config.publication,))
            found = cur.fetchone()
            if found is None:
                cur.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(pub, table))
                return
            cur.execute(
                "SELECT 1 FROM pg_publication_tables "
                "WHERE pubname = %s AND schemaname = %s AND tablename = %s",
                (config.publication, config.schema_name, config.table_name),
            )
            if cur.fetchone() is None:
                cur.execute(sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(pub, table))
    except psycopg2.Error as exc:
        raise explain(exc, conn.dsn, f"creating publication {config.publication}") from None


def slot_state(conn: psycopg2.extensions.connection, slot: str) -> SlotState | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT active_pid, confirmed_flush_lsn::text, plugin, database = current_database() "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        )
        found = cur.fetchone()
    if found is None:
        return None
    if found[2] != "pgoutput" or not found[3]:
        raise SetupError(
            f"replication slot {slot} belongs to another database or plug-in; choose config.slot"
        )
    return SlotState(active_pid=found[0], confirmed_flush=parse_lsn(found[1]))


def check_free(state: SlotState | None, slot: str, dsn: str) -> None:
    if state is not None and state.active_pid is not None:
        raise SlotInUseError(
            f"postgres_cdc {where(dsn)}: replication slot {slot} is in use by another consumer "
            f"(pid {state.active_pid}); nothing was read"
        )


def drop_slot(conn: psycopg2.extensions.connection, slot: str) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


def create_slot(repl: psycopg2.extras.LogicalReplicationConnection, slot: str) -> tuple[int, str]:
    """Create the slot exporting a snapshot; returns ``(consistent point, snapshot name)``.

    The snapshot stays importable only until the next command on ``repl``: read it before streaming.
    """
    try:
        with repl.cursor() as cur:
            cur.execute(f'CREATE_REPLICATION_SLOT "{slot}" LOGICAL pgoutput EXPORT_SNAPSHOT')
            _, point, snapshot, _ = cur.fetchone()
    except psycopg2.Error as exc:
        raise explain(exc, repl.dsn, f"creating replication slot {slot}") from None
    return parse_lsn(point), snapshot


def snapshot(
    conn: psycopg2.extensions.connection,
    config: PostgresCdcConfig,
    relation: Relation,
    snapshot_name: str,
    consistent_point: int,
) -> Iterator[ChangeBatch]:
    """The table as of the slot's start, in batches of ``r`` rows.

    Rows get the positions right below the consistent point's first change, so every streamed change
    (committed after that point) sorts after them.
    """
    columns = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in relation.columns)
    table = sql.Identifier(config.schema_name, config.table_name)
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot_name,))
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
            total = int(cur.fetchone()[0])
        first = position(consistent_point, 0) - total
        with conn.cursor(name="lakegate_snapshot") as cur:
            cur.itersize = config.batch_rows
            cur.execute(sql.SQL("SELECT {} FROM {}").format(columns, table))
            done = 0
            while rows := cur.fetchmany(config.batch_rows):
                batch = ChangeBatch(relation, config.source)
                batch.values = [list(values) for values in zip(*rows, strict=True)]
                batch.ops = [OP_READ] * len(rows)
                batch.positions = list(range(first + done, first + done + len(rows)))
                batch.committed = [None] * len(rows)
                batch.unchanged = [None] * len(rows)
                done += len(rows)
                yield batch
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        raise explain(exc, conn.dsn, f"reading the snapshot of {config.table}") from None
    finally:
        conn.autocommit = True


def drain_mark(conn: psycopg2.extensions.connection, slot: str) -> int:
    """Write the WAL message that marks the end of this run's drain; returns its LSN."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_logical_emit_message(false, %s, %s)::text", (DRAIN_PREFIX, slot))
            return parse_lsn(cur.fetchone()[0])
    except psycopg2.Error as exc:
        raise explain(exc, conn.dsn, "marking the end of the drain") from None


__all__ = ["CdcError"]
