"""A merge by key of an in-memory batch done as a rewrite: only the files holding its keys are read and
rewritten.

Delta's merge (DataFusion) plans every merge whatever its size: ~1.2 ms per column, 48-51 ms for a
1,000-row batch into the 18-column curated table of ``benchmarks/curate_small.py`` (this: 32-35 ms), against
~8 ms for an append. It also interleaves the rows of the files it rewrites, so a table it merged into has
files with overlapping key ranges, and every later small merge reads more of them. A batch of integer keys
is merged here instead, with the same outcome:

1. the files whose key statistics can hold one of the batch's keys are read, two at a time, each against
   the batch rows within its key range;
2. a stored row whose key the batch holds is replaced when the batch row wins (``update``, and every
   ``newer`` column of the stored row null or not greater: Delta's ``s.c >= t.c`` guard), else the batch
   row is dropped; a null key matches nothing;
3. each file that lost rows is written again at once without them but with the batch rows replacing them
   (those of its partition: so it keeps its key range), and the batch's other rows are written as new files
   (``zones._staged``, with their statistics); memory holds the batch and the two files being rewritten;
4. one commit removes the old files and adds the new ones, carrying the job's app transactions, and
   refuses to commit over any commit made since the table was read (``max_commit_retries=0``). The
   caller then falls back to Delta's merge, which re-reads the table.

Anything else — change rows, a new or retyped column, keys without integer statistics, a table with
deletion vectors or writer features — returns ``None`` and goes to Delta's merge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import fsspec
import numpy as np
import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import RemoveAction
from fsspec.implementations.local import LocalFileSystem

from zones import _staged
from zones._staged import StagedFile

log = logging.getLogger("lakegate.zones.rewrite")

REWRITE_KEY = "lakegate.rewrite"
"""Commit-info field marking a merge done as a rewrite (its ``operation`` reads ``WRITE``); the commit's
``operationMetrics`` are named as Delta's merge names them."""

_ROW = "__lakegate_row"
_SOURCE_ROW = "__lakegate_source_row"
_SUFFIX = "__lakegate_source"

_WORKERS = 2
"""Stored files read and rewritten at a time: one file's read and match overlap another's write."""


@dataclass(frozen=True)
class _Stored:
    """One file of the table the rewrite reads, and its key columns' statistics (min, max)."""

    path: str
    size: int
    partition: str
    bounds: dict[str, tuple[int, int]]


@dataclass(frozen=True)
class _Outcome:
    """One stored file against the batch: the batch rows it keeps out (matched without winning), the batch
    rows written into its rewrite, the stored rows they replace (none: the file stays), and the rewrite
    (``None`` when nothing of the file is left)."""

    refused: pl.Series
    placed: pl.Series
    replaced: int
    staged: StagedFile | None


@dataclass(frozen=True)
class _Batch:
    """The batch as the rewrite matches it: its rows without the partition column, each row's partition
    value, and its key and ``newer`` columns with their row numbers."""

    rows: pl.DataFrame
    partitions: pl.Series
    source: pl.DataFrame


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
    stored = _stored_files(table, data, candidates, keys, partition_column)
    widened = _widened(_frame(data))
    if stored is None or widened is None:
        return None
    partitions = widened.get_column(partition_column).cast(pl.String)
    rows = widened.drop(partition_column)
    batch = _Batch(
        rows, partitions, rows.select(list(dict.fromkeys([*keys, *newer]))).with_row_index(_SOURCE_ROW)
    )
    fs, root = fsspec.core.url_to_fs(uri, **fs_options)
    staged: list[StagedFile] = []  # every file written, for the commit or for deletion
    try:
        outcomes = _rewritten(fs, root, stored, batch, keys, newer, partition_column, update, staged)
        if outcomes is None:
            _discard(fs, root, staged)
            return None
        written = _write_the_rest(fs, root, batch, outcomes, partition_column, staged)
        replaced = [file for file, outcome in zip(stored, outcomes, strict=True) if outcome.replaced]
        updated = sum(o.replaced for o in outcomes)
        metrics = {
            "num_source_rows": data.num_rows,
            "num_target_rows_inserted": written - updated,
            "num_target_rows_updated": updated,
            "num_target_files_removed": len(replaced),
            "num_target_files_added": len(staged),
        }
        _commit(uri, data, table, replaced, staged, metrics, partition_column, options, txns)
    except CommitFailedError:
        log.info("%s: a commit came first; merging with Delta's merge instead", uri)
        _discard(fs, root, staged)
        table.update_incremental()
        return None
    except Exception:
        _discard(fs, root, staged)
        raise
    log.debug("%s: merged by rewriting %d of its files", uri, len(replaced))
    return written


def _rewritten(
    fs: fsspec.AbstractFileSystem,
    root: str,
    stored: list[_Stored],
    batch: _Batch,
    keys: Sequence[str],
    newer: Sequence[str],
    partition_column: str,
    update: bool,
    staged: list[StagedFile],
) -> list[_Outcome] | None:
    """Each stored file matched against the batch and, when it lost rows, rewritten (added to ``staged``
    as soon as written); ``None`` when a value does not fit the other side's type (Delta's merge decides).
    """

    def one(file: _Stored) -> _Outcome | None:
        outcome = _rewrite_file(fs, root, file, batch, keys, newer, partition_column, update=update)
        if outcome is not None and outcome.staged is not None:
            staged.append(outcome.staged)
        return outcome

    if len(stored) == 1:
        outcomes = [one(stored[0])]
    else:
        with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="lakegate-rewrite") as pool:
            outcomes = list(pool.map(one, stored))
    return None if None in outcomes else [o for o in outcomes if o is not None]


def _rewrite_file(
    fs: fsspec.AbstractFileSystem,
    root: str,
    file: _Stored,
    batch: _Batch,
    keys: Sequence[str],
    newer: Sequence[str],
    partition_column: str,
    *,
    update: bool,
) -> _Outcome | None:
    rows = _conformed(_read(fs, f"{root}/{file.path}"), batch.rows.schema)
    if rows is None:
        return None
    within = pl.all_horizontal(pl.col(k).is_between(low, high) for k, (low, high) in file.bounds.items())
    replaced, refused, replacing = _matches(rows, batch.source.filter(within), keys, newer, update=update)
    if not len(replaced):
        return _Outcome(refused, replacing.clear(), 0, None)
    placed = replacing.filter(batch.partitions.gather(replacing) == file.partition)
    rewrite = pl.concat([rows.filter(_all_but(rows.height, replaced)), batch.rows[placed]])
    written = (
        _staged.stage_frame(fs, root, rewrite, partition_column, file.partition) if rewrite.height else None
    )
    return _Outcome(refused, placed, len(replaced), written)


def _write_the_rest(
    fs: fsspec.AbstractFileSystem,
    root: str,
    batch: _Batch,
    outcomes: list[_Outcome],
    partition_column: str,
    staged: list[StagedFile],
) -> int:
    """Write the batch rows no stored file took or kept out, a file per partition; the batch rows written."""
    left_out = [o.refused for o in outcomes] + [o.placed for o in outcomes]
    rest = _all_but(batch.rows.height, pl.concat(left_out) if left_out else pl.Series([], dtype=pl.UInt32))
    for value in batch.partitions.filter(rest).unique().sort().to_list():
        staged.append(
            _staged.stage_frame(
                fs, root, batch.rows.filter(rest & (batch.partitions == value)), partition_column, value
            )
        )
    return int(rest.sum()) + sum(len(o.placed) for o in outcomes)


def _commit(
    uri: str,
    data: pa.Table,
    table: DeltaTable,
    replaced: list[_Stored],
    staged: list[StagedFile],
    metrics: dict[str, int],
    partition_column: str,
    options: dict[str, str],
    txns: list[Transaction],
) -> None:
    """One commit removing the ``replaced`` files and adding ``staged``, with the operation metrics Delta's
    merge reports (a replayed job's audit reads them)."""
    now = int(time.time() * 1000)
    removed = [RemoveAction(f.path, True, now, f.size, {partition_column: f.partition}) for f in replaced]
    _staged.commit(
        uri,
        data.schema,
        staged,
        partition_column,
        options,
        txns,
        table=table,
        removed=removed,
        metadata={REWRITE_KEY: True, "operationMetrics": metrics},
    )


def _stored_files(
    table: DeltaTable, data: pa.Table, chosen: pl.DataFrame, keys: Sequence[str], partition_column: str
) -> list[_Stored] | None:
    """The ``chosen`` files to read, or ``None`` when the rewrite does not apply."""
    if not _plain_table(table) or not _same_columns(table, data):
        return None
    if data.column(partition_column).null_count:
        return None
    part = f"partition.{partition_column}"
    if part not in chosen.columns or chosen[part].null_count():
        return None
    bounds = chosen.select(pl.concat_list(f"min.{k}", f"max.{k}").alias(k) for k in keys)
    return [
        _Stored(unquote(path), size, str(value), {k: tuple(b) for k, b in zip(keys, ranges, strict=True)})
        for (path, size, value), ranges in zip(
            chosen.select("path", "size_bytes", part).iter_rows(), bounds.iter_rows(), strict=True
        )
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


def _read(fs: fsspec.AbstractFileSystem, path: str) -> pl.DataFrame:
    """A stored file, read by polars into its own strings (from Arrow they are copied: ~1 ms per 25k rows)."""
    if isinstance(fs, LocalFileSystem):
        return pl.read_parquet(path, hive_partitioning=False)
    with fs.open(path, "rb") as handle:
        return pl.read_parquet(handle, hive_partitioning=False)


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


def _discard(fs: fsspec.AbstractFileSystem, root: str, staged: list[StagedFile]) -> None:
    """Delete the files a rewrite wrote but will not commit."""
    for file in staged:
        fs.rm(f"{root}/{file.path}")


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
