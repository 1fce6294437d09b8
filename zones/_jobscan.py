"""The write path's PII scan of one load file: the columns it names, read by projection, batch by batch.

A column stored with a small dictionary (a country, a status) is read as that dictionary, whose values are
checked once per batch instead of once per row: a dictionary no recognizer's hint matches proves its
column clean without decoding it.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from zones._records import READ_BATCH_ROWS, DatasetSpec, Scanned, scan_batch
from zones.pii import Tokenizer
from zones.pii_detection import Findings, may_hold_pii

_SMALL_DICTIONARY_BYTES = 64 * 1024


def scan_job(
    path: Path,
    parquet: pq.ParquetFile,
    spec: DatasetSpec,
    tokenizer: Tokenizer | None,
    columns: list[str],
    declared: list[str],
) -> tuple[Findings, pl.DataFrame | None]:
    """Scan ``columns`` of the load file ``path``, open as ``parquet`` (``declared``: those of declared
    PII, vaulted whole): the spans found per ``(column, recognizer)`` and the vault rows (None when there
    are none)."""
    coded = [c for c in columns if c not in declared and _small_dictionary(parquet.metadata, c)]
    if coded:
        parquet = pq.ParquetFile(path, pre_buffer=False, read_dictionary=coded)

    def scanned(batch: pa.RecordBatch) -> Scanned:
        kept = {}
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if pa.types.is_dictionary(column.type):
                if not may_hold_pii(pl.Series(column.dictionary)):
                    continue  # no value of the dictionary could hold PII: no row does
                column = column.dictionary_decode()
            kept[name] = column
        return scan_batch(pl.DataFrame(pl.from_arrow(pa.table(kept))), spec, tokenizer)

    parts = []
    # Scan batch n (polars releases the GIL) while pyarrow decodes batch n+1.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakegate-scan") as pool:
        pending = None
        for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns):
            ahead = pool.submit(scanned, batch)
            if pending is not None:
                parts.append(pending.result())
            pending = ahead
        if pending is not None:
            parts.append(pending.result())
    findings: Counter[tuple[str, str]] = Counter()
    for part in parts:
        findings.update(part.findings)
    vaults = [p.vault for p in parts if p.vault.height]
    vault = pl.concat(vaults).unique(subset=["token", "column"]) if vaults else None
    return dict(findings), vault


def _small_dictionary(metadata: pq.FileMetaData, name: str) -> bool:
    """Whether every row group stores column ``name`` dictionary-encoded with a small dictionary page
    (writers fall back to plain pages only once the dictionary outgrows ~1 MiB, so all its pages are
    dictionary pages)."""
    leaves = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    if name not in leaves or not metadata.num_row_groups:
        return False
    index = leaves.index(name)
    for group in range(metadata.num_row_groups):
        chunk = metadata.row_group(group).column(index)
        if not chunk.has_dictionary_page or chunk.dictionary_page_offset is None:
            return False
        if chunk.data_page_offset - chunk.dictionary_page_offset > _SMALL_DICTIONARY_BYTES:
            return False
    return True
