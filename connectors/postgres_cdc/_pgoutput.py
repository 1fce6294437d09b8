"""A pgoutput (protocol 1) decoder that collects changes column by column into Arrow tables.

Positions: each change's ``_lakegate_position`` is ``commit LSN << 16 | index in its transaction``
(snapshot rows sit just below the slot's consistent point). Changes arrive in commit order, so positions
increase along the stream and the highest committed one says exactly where to resume, even inside a
transaction. An int64 holds this while the server's LSN is below 2**47 (128 TiB of WAL); a transaction of
more than 65,536 changes borrows indexes from the following LSNs, which are never another commit's unless
that transaction exceeds ~1.5 million changes (a commit record takes at least 24 bytes of WAL).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from connectors.postgres_cdc._arrow import column
from connectors.postgres_cdc._connect import SetupError
from lakegate.columns import (
    COMMITTED_AT,
    OP,
    OP_DELETE,
    OP_INSERT,
    OP_TRUNCATE,
    OP_UPDATE,
    POSITION,
    SOURCE,
    UNCHANGED,
)

SHIFT = 16
MAX_LSN = (1 << (63 - SHIFT)) - 1
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_BEGIN = struct.Struct(">QqI")
_COMMIT = struct.Struct(">BQQq")
_I32 = struct.Struct(">I")
_I16 = struct.Struct(">H")
_UNCHANGED = object()  # pgoutput's 'u': an unchanged TOAST value that was not resent


def position(lsn: int, index: int) -> int:
    """The position of change ``index`` of the transaction committing at ``lsn``."""
    if lsn > MAX_LSN:
        raise SetupError(f"LSN {lsn:X} is beyond what an int64 position can hold (see the connector README)")
    return (lsn << SHIFT) + index


def lsn_of(position_: int) -> int:
    """The commit LSN a position belongs to."""
    return position_ >> SHIFT


@dataclass
class Relation:
    """A table as the latest Relation message describes it."""

    schema: str
    name: str
    columns: list[str]
    types: list[int]
    keys: list[int]


def _string(buf: bytes, off: int) -> tuple[str, int]:
    end = buf.index(0, off)
    return buf[off:end].decode(), end + 1


def _tuple(buf: bytes, off: int) -> tuple[list[object], int]:
    (count,) = _I16.unpack_from(buf, off)
    off += 2
    values: list[object] = []
    append = values.append
    for _ in range(count):
        kind = buf[off]
        off += 1
        if kind == 116:  # 't': text
            (size,) = _I32.unpack_from(buf, off)
            off += 4
            append(buf[off : off + size].decode())
            off += size
        elif kind == 110:  # 'n': null
            append(None)
        elif kind == 117:  # 'u': unchanged TOAST
            append(_UNCHANGED)
        else:
            raise SetupError(f"pgoutput: unexpected tuple value kind {chr(kind)!r}")
    return values, off


@dataclass
class ChangeBatch:
    """Changes of one table layout, column by column."""

    relation: Relation
    source: str
    values: list[list[object]] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    committed: list[datetime | None] = field(default_factory=list)
    unchanged: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = [[] for _ in self.relation.columns]

    def __len__(self) -> int:
        return len(self.ops)

    def add(self, op: str, pos: int, at: datetime | None, row: Sequence[object]) -> None:
        missing: list[str] = []
        for name, values, value in zip(self.relation.columns, self.values, row, strict=True):
            if value is _UNCHANGED:
                missing.append(name)
                value = None
            values.append(value)
        self.ops.append(op)
        self.positions.append(pos)
        self.committed.append(at)
        self.unchanged.append(",".join(missing) if missing else None)

    def table(self) -> pa.Table:
        """The batch as an Arrow table (data columns typed, then the reserved columns)."""
        arrays = [
            column(values, type_oid)  # type: ignore[arg-type]  # _UNCHANGED was replaced by None
            for values, type_oid in zip(self.values, self.relation.types, strict=True)
        ]
        reserved = {
            OP: pa.array(self.ops, pa.string()),
            COMMITTED_AT: pa.array(self.committed, pa.timestamp("us", "UTC")),
            UNCHANGED: pa.array(self.unchanged, pa.string()),
            SOURCE: pa.array([self.source] * len(self.ops), pa.string()),
            POSITION: pa.array(self.positions, pa.int64()),
        }
        return pa.table([*arrays, *reserved.values()], names=[*self.relation.columns, *reserved])


@dataclass
class Decoder:
    """Feeds pgoutput messages of one table into :class:`ChangeBatch` es.

    Attributes:
        table: ``(schema, name)`` of the replicated table; changes of other relations are ignored.
        after: Skip changes at or below this position (already committed in the zone).
        full: Batches ready to be yielded (a layout change closes the current one).
    """

    table: tuple[str, str]
    source: str
    after: int
    relations: dict[int, Relation] = field(default_factory=dict)
    batch: ChangeBatch | None = None
    batch_oid: int = -1
    full: list[ChangeBatch] = field(default_factory=list)
    commit_lsn: int = 0
    base: int = 0
    commit_at: datetime | None = None
    index: int = 0
    in_transaction: bool = False
    changes: int = 0
    last_position: int | None = None

    def feed(self, buf: bytes) -> None:
        """Decode one message."""
        kind = buf[0]
        if kind == 66:  # 'B'
            self.commit_lsn, micros, _ = _BEGIN.unpack_from(buf, 1)
            self.commit_at = _PG_EPOCH + timedelta(microseconds=micros)
            self.base = position(self.commit_lsn, 0)
            self.index = 0
            self.in_transaction = True
        elif kind == 67:  # 'C'
            self.in_transaction = False
        elif kind == 73:  # 'I'
            self._change(OP_INSERT, buf, new_at=5)
        elif kind == 85:  # 'U'
            self._update(buf)
        elif kind == 68:  # 'D'
            self._change(OP_DELETE, buf, new_at=5)
        elif kind == 82:  # 'R'
            self._relation(buf)
        elif kind == 84:  # 'T'
            self._truncate(buf)
        # 'O' origin, 'Y' type, 'M' message: nothing to store

    def _relation(self, buf: bytes) -> None:
        (oid,) = _I32.unpack_from(buf, 1)
        schema, off = _string(buf, 5)
        name, off = _string(buf, off)
        off += 1  # replica identity setting
        (count,) = _I16.unpack_from(buf, off)
        off += 2
        columns, types, keys = [], [], []
        for i in range(count):
            flags = buf[off]
            col, off = _string(buf, off + 1)
            (type_oid,) = _I32.unpack_from(buf, off)
            off += 8  # type oid, type modifier
            columns.append(col)
            types.append(type_oid)
            if flags & 1:
                keys.append(i)
        relation = Relation(schema, name, columns, types, keys)
        self.relations[oid] = relation
        if (schema, name) == self.table and self.batch is not None and self.batch.relation != relation:
            self.close()  # an added or dropped column: the next changes get a table of their own

    def _target(self, oid: int) -> ChangeBatch | None:
        if self.batch is not None and oid == self.batch_oid:
            return self.batch
        relation = self.relations[oid]
        if (relation.schema, relation.name) != self.table:
            return None
        if self.batch is None:
            self.batch = ChangeBatch(relation, self.source)
        self.batch_oid = oid
        return self.batch

    def _next_position(self) -> int | None:
        """The next change's position, or ``None`` when the zone already holds it."""
        pos = self.base + self.index
        self.index += 1
        if pos <= self.after:
            return None
        if self.last_position is not None and pos <= self.last_position:
            raise SetupError(
                f"pgoutput: position {pos} does not increase (a transaction of more than ~1.5M changes "
                "right before another commit); see the connector README"
            )
        self.last_position = pos
        return pos

    def _add(self, batch: ChangeBatch, op: str, row: Sequence[object]) -> None:
        pos = self._next_position()
        if pos is not None:
            batch.add(op, pos, self.commit_at, row)
            self.changes += 1

    def _change(self, op: str, buf: bytes, new_at: int) -> None:
        (oid,) = _I32.unpack_from(buf, 1)
        batch = self._target(oid)
        if batch is None:
            return
        row, _ = _tuple(buf, new_at + 1)  # skip the 'N' / 'K' / 'O' marker
        self._add(batch, op, row)

    def _update(self, buf: bytes) -> None:
        (oid,) = _I32.unpack_from(buf, 1)
        batch = self._target(oid)
        if batch is None:
            return
        off = 5
        old: list[object] | None = None
        if buf[off] in (75, 79):  # 'K' key changed / 'O' replica identity full: the old row
            old, off = _tuple(buf, off + 1)
        new, _ = _tuple(buf, off + 1)
        if old is not None:
            keys = batch.relation.keys
            if any(old[k] != new[k] for k in keys):  # the key moved: the old key's row is gone
                self._add(batch, OP_DELETE, old)
            # With REPLICA IDENTITY FULL the old row holds the TOAST values the new one leaves out.
            new = [o if n is _UNCHANGED and o is not _UNCHANGED else n for o, n in zip(old, new, strict=True)]
        self._add(batch, OP_UPDATE, new)

    def _truncate(self, buf: bytes) -> None:
        (count,) = _I32.unpack_from(buf, 1)
        for i in range(count):
            (oid,) = _I32.unpack_from(buf, 6 + 4 * i)
            batch = self._target(oid)
            if batch is not None:
                self._add(batch, OP_TRUNCATE, [None] * len(batch.relation.columns))

    def close(self) -> None:
        """Move the current batch (if any rows) to ``full``."""
        if self.batch is not None and len(self.batch):
            self.full.append(self.batch)
        self.batch = None
        self.batch_oid = -1
