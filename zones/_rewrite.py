"""A small merge by key done as a rewrite: only the files holding its keys are read and rewritten.

Delta's merge (DataFusion) plans every merge whatever its size: ~1.2 ms per column, 48-51 ms for a
1,000-row batch into the 18-column curated table of ``benchmarks/curate_small.py`` (this: 32-35 ms), against
~8 ms for an append. A batch whose keys fall in a few files is merged here instead, with the same outcome:

1. the files whose key statistics (integer keys) can hold one of the batch's keys are read;
2. a stored row whose key the batch holds is replaced when the batch row wins (``update``, and every
   ``newer`` column of the stored row null or not greater: Delta's ``s.c >= t.c`` guard), else the batch
   row is dropped; a null key matches nothing;
3. each file that lost rows is written again without them but with the batch rows replacing them (those
   of its partition: so it keeps its key range), and the batch's other rows are written as new files
   (``zones._staged``, with their statistics);
4. one commit removes the old files and adds the new ones, carrying the job's app transactions, and
   refuses to commit over any commit made since the table was read (``max_commit_retries=0``). The
   caller then falls back to Delta's merge, which re-reads the table.

Anything else — change rows, a new or retyped column, keys without integer statistics, more than
:data:`REWRITE_ROWS` stored rows to read, a table with deletion vectors or writer features — returns
``None`` and goes to Delta's merge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import fsspec
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import RemoveAction
from fsspec.implementations.local import LocalFileSystem

from lakegate.dictionary import dictionary_columns
from zones import _staged

log = logging.getLogger("lakegate.zones.rewrite")

REWRITE_ROWS = 250_000
"""Most stored rows a rewrite reads (the files its keys can be in); past it, Delta's merge, which streams
them. At the curated table's ~25k-row files, ten files: a clustered batch touches one or two."""

REWRITE_KEY = "lakegate.rewrite"
"""Commit-info field marking a merge done as a rewrite (its ``operation`` reads ``WRITE``); the commit's
``operationMetrics`` are named as Delta's merge names them."""

_ROW = "__lakegate_row"
_SOURCE_ROW = "__lakegate_source_row"
_SUFFIX = "__lakegate_source"


@dataclass(frozen=True)
class _Stored:
    """One file of the table the rewrite reads."""

    path: str
    size: int
    partition: str


def rewrite_merge(
    table: DeltaTable,
    uri: str,
    data: pa.Table,
    keys: Sequence[str],
    candidates: pl.DataFrame,
    partition_column: str,
    options: dict[str, str],
    fs_options: dict[str, Any],
    txns: list[Transaction],
    *,
    update: bool,
    newer: Sequence[str],
) -> int | None:
    """Merge ``data`` (one row per key) into ``table`` by rewriting the files holding its keys; the rows
    written, or ``None`` when the batch is not one for a rewrite or a commit came first (nothing changed).

    ``candidates``: the table's add actions (flattened) of the files whose statistics let them hold one
    of the batch's keys (:func:`possible_files`).

    A stored file keeps its key range: the batch rows replacing its rows in the same partition are written
    into its rewrite; the batch's other rows go to new files of their own.
    """
    stored = _stored_files(table, data, candidates, partition_column)
    if stored is None:
        return None
    fs, root = fsspec.core.url_to_fs(uri, **fs_options)
    plan = _plan(fs, root, stored, data, keys, newer, partition_column, update=update)
    if plan is None:
        return None
    coded = dictionary_columns(plan.files[0][1]) if plan.files else []
    staged = [
        _staged.stage_table(fs, root, rows.to_arrow(), partition_column, value, coded)
        for value, rows in plan.files
    ]
    now = int(time.time() * 1000)
    removed = [RemoveAction(f.path, True, now, f.size, {partition_column: f.partition}) for f in plan.removed]
    try:
        _staged.commit(
            uri,
            data.schema,
            staged,
            partition_column,
            options,
            txns,
            table=table,
            removed=removed,
            metadata={REWRITE_KEY: True, "operationMetrics": plan.metrics(data.num_rows, len(staged))},
        )
    except CommitFailedError:
        log.info("%s: a commit came first; merging with Delta's merge instead", uri)
        for file in staged:
            fs.rm(f"{root}/{file.path}")
        table.update_incremental()
        return None
    log.debug("%s: merged by rewriting %d of its files", uri, len(plan.removed))
    return plan.written


@dataclass(frozen=True)
class _Plan:
    """What a rewrite writes: the files (partition value and rows, without the partition column), the
    files it replaces, how many of the batch's rows it writes, and how many of those replace a stored row.
    """

    files: list[tuple[str, pl.DataFrame]]
    removed: list[_Stored]
    written: int
    updated: int

    def metrics(self, source_rows: int, files_added: int) -> dict[str, int]:
        """The commit's operation metrics, as Delta's merge reports them."""
        return {
            "num_source_rows": source_rows,
            "num_target_rows_inserted": self.written - self.updated,
            "num_target_rows_updated": self.updated,
            "num_target_files_removed": len(self.removed),
            "num_target_files_added": files_added,
        }


def _plan(
    fs: fsspec.AbstractFileSystem,
    root: str,
    stored: list[_Stored],
    data: pa.Table,
    keys: Sequence[str],
    newer: Sequence[str],
    partition_column: str,
    *,
    update: bool,
) -> _Plan | None:
    """Read the stored files and match them against the batch (``None``: a value does not fit the other
    side's type, so Delta's merge decides).

    In polars throughout: pyarrow's compute functions cost ~25 ms on their first call in a process, which
    nothing else of a small run makes.
    """
    batch = _widened(_frame(data))
    if batch is None:
        return None
    partitions = batch.get_column(partition_column).cast(pl.String)
    batch = batch.drop(partition_column)
    source = batch.select(list(dict.fromkeys([*keys, *newer]))).with_row_index(_SOURCE_ROW)
    refused: list[pl.Series] = []  # batch rows a stored row keeps out
    placed: list[pl.Series] = []  # batch rows written into a stored file's rewrite
    files: list[tuple[str, pl.DataFrame]] = []
    removed: list[_Stored] = []
    updated = 0
    for file in stored:
        # ParquetFile, not read_table: that imports pyarrow.dataset, and pandas with it (~0.2 s).
        read = pq.ParquetFile(_local_or_open(fs, f"{root}/{file.path}")).read()
        rows = _conformed(_frame(read), batch.schema)
        if rows is None:
            return None
        dropped, kept_out, replacing = _matches(rows, source, keys, newer, update=update)
        refused.append(kept_out)
        if not len(dropped):
            continue
        here = replacing.filter(partitions.gather(replacing) == file.partition)
        placed.append(here)
        removed.append(file)
        updated += len(dropped)
        kept = rows.filter(_all_but(rows.height, dropped))
        files.append((file.partition, pl.concat([kept, batch[here]])))
    left_out = pl.concat([*refused, *placed]) if refused or placed else pl.Series([], dtype=pl.UInt32)
    rest = _all_but(batch.height, left_out)
    for value in partitions.filter(rest).unique().sort().to_list():
        files.append((value, batch.filter(rest & (partitions == value))))
    written = int(rest.sum()) + sum(len(p) for p in placed)
    return _Plan([(v, rows) for v, rows in files if rows.height], removed, written, updated)


def _stored_files(
    table: DeltaTable, data: pa.Table, chosen: pl.DataFrame, partition_column: str
) -> list[_Stored] | None:
    """The ``chosen`` files to read, or ``None`` when the rewrite does not apply."""
    if not _plain_table(table) or not _same_columns(table, data):
        return None
    if data.column(partition_column).null_count:
        return None
    part = f"partition.{partition_column}"
    if chosen["num_records"].sum() > REWRITE_ROWS or part not in chosen.columns:
        return None
    if chosen[part].null_count():
        return None
    return [
        _Stored(unquote(path), size, str(value))
        for path, size, value in chosen.select("path", "size_bytes", part).iter_rows()
    ]


def possible_files(files: pl.DataFrame, data: pa.Table, keys: Sequence[str]) -> np.ndarray | None:
    """Per file of ``files`` (a table's flattened add actions), whether its statistics let it hold a key of
    ``data``; ``None`` unless every key column is an integer with min/max in every file."""
    possible = np.ones(files.height, dtype=bool)
    for key in keys:
        wanted = pl.Series(pl.from_arrow(data.column(key))).drop_nulls().unique().sort()
        low, high = f"min.{key}", f"max.{key}"
        if not wanted.dtype.is_integer() or low not in files.columns or high not in files.columns:
            return None
        bounds = files.select(pl.col(low, high).cast(pl.Int64, strict=False))
        as_int = wanted.cast(pl.Int64, strict=False)  # (an unsigned key past int64 becomes null: no answer)
        if bounds.null_count().sum_horizontal().item() or as_int.null_count():
            return None
        values = as_int.to_numpy()
        inside = np.searchsorted(values, bounds[high].to_numpy(), side="right") - np.searchsorted(
            values, bounds[low].to_numpy(), side="left"
        )
        possible &= inside > 0
    return possible


def _plain_table(table: DeltaTable) -> bool:
    """Whether the table's files are whole (no deletion vectors) and no writer feature asks more of a
    commit than its files (constraints, generated columns, append-only)."""
    protocol = table.protocol()
    configuration = table.metadata().configuration
    return (
        protocol.min_writer_version <= 2
        and not protocol.writer_features
        and not protocol.reader_features
        and not any(k.startswith("delta.constraints.") for k in configuration)
        and configuration.get("delta.appendOnly", "false").lower() != "true"
    )


def _same_columns(table: DeltaTable, data: pa.Table) -> bool:
    """Whether ``data`` has exactly the table's columns, of the same types (else: Delta's merge evolves the
    schema, or refuses)."""
    existing = pa.schema(table.schema().to_arrow())
    incoming = _staged.delta_schema(data.schema)
    if set(existing.names) != set(incoming.names):
        return False
    return all(_staged.same_delta_type(existing.field(f.name).type, f.type) for f in incoming)


def _local_or_open(fs: fsspec.AbstractFileSystem, path: str) -> Any:
    """A path pyarrow reads itself on the local disk; an open file elsewhere."""
    return path if isinstance(fs, LocalFileSystem) else fs.open(path, "rb")


def _matches(
    rows: pl.DataFrame, source: pl.DataFrame, keys: Sequence[str], newer: Sequence[str], *, update: bool
) -> tuple[pl.Series, pl.Series, pl.Series]:
    """One stored file's ``rows`` against the batch (``source``: its keys, ``newer`` columns and row
    numbers): the stored rows to drop, the batch rows kept out (matched without winning), and the batch
    rows replacing the dropped ones."""
    stored = rows.select(list(dict.fromkeys([*keys, *newer]))).with_row_index(_ROW)
    pairs = stored.join(source, on=list(keys), how="inner", suffix=_SUFFIX)  # null keys match nothing
    if not update:
        return pairs[_ROW].clear(), pairs[_SOURCE_ROW], pairs[_SOURCE_ROW].clear()
    wins = pl.lit(True)
    for column in newer:
        # Delta's guard, t.c IS NULL OR s.c >= t.c: a null in the batch never wins over a stored value.
        theirs = column if column in keys else f"{column}{_SUFFIX}"
        wins &= pl.col(column).is_null() | (pl.col(theirs) >= pl.col(column)).fill_null(False)
    judged = pairs.select(_ROW, _SOURCE_ROW, wins.alias("wins"))
    winners = judged.filter("wins")
    return winners[_ROW], judged.filter(~pl.col("wins"))[_SOURCE_ROW], winners[_SOURCE_ROW]


def _all_but(count: int, dropped: pl.Series) -> pl.Series:
    """A mask keeping every row but ``dropped``."""
    keep = np.ones(count, dtype=bool)
    keep[dropped.to_numpy()] = False
    return pl.Series(keep)


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


_SIGNED = {pl.UInt8: pl.Int16, pl.UInt16: pl.Int32, pl.UInt32: pl.Int64, pl.UInt64: pl.Int64}


def _widened(batch: pl.DataFrame) -> pl.DataFrame | None:
    """The batch with unsigned integers widened to signed ones, as Delta stores them (``zones._staged``);
    ``None`` when a value does not fit."""
    return _cast(batch, {n: _SIGNED.get(t, t) for n, t in batch.schema.items()})  # type: ignore[call-overload]


def _conformed(rows: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame | None:
    """A stored file's rows in the batch's columns and types (a column added after the file was written:
    nulls); ``None`` when a value does not fit."""
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in schema.items() if name not in rows.columns]
    return _cast(rows.with_columns(missing).select(schema.names()), dict(schema))


def _cast(frame: pl.DataFrame, types: dict[str, pl.DataType]) -> pl.DataFrame | None:
    try:
        return frame.cast(types)  # type: ignore[arg-type]
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
        return None
