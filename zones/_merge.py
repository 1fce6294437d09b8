"""A load job merged by key in bounded memory: at most one batch of rows plus the keys of the job.

A Delta merge needs one source row per key, and the latest one. The job is therefore read once and its
rows handled in two passes:
1. every batch goes through the write-path rules; its good rows are spilled to a local Arrow file (a
   *run*, sorted by key when the key is a single orderable column without change rows) and only their
   key, ordering and change columns are kept in memory, with each row's index in the job; from these the
   surviving row of every key is chosen (the latest by ``order_by``, then arrival — as a merge by key
   always did — and, for change rows, nothing from before the job's last truncate);
2. the runs are read back and stream into one merge commit, keeping the surviving rows; the others
   become quarantine records.

So later rows of the job win across batches, deletes and truncates apply, and the merge is one commit
carrying the job's idempotency key, however large the job is. The load file is decoded and the rules
applied once (measured on the 5M-row curate benchmark, reading and splitting it a second time cost ~2 CPU s).

A job larger than one bucket (``BUCKET_BATCHES`` batches) with a single-column key and no change rows
streams its surviving rows in key order: the sorted keys of pass 1 are cut into key ranges, and for each
range pass 2 reads the slice of every run that falls in it (runs are sorted, so a slice is contiguous),
sorts them together and yields them. A backfill therefore writes curated files that each hold a narrow key
range, so the file statistics let a later small merge skip every file its keys cannot be in (see
``zones._delta.upsert``). Runs are read into memory, never mapped (mapped pages would count towards the
process's resident memory), and their folder is removed when the stream ends or the job is dropped.
"""

from __future__ import annotations

import shutil
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from lakegate import columns as col
from zones._records import DatasetSpec, Lineage, SplitBatch, quarantine_rows, stamp
from zones._spill import spill_folder

Split = Callable[[pa.RecordBatch], SplitBatch]

_SUPERSEDED = "superseded by a later record with the same key"
_TRUNCATED = "superseded by a later truncate of the table"

BUCKET_BATCHES = 2
"""Rows of one key range sorted at a time, in read batches: bounds memory like a batch."""

_OPEN_RUNS = 256
"""Runs whose files stay open while pass 2 reads them."""

_SPILL_CHUNK = 8_192
"""Rows per record batch of a run: a key range's slice is read with at most one chunk more at each end."""


@dataclass
class _Run:
    """One batch's good rows spilled to ``path``; ``cuts``: where each key range starts in it."""

    path: Path
    rows: int
    cuts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class KeyedJob:
    """The plan of one job's merge (pass 1); :meth:`rows` streams the surviving rows (pass 2).

    Attributes:
        keep: Per input row of the job, whether it is the one merged for its key.
        survivors: How many rows survive.
        columns: An empty frame with the union of the batches' columns and types.
        schema: The schema of the streamed batches (``columns`` with the lineage columns).
        truncated_at: Position of the job's last truncate (change rows only), for the merge.
        rejected: Quarantine records of the write-path rules (pass 1) and, after :meth:`rows`, of the
            superseded rows.
        bounds: The first key of every key range but the first when the surviving rows are streamed in
            key order (empty: streamed in arrival order).
        runs: The good rows of each batch, spilled (see the module doc).
        spill: The runs' folder, removed once :meth:`rows` is done.
    """

    keep: np.ndarray
    survivors: int
    columns: pl.DataFrame
    schema: pa.Schema
    truncated_at: int | None
    rejected: list[pl.DataFrame]
    bounds: pl.Series = field(default_factory=pl.Series)
    runs: list[_Run] = field(default_factory=list)
    spill: Path | None = None


def plan(
    parquet: pq.ParquetFile, spec: DatasetSpec, split: Split, batch_rows: int, lineage: Lineage
) -> KeyedJob:
    """Pass 1: split every batch, spill its good rows, keep only what decides which row of each key
    survives. A failure on the way removes what was spilled."""
    spilled: list[Path] = []
    try:
        return _plan(parquet, spec, split, batch_rows, lineage, spilled)
    except BaseException:
        for folder in spilled:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _plan(
    parquet: pq.ParquetFile,
    spec: DatasetSpec,
    split: Split,
    batch_rows: int,
    lineage: Lineage,
    spilled: list[Path],
) -> KeyedJob:
    keys: list[pl.DataFrame] = []
    rejected: list[pl.DataFrame] = []
    schemas: list[pl.DataFrame] = []
    runs: list[_Run] = []
    folder: Path | None = None
    for good, bad in _split(parquet, split, batch_rows):
        rejected.extend([bad] if bad.height else [])
        if good.height:
            changes = [col.OP, col.POSITION] if col.OP in good.columns else []
            if _orderable(good, spec):
                good = good.sort(spec.primary_key[0], maintain_order=True)
            wanted = [col.ROW_ID, *spec.primary_key, *spec.order_by, *changes]
            keys.append(good.select([c for c in dict.fromkeys(wanted) if c in good.columns]))
            schemas.append(good.clear())
            if folder is None:
                folder = spill_folder()
                spilled.append(folder)
            runs.append(_spill(good, folder / f"{len(runs)}.arrow"))
    keep = np.zeros(parquet.metadata.num_rows, dtype=bool)
    if not keys:
        return KeyedJob(keep, 0, pl.DataFrame(), pa.schema([]), None, rejected)
    frame = pl.concat(keys, how="diagonal_relaxed")
    truncated_at = None
    if col.OP in frame.columns:
        truncates = frame.filter(pl.col(col.OP) == col.OP_TRUNCATE)
        if truncates.height:
            last = truncates.select(pl.col(col.ROW_ID).max(), pl.col(col.POSITION).max()).row(0)
            frame = frame.filter(pl.col(col.ROW_ID) >= last[0])
            truncated_at = None if last[1] is None else int(last[1])
    frame = _latest(frame, spec)
    keep[frame[col.ROW_ID].to_numpy()] = True
    bounds = pl.Series()
    if all(_orderable(k, spec) for k in keys) and len({k[spec.primary_key[0]].dtype for k in keys}) == 1:
        bounds = _bounds(frame, spec, batch_rows * BUCKET_BATCHES)
        for run, run_keys in zip(runs, keys, strict=True):  # each run is sorted by the key
            run.cuts = run_keys[spec.primary_key[0]].search_sorted(bounds, side="left").to_numpy()
    columns = pl.concat(schemas, how="diagonal_relaxed").drop(col.ROW_ID)
    schema = stamp(columns, lineage).to_arrow().schema
    job = KeyedJob(keep, frame.height, columns, schema, truncated_at, rejected, bounds, runs, folder)
    if folder is not None:  # a stream never consumed (an error before the commit) leaves nothing behind
        weakref.finalize(job, shutil.rmtree, folder, ignore_errors=True)
    return job


def _orderable(frame: pl.DataFrame, spec: DatasetSpec) -> bool:
    """Whether rows can be sorted by the job's key: one column of numbers, times or text, no change rows
    (a truncate carries no key), no nulls."""
    if len(spec.primary_key) != 1 or col.OP in frame.columns:
        return False
    key = frame[spec.primary_key[0]]
    kind = key.dtype
    return not key.null_count() and (kind.is_numeric() or kind.is_temporal() or kind == pl.String)


def _bounds(frame: pl.DataFrame, spec: DatasetSpec, bucket_rows: int) -> pl.Series:
    """Cut the sorted surviving keys into ranges of ``bucket_rows`` rows (empty: one range)."""
    if frame.height <= bucket_rows:
        return pl.Series()
    return frame[spec.primary_key[0]].gather_every(bucket_rows, offset=bucket_rows)


def _latest(frame: pl.DataFrame, spec: DatasetSpec) -> pl.DataFrame:
    """The surviving row of each key: greatest ``order_by``, then latest arrival (a truncate has no key).

    A stable sort by key and ``order_by`` puts it last among its key's rows (measured on 5M keys: half the
    memory of a hash-based ``unique``)."""
    if not spec.primary_key:
        return frame
    key = list(spec.primary_key)
    # Rows of one key stay in arrival order: batches follow each other and runs are sorted stably.
    frame = frame.sort([*key, *spec.order_by], nulls_last=False, maintain_order=True)
    value = pl.col(key[0]) if len(key) == 1 else pl.struct(key)
    return frame.filter(value.ne_missing(value.shift(-1)))


def rows(job: KeyedJob, spec: DatasetSpec, batch_rows: int, lineage: Lineage) -> Iterator[pa.RecordBatch]:
    """Pass 2: the surviving rows, stamped, as batches of ``job.schema`` (in key order when the job has
    ``bounds``); superseded rows join ``job.rejected`` as they go by.

    The rows come from the runs pass 1 spilled (the load file is not read again)."""
    spilled = _Spilled(job.runs)
    try:
        if not job.bounds.len():
            for index, run in enumerate(job.runs):
                survivors = _survivors(job, [spilled.read(index, 0, run.rows)], spec, lineage)
                yield from _batches(survivors, job, batch_rows)
            return
        key = spec.primary_key[0]
        for bucket in range(job.bounds.len() + 1):
            parts = []
            for index, run in enumerate(job.runs):
                start = int(run.cuts[bucket - 1]) if bucket else 0
                end = int(run.cuts[bucket]) if bucket < len(run.cuts) else run.rows
                if end > start:
                    parts.append(spilled.read(index, start, end))
            survivors = _survivors(job, parts, spec, lineage)
            yield from _batches(survivors.sort(key, maintain_order=True), job, batch_rows)
    finally:
        spilled.close()
        if job.spill is not None:
            shutil.rmtree(job.spill, ignore_errors=True)


def _survivors(job: KeyedJob, parts: list[pa.Table], spec: DatasetSpec, lineage: Lineage) -> pl.DataFrame:
    """The kept rows of ``parts``, in the job's columns and stamped; the others become quarantine records."""
    kept_parts = []
    names = job.columns.columns
    for part in parts:
        good = pl.DataFrame(pl.from_arrow(part))
        kept = pl.Series(job.keep[good[col.ROW_ID].to_numpy()])
        if (gone := good.filter(~kept)).height:
            job.rejected.append(_superseded(gone.drop(col.ROW_ID), job, spec))
        if (survivors := good.filter(kept).drop(col.ROW_ID)).height:
            kept_parts.append(pl.concat([job.columns, survivors], how="diagonal_relaxed").select(names))
    return stamp(pl.concat([job.columns, *kept_parts], how="vertical"), lineage)


def _batches(frame: pl.DataFrame, job: KeyedJob, batch_rows: int) -> Iterator[pa.RecordBatch]:
    if frame.height:
        yield from frame.to_arrow().cast(job.schema).to_batches(max_chunksize=batch_rows)


def _spill(frame: pl.DataFrame, path: Path) -> _Run:
    table = frame.rechunk().to_arrow()  # one chunk: record batch i holds rows i * _SPILL_CHUNK onwards
    options = pa.ipc.IpcWriteOptions(unify_dictionaries=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=_SPILL_CHUNK)
    return _Run(path, frame.height)


class _Spilled:
    """Readers of the runs, opened once (at most ``_OPEN_RUNS`` at a time: file descriptors). A run is read
    with plain reads, never mapped, so its rows land on the heap and leave with the frames holding them."""

    def __init__(self, runs: list[_Run]) -> None:
        self._runs = runs
        self._open: OrderedDict[int, tuple[pa.OSFile, pa.ipc.RecordBatchFileReader]] = OrderedDict()

    def read(self, index: int, start: int, end: int) -> pa.Table:
        """Rows ``start`` to ``end`` of run ``index`` (only the record batches holding them are read)."""
        if index in self._open:
            self._open.move_to_end(index)
        else:
            if len(self._open) >= _OPEN_RUNS:
                self._open.popitem(last=False)[1][0].close()
            source = pa.OSFile(str(self._runs[index].path))
            self._open[index] = (source, pa.ipc.open_file(source))
        reader = self._open[index][1]
        first, last = start // _SPILL_CHUNK, (end - 1) // _SPILL_CHUNK
        batches = [reader.get_batch(i) for i in range(first, last + 1)]
        return pa.Table.from_batches(batches, reader.schema).slice(start - first * _SPILL_CHUNK, end - start)

    def close(self) -> None:
        for source, _ in self._open.values():
            source.close()
        self._open.clear()


def _superseded(gone: pl.DataFrame, job: KeyedJob, spec: DatasetSpec) -> pl.DataFrame:
    if job.truncated_at is None or col.POSITION not in gone.columns:
        return quarantine_rows(gone, spec, "duplicate_key", _SUPERSEDED)
    before = gone[col.POSITION] < job.truncated_at
    return pl.concat(
        [
            quarantine_rows(gone.filter(before), spec, "truncated", _TRUNCATED),
            quarantine_rows(gone.filter(~before), spec, "duplicate_key", _SUPERSEDED),
        ]
    )


def _split(
    parquet: pq.ParquetFile, split: Split, batch_rows: int
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Each batch after the write-path rules, its good rows carrying their index in the job."""
    offset = 0
    for batch in parquet.iter_batches(batch_size=batch_rows):
        # (pa.array of a numpy array imports pandas to check its type: 0.5 s in a fresh process)
        index = pl.int_range(offset, offset + batch.num_rows, dtype=pl.Int64, eager=True).to_arrow()
        offset += batch.num_rows
        result = split(batch.append_column(col.ROW_ID, index))
        yield result.good, result.rejected
