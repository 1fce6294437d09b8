"""Idempotent Delta commits: every commit carries a Delta app transaction ``(app_id, version)``.

A commit whose version is not above the one recorded for its ``app_id`` is a replay and is skipped, so
retried load jobs and replayed source positions change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.table import TableMerger
from deltalake.writer.properties import ColumnProperties

from lakegate import columns
from lakegate.dictionary import dictionary_columns
from zones import _rewrite, _staged

PARTITION_COLUMN = columns.INGEST_DATE

TABLE_CONFIGURATION = {"delta.checkpointInterval": "10"}
"""Every zone table lakegate creates: a log checkpoint every 10 commits (Delta's default: 100). Opening a
table replays the JSON commits since its last checkpoint, and a run opens each of its tables: measured
0.6 ms with 1 commit, 1.7 ms with 10, 4.7 ms with 30, 13-14 ms with 60-99 (a checkpoint of a 180-file
table takes ~3 ms to write)."""

MERGED_ROWS_PER_FILE = 25_000
"""Rows per file of a merged table's first write: a later merge rewrites the files holding its keys, so
their size bounds what a small merge costs (a backfill's rows arrive in key order, see ``zones._merge``).
Measured on the 5M-row curate benchmark: a 1,000-row merge rewriting one file took 0.07-0.2 s with ~35k-row
files, 0.3-0.5 s with ~70k and 0.6-0.8 s with 250k; Delta's merge of it, 41-43 ms with 10k-row files, 49-52
ms with 25k and 73-93 ms with 50k (the backfill's time alike; more files cost each table open ~1 ms per
100)."""

MERGED_TABLE_CONFIGURATION = {**TABLE_CONFIGURATION, "delta.targetFileSize": str(1536 * 1024)}
"""A merged table's own setting: Delta's merge writes the files it rewrites at about this size (default
100 MB), so a merge touching many files leaves files a later small merge can still skip: ~28k rows of the
curate benchmark in the merge's encoding (``_writer_properties``; 2 MiB made 57k-row files)."""

MAX_KEY_RANGES = 32
"""Key ranges a small merge names for Delta's file skipping (one range per cluster of its keys)."""


def open_table(uri: str, options: dict[str, str]) -> DeltaTable | None:
    """The Delta table at ``uri`` as of now, or ``None`` when nothing was ever committed to it.

    The commit functions below take such a handle (``table``) instead of opening the table again: a
    commit made through a handle leaves it at that commit, so the version and operation metrics are
    read from it. Opening replays the log (2-6 ms on a table with a few hundred files and a dozen JSON
    commits); ``DeltaTable.update_incremental`` brings a held handle up to date by reading only the
    commits made since (~0.4 ms), anyone's, so it sees what a fresh open would.
    """
    try:
        return DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        return None


def holds(table: DeltaTable | None, txn: Transaction) -> bool:
    """True when ``table`` records ``txn`` (or a later version of its app id): committing it is a replay."""
    if table is None:
        return False
    recorded = table.transaction_version(txn.app_id)
    return recorded is not None and recorded >= txn.version


def is_replay(uri: str, options: dict[str, str], txn: Transaction) -> bool:
    """True when ``txn`` (or a later version of its app id) is already committed to the table."""
    return holds(open_table(uri, options), txn)


def append(
    uri: str,
    data: pa.RecordBatchReader | pa.Table,
    options: dict[str, str],
    txns: list[Transaction],
    configuration: Mapping[str, str] | None = None,
    table: DeltaTable | None = None,
) -> Committed:
    """Append ``data`` (streamed when a reader) in one commit; returns what was committed.

    ``configuration`` sets the table's properties when this append creates it (default
    :data:`TABLE_CONFIGURATION`); ``table``: the table at ``uri`` already opened (see :func:`open_table`),
    committed through."""
    write_deltalake(
        uri if table is None else table,
        data,
        mode="append",
        partition_by=[PARTITION_COLUMN],
        configuration=configuration or TABLE_CONFIGURATION,
        schema_mode="merge",
        storage_options=options,
        commit_properties=CommitProperties(app_transactions=txns),
    )
    return _committed(DeltaTable(uri, storage_options=options) if table is None else table)


def append_stream(
    uri: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    options: dict[str, str],
    fs_options: dict[str, Any],
    txns: list[Transaction],
    rows_per_file: int = _staged.ROWS_PER_FILE,
    configuration: Mapping[str, str] | None = None,
    table: DeltaTable | None = None,
) -> Committed:
    """Append a stream of batches in bounded memory, as one commit (see ``zones._staged``);
    ``configuration`` sets the table's properties when this append creates it (default
    :data:`TABLE_CONFIGURATION`); ``table`` as for :func:`append`."""
    fs, root = fsspec.core.url_to_fs(uri, **fs_options)
    files = list(_staged.stage(fs, root, batches, PARTITION_COLUMN, rows_per_file))
    if not files:
        raise ValueError(f"{uri}: nothing to append")
    created = configuration or TABLE_CONFIGURATION
    _staged.commit(uri, schema, files, PARTITION_COLUMN, options, txns, created, table)
    return Committed(version=_version_after(uri, options, table), rows=sum(f.rows for f in files))


def adopt(
    uri: str,
    local_path: str,
    metadata: pq.FileMetaData,
    schema: pa.Schema,
    partition_value: str,
    options: dict[str, str],
    fs_options: dict[str, Any],
    txns: list[Transaction],
    table: DeltaTable | None = None,
) -> Committed:
    """Append an existing parquet file (without the partition column) as it is, in one commit;
    ``table`` as for :func:`append`."""
    fs, root = fsspec.core.url_to_fs(uri, **fs_options)
    staged = _staged.adopt(fs, root, local_path, metadata, PARTITION_COLUMN, partition_value)
    _staged.commit(uri, schema, [staged], PARTITION_COLUMN, options, txns, TABLE_CONFIGURATION, table)
    return Committed(version=_version_after(uri, options, table), rows=staged.rows)


def _version_after(uri: str, options: dict[str, str], table: DeltaTable | None) -> int:
    """The table's version after a commit made by ``create_write_transaction``, which leaves the handle
    it was made through where it was."""
    if table is None:
        return DeltaTable(uri, storage_options=options).version()
    table.update_incremental()
    return table.version()


def record_transactions(
    uri: str, options: dict[str, str], txns: list[Transaction], table: DeltaTable | None = None
) -> int:
    """Commit ``txns`` alone, no data, to the existing table at ``uri``; returns the new version.

    For positions that must ride on a commit of their load package when that commit already happened
    without them (the package's last job, replayed after its commit's answer was lost). ``table`` as for
    :func:`append`."""
    if table is None:
        table = DeltaTable(uri, storage_options=options)
    table.create_write_transaction(
        [],
        mode="append",
        schema=pa.schema(table.schema().to_arrow()),
        partition_by=table.metadata().partition_columns,
        commit_properties=CommitProperties(app_transactions=txns),
    )
    return _version_after(uri, options, table)


def upsert(
    uri: str,
    data: pa.Table | pa.RecordBatchReader,
    keys: Sequence[str],
    options: dict[str, str],
    txns: list[Transaction],
    *,
    update: bool = True,
    newer: Sequence[str] = (),
    truncated_at: int | None = None,
    fs_options: dict[str, Any] | None = None,
    table: DeltaTable | None = None,
) -> Committed:
    """Merge ``data`` (one row per key) by ``keys``: update matches (when ``update``) and insert the rest,
    in one commit.

    A table is merged from memory, and the merge predicate names the ranges its keys fall in (up to
    ``MAX_KEY_RANGES``, cut at the widest gaps), so Delta reads and rewrites only the target files whose
    key statistics overlap them; a reader is streamed (bounded memory, every target file read). Change
    rows (``_lakegate_op``) delete and truncate too; for a reader ``truncated_at`` is the position of its
    last truncate, if any. A batch whose keys no file can hold is an append; any other batch of integer
    keys is merged as a rewrite of the files holding them (``zones._rewrite``: the same outcome without
    Delta's merge planning, ~20 ms less, and each file keeps its key range). The first merge into a table
    is an append (staged in bounded memory, in files of ``MERGED_ROWS_PER_FILE`` rows, when a reader and
    ``fs_options`` are given). ``table``: the table at ``uri`` already opened and up to date (see
    :func:`open_table`); opened here when not given.
    """
    changes = columns.OP in data.schema.names
    if isinstance(data, pa.Table) and changes:
        truncates = data.filter(pc.equal(data.column(columns.OP), columns.OP_TRUNCATE)).column(
            columns.POSITION
        )
        truncated_at = pc.max(truncates).as_py() if len(truncates) else None
    if table is None:
        table = open_table(uri, options)
    if table is None:
        if changes:  # nothing to delete yet: keep only rows that hold a record
            data = _records_only(data)
        if isinstance(data, pa.RecordBatchReader) and fs_options is not None and not changes:
            return append_stream(
                uri,
                data.schema,
                data,
                options,
                fs_options,
                txns,
                rows_per_file=MERGED_ROWS_PER_FILE,
                configuration=MERGED_TABLE_CONFIGURATION,
            )
        return append(uri, data, options, txns, MERGED_TABLE_CONFIGURATION)
    if isinstance(data, pa.Table) and not changes and len(data):
        files = pl.DataFrame(table.get_add_actions(flatten=True))  # via the Arrow C interface, not pandas
        possible = _rewrite.possible_files(files, data, keys)
        if possible is not None and not possible.any():
            # No file's key statistics can hold a key of the batch (new keys past the stored ones, the
            # common case of an append-mostly source): an append, ~20 ms less than a merge touching nothing.
            return append(uri, data, options, txns, table=table)
        if possible is not None and fs_options is not None:
            candidates = files.filter(pl.Series(possible))
            rows = _rewrite.rewrite_merge(
                table, uri, data, keys, candidates, PARTITION_COLUMN, options, fs_options, txns,
                update=update, newer=newer,
            )  # fmt: skip
            if rows is not None:
                # It committed exactly onto the version read (see ``zones._staged.commit``); the handle
                # stays there (a run brings held handles up to date before it uses them again).
                return Committed(version=table.version() + 1, rows=rows)
    predicate = " AND ".join(f't."{k}" = s."{k}"' for k in keys)
    # A truncate deletes target rows outside the source's keys: then every file must be read.
    if isinstance(data, pa.Table) and truncated_at is None and (ranges := key_ranges(data, keys)):
        predicate = f"{predicate} AND ({ranges})"
    merger = table.merge(
        data,
        predicate=predicate,
        source_alias="s",
        target_alias="t",
        merge_schema=True,
        writer_properties=_writer_properties(data),
        streamed_exec=isinstance(data, pa.RecordBatchReader),
        commit_properties=CommitProperties(app_transactions=txns),
    )
    if changes:
        stored = {f.name for f in table.schema().fields}
        _merged(uri, options, _apply_changes(merger, data.schema.names, keys, stored, truncated_at).execute())
        return _committed(table)  # a merge leaves its handle at the version it committed
    if update:
        # With an ordering column, an older record arriving late never overwrites a newer one.
        guard = " AND ".join(f'(t."{c}" IS NULL OR s."{c}" >= t."{c}")' for c in newer) or None
        merger = merger.when_matched_update_all(predicate=guard)
    _merged(uri, options, merger.when_not_matched_insert_all().execute())
    return _committed(table)


def _merged(uri: str, options: dict[str, str], metrics: dict[str, Any]) -> None:
    """After Delta's merge: a checkpoint of the log when it rewrote many files."""
    _staged.checkpoint_if_wide(uri, options, int(metrics.get("num_target_files_removed", 0)))


def _writer_properties(data: pa.Table | pa.RecordBatchReader) -> WriterProperties:
    """The files a merge writes are encoded as ``zones._staged`` writes a table's first files: snappy, a
    dictionary only for text columns with few distinct values (a stream's text columns, unknown ahead:
    all of them). Delta's writer default dictionary-encodes every column: a 1,000-row merge rewriting one
    50k-row file of the curate benchmark took ~68 ms that way, ~45 ms this way, and wrote 12% less."""
    if isinstance(data, pa.Table):
        coded = dictionary_columns(data)
    else:
        text = (pa.string(), pa.large_string())
        coded = [f.name for f in data.schema if _staged.plain_type(f.type) in text]
    return WriterProperties(
        compression="SNAPPY",
        default_column_properties=ColumnProperties(dictionary_enabled=False),
        column_properties={name: ColumnProperties(dictionary_enabled=True) for name in coded},
    )


def key_ranges(data: pa.Table, keys: Sequence[str], limit: int = MAX_KEY_RANGES) -> str | None:
    """A predicate on the target's key that holds for every key of ``data``: up to ``limit`` ranges,
    cut at the widest gaps between its sorted integer keys (string keys: equal-count ranges).

    ``None`` for a composite key or another key type (Delta then prunes by the keys' overall min/max).
    """
    if len(keys) != 1 or not len(data):
        return None
    # polars, not pyarrow's to_numpy/as_py: those import pandas (~0.3 s the first time in a process).
    values = pl.Series(pl.from_arrow(data.column(keys[0]))).drop_nulls().unique().sort()
    if not len(values):
        return None
    literal: Callable[[Any], str]
    if values.dtype.is_integer():
        if not -(2**62) < values[0] <= values[-1] < 2**62:  # SQL literals stay int64
            return None
        gaps = values.cast(pl.Int64).diff().drop_nulls().to_numpy()
        widest = np.argsort(-gaps, kind="stable")
        cuts = widest[gaps[widest] > 1][: limit - 1] + 1  # after the widest gaps that skip a value
        literal = str
    elif values.dtype == pl.String:
        cuts = np.linspace(0, len(values), limit + 1, dtype=np.int64)[1:-1]
        literal = _quoted
    else:
        return None
    starts = np.unique(np.concatenate([[0], cuts.astype(np.int64)]))
    ends = np.append(starts[1:], len(values)) - 1
    column = f't."{keys[0]}"'
    bounds = values.to_list()
    return " OR ".join(
        f"{column} = {literal(bounds[lo])}"
        if lo == hi
        else f"({column} >= {literal(bounds[lo])} AND {column} <= {literal(bounds[hi])})"
        for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True)
    )


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _records_only(data: pa.Table | pa.RecordBatchReader) -> pa.Table | pa.RecordBatchReader:
    """``data`` without its delete and truncate rows."""
    gone = pa.array([columns.OP_DELETE, columns.OP_TRUNCATE])

    def kept(batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch.filter(pc.invert(pc.is_in(batch.column(columns.OP), gone)))

    if isinstance(data, pa.Table):
        return pa.Table.from_batches([kept(b) for b in data.to_batches()], data.schema)
    return pa.RecordBatchReader.from_batches(data.schema, (kept(b) for b in data))


def _apply_changes(
    merger: TableMerger, names: list[str], keys: Sequence[str], stored: set[str], truncated_at: int | None
) -> TableMerger:
    """Change rows (``_lakegate_op``, as ``transforms.cdc_apply`` leaves them) applied to a current-state
    table: deletes remove the key, a truncate removes every older row, and a change older than the stored
    row (by position) never wins. Columns listed as unchanged keep their stored value."""
    op, pos, unchanged = (f's."{c}"' for c in (columns.OP, columns.POSITION, columns.UNCHANGED))
    newer = f'(t."{columns.POSITION}" IS NULL OR {pos} >= t."{columns.POSITION}")'
    merger = merger.when_matched_delete(predicate=f"{op} = '{columns.OP_DELETE}' AND {newer}")
    if columns.UNCHANGED in names:
        updates = {
            c: f"CASE WHEN concat(',', {unchanged}, ',') LIKE '%,{c},%' THEN t.\"{c}\" ELSE s.\"{c}\" END"
            for c in names
            if c not in keys and c in stored
        }
        updates |= {c: f's."{c}"' for c in names if c not in stored}  # a column just added
        merger = merger.when_matched_update(updates, predicate=f"{op} <> '{columns.OP_DELETE}' AND {newer}")
    else:
        merger = merger.when_matched_update_all(predicate=f"{op} <> '{columns.OP_DELETE}' AND {newer}")
    skipped = f"('{columns.OP_DELETE}', '{columns.OP_TRUNCATE}')"
    merger = merger.when_not_matched_insert_all(predicate=f"{op} NOT IN {skipped}")
    if truncated_at is not None:
        merger = merger.when_not_matched_by_source_delete(
            predicate=f't."{columns.POSITION}" < {truncated_at}'
        )
    return merger


@dataclass(frozen=True)
class Committed:
    """What a commit did, from the Delta log's own operation metrics."""

    version: int
    rows: int


def _committed(table: DeltaTable) -> Committed:
    """The commit ``table`` stands at (a handle a commit was made through stands at that commit)."""
    entry = table.history(1)[0]
    return Committed(version=int(entry["version"]), rows=_metric_rows(entry) or 0)


def _metric_rows(entry: dict[str, Any]) -> int | None:
    """Rows a commit wrote, from its operation metrics (``None`` when it has none: staged commits)."""
    metrics = entry.get("operationMetrics", {})
    if "num_added_rows" in metrics:
        return int(metrics["num_added_rows"])
    if "num_target_rows_inserted" in metrics:  # a merge reports what it inserted and updated
        return int(metrics["num_target_rows_inserted"]) + int(metrics.get("num_target_rows_updated", 0))
    return None


def _live_rows(uri: str, options: dict[str, str], version: int) -> int:
    """Rows in the table's files at ``version`` (0 before the first version)."""
    if version < 0:
        return 0
    actions = pl.DataFrame(  # the log's arro3 table, via the Arrow C interface (pa.table imports pandas)
        DeltaTable(uri, version=version, storage_options=options).get_add_actions(flatten=True)
    )
    return int(actions.get_column("num_records").sum() or 0)


def committed_by(uri: str, options: dict[str, str], txn: Transaction) -> Committed | None:
    """The commit that recorded ``txn`` (``None`` when the table does not hold it).

    Walks the log back from the newest version to the first one that records ``txn``: replays are
    found near the end of the log, so this reads a few versions.
    """
    table = open_table(uri, options)
    if table is None or (table.transaction_version(txn.app_id) or -1) < txn.version:
        return None
    for entry in table.history():  # newest first
        version = int(entry["version"])
        before = (
            DeltaTable(uri, version=version - 1, storage_options=options).transaction_version(txn.app_id)
            if version
            else None
        )
        if before is None or before < txn.version:
            rows = _metric_rows(entry)
            if rows is None:  # a staged append: the rows it added are the rows the table grew by
                rows = _live_rows(uri, options, version) - _live_rows(uri, options, version - 1)
            return Committed(version=version, rows=rows)
    return None
