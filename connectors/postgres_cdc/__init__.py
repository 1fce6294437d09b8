"""The ``postgres_cdc`` connector: one table from PostgreSQL's write-ahead log (pgoutput).

A run: check the source, create the publication and slot when missing, take the initial snapshot on the
first run (consistent with the slot's start), then stream changes up to a mark written into the WAL when
the run started (or ``max_changes`` / ``max_seconds``) and stop. The slot is acknowledged only up to the
position lakegate committed in the zone (``resume``), never further: a load that fails leaves the slot
where it was, and the next run gets the changes again and skips what the zone already holds.
See README.md for operations.
"""

from __future__ import annotations

import select
import struct
import time
from collections.abc import Iterator
from typing import Any

import dlt
import psycopg2
import psycopg2.extras
import pyarrow as pa
from dlt.extract import DltResource

from connectors import Connector, Kind
from connectors.postgres_cdc._connect import (
    CdcError,
    CredentialsError,
    SetupError,
    SlotInUseError,
    SourceUnreachableError,
    connect,
    connect_replication,
    explain,
    where,
)
from connectors.postgres_cdc._health import slot_health, source_rows, source_sample
from connectors.postgres_cdc._pgoutput import Decoder, lsn_of, position
from connectors.postgres_cdc._source import (
    DRAIN_PREFIX,
    check_free,
    create_slot,
    drain_mark,
    drop_slot,
    ensure_publication,
    format_lsn,
    preflight,
    slot_state,
    snapshot,
)
from connectors.postgres_cdc.config import PostgresCdcConfig, pipeline_defaults

__all__ = [
    "CdcError",
    "CredentialsError",
    "PostgresCdcConfig",
    "SetupError",
    "SlotInUseError",
    "SourceUnreachableError",
    "connector",
]

_MESSAGE = struct.Struct(">BQ")


def _changes(config: PostgresCdcConfig) -> Iterator[pa.Table]:
    state: dict[str, Any] = dlt.current.resource_state()
    committed = config.resume.get(config.source)  # the zone's record wins over the local dlt state
    after: int | None = committed if committed is not None else state.get("position")
    conn = connect(config.dsn)
    try:
        relation = preflight(conn, config)
        ensure_publication(conn, config)
        slot = slot_state(conn, config.slot)
        check_free(slot, config.slot, config.dsn)
        if after is not None and slot is None:
            raise SetupError(
                f"postgres_cdc {where(config.dsn)}: replication slot {config.slot} is gone but the zone "
                f"holds changes up to LSN {format_lsn(lsn_of(after))}; the changes since are lost to any "
                "new slot: "
                "drop the pipeline's raw and curated tables to start over with a fresh snapshot"
            )
        repl = connect_replication(config.dsn)
        try:
            if after is None:
                # Nothing of this slot ever reached the zone: start over with a slot and its snapshot.
                if slot is not None:
                    drop_slot(conn, config.slot)
                point, name = create_slot(repl, config.slot)
                for batch in snapshot(conn, config, relation, name, point):
                    state["position"] = batch.positions[-1]
                    yield batch.table()
                after = position(point, 0) - 1
            ack = lsn_of(committed) if committed is not None and slot is not None else None
            if ack is not None and ack <= slot.confirmed_flush:  # type: ignore[union-attr]
                ack = None  # never move the slot backwards
            yield from _stream(repl, config, after, drain_mark(conn, config.slot), ack, state)
        finally:
            repl.close()
    finally:
        conn.close()


def _stream(
    repl: psycopg2.extras.LogicalReplicationConnection,
    config: PostgresCdcConfig,
    after: int,
    until: int,
    ack: int | None,
    state: dict[str, Any],
) -> Iterator[pa.Table]:
    """Stream changes after position ``after`` until the drain mark at LSN ``until`` (or a bound)."""
    cur = repl.cursor()
    try:
        cur.start_replication(
            slot_name=config.slot,
            decode=False,
            options={"proto_version": "1", "publication_names": config.publication, "messages": "true"},
        )
        if ack is not None:  # what the zone committed: the server may drop the WAL before it
            cur.send_feedback(flush_lsn=ack, force=True)
    except psycopg2.Error as exc:
        raise explain(exc, repl.dsn, f"streaming from slot {config.slot}") from None
    decoder = Decoder(table=(config.schema_name, config.table_name), source=config.source, after=after)
    deadline = time.monotonic() + config.max_seconds
    mark = DRAIN_PREFIX.encode() + b"\0"
    feed, next_flush = decoder.feed, config.batch_rows
    try:
        while True:
            message = cur.read_message()
            if message is None:
                left = deadline - time.monotonic()
                if left <= 0 and not decoder.in_transaction:
                    break
                select.select([cur], [], [], max(min(left, 1.0), 0.05))
                continue
            payload: bytes = message.payload
            if payload[0] == 77:  # 'M': stop at our own drain mark
                _, lsn = _MESSAGE.unpack_from(payload, 1)
                if lsn >= until and payload[10:].startswith(mark) and payload.endswith(config.slot.encode()):
                    break
                continue
            feed(payload)
            if decoder.changes >= next_flush:
                decoder.close()
                next_flush = decoder.changes + config.batch_rows
            if decoder.full:
                for batch in decoder.full:
                    state["position"] = batch.positions[-1]
                    yield batch.table()
                decoder.full.clear()
            if payload[0] == 67 and (  # 'C': bounds are checked between transactions
                (config.max_changes and decoder.changes >= config.max_changes) or time.monotonic() > deadline
            ):
                break
    except psycopg2.Error as exc:
        raise explain(exc, repl.dsn, f"streaming from slot {config.slot}") from None
    decoder.close()
    for batch in decoder.full:
        state["position"] = batch.positions[-1]
        yield batch.table()


def postgres_cdc_resource(config: PostgresCdcConfig) -> DltResource:
    """The dlt resource streaming ``config.table``'s changes as Arrow tables."""

    @dlt.resource(name=config.table_name)
    def changes() -> Iterator[pa.Table]:
        yield from _changes(config)

    return changes


def _describe(config: PostgresCdcConfig) -> str:
    return f"{config.table} at {where(config.dsn)} (slot {config.slot})"


connector: Connector[PostgresCdcConfig] = Connector(
    name="postgres_cdc",
    kind=Kind.REPLICATION,
    config_model=PostgresCdcConfig,
    factory=postgres_cdc_resource,
    description="PostgreSQL log-based change data capture (pgoutput), one table per pipeline",
    kinds=frozenset({"postgres", "cdc"}),
    describe_source=_describe,
    positions=lambda config: [config.source],
    health=slot_health,
    source_rows=source_rows,
    source_sample=source_sample,
    pipeline_defaults=pipeline_defaults,
)
