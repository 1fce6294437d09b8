"""The curate step's load file, encoded by lakegate and imported by dlt as it is.

dlt's parquet writer dictionary-encodes every column (pyarrow's default: ids, amounts and timestamps are
hashed until their dictionary outgrows 1 MiB) on the extracting thread. Here each transformed batch is
encoded as one row group on a thread while the next batch is read and transformed, only text columns with
few distinct values get a dictionary (the destination's PII scan reads those as dictionaries), and the
finished file is handed to dlt (``dlt.mark.with_file_import``), which hard-links it into the load package.
Measured on the curate benchmark's rows: 0.29 CPU s per million rows against 0.55 for dlt's writer, and
the encoding overlaps the next batch's reading on a second core.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import dlt
import pyarrow as pa
import pyarrow.parquet as pq
from dlt.extract.items import DataItemWithMeta
from dlt.pipeline.exceptions import PipelineNotActive

from lakegate.dictionary import dictionary_columns


@contextmanager
def load_file_folder() -> Iterator[Path | None]:
    """A folder beside the extracting pipeline's load packages (so dlt can hard-link the file), removed
    afterwards; ``None`` outside a pipeline (the batches are then yielded as tables)."""
    try:
        working_dir = dlt.current.pipeline().working_dir
    except PipelineNotActive:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="lakegate-curate-", dir=working_dir))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def imported(tables: Iterable[pa.Table], stem: Path) -> Iterator[DataItemWithMeta]:
    """``tables`` encoded into parquet files ``<stem>.<n>.parquet`` (a table of another schema than the one
    before starts the next file), each yielded for dlt to import once it is finished."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakegate-curate-encode") as pool:
        writer: pq.ParquetWriter | None = None
        pending: Future[None] | None = None
        path, rows, files = "", 0, 0
        try:
            for table in tables:
                if writer is not None and not table.schema.equals(writer.schema):
                    _wait(pending)
                    writer.close()
                    yield _import(path, rows, writer.schema)
                    writer, pending = None, None
                if writer is None:
                    files += 1
                    path, rows = f"{stem}.{files}.parquet", 0
                    coded = dictionary_columns(table)
                    writer = pq.ParquetWriter(path, table.schema, compression="snappy", use_dictionary=coded)
                _wait(pending)  # one row group encoding at a time: memory stays at about two batches
                pending = pool.submit(writer.write_table, table, row_group_size=table.num_rows)
                rows += table.num_rows
            _wait(pending)
            pending = None
        finally:
            if writer is not None:
                writer.close()
        if writer is not None:
            yield _import(path, rows, writer.schema)


def _wait(pending: Future[None] | None) -> None:
    if pending is not None:
        pending.result()


def _import(path: str, rows: int, schema: pa.Schema) -> DataItemWithMeta:
    # (pa.Schema.empty_table imports pandas: 0.5 s)
    return dlt.mark.with_file_import(path, "parquet", rows, pa.Table.from_batches([], schema=schema))
