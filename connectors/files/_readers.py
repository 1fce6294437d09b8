"""Streaming readers: each turns one open file into Arrow tables of bounded size.

Text formats (CSV, JSON) are read as text, exactly as received: typing against the dataset's declared
schema happens once, in the zone destination, where a value that does not cast is quarantined instead
of failing the whole file. Records that cannot be parsed at all come out as reject rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import IO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from connectors._contract import plain_strings
from lakegate.columns import POSITION, RAW_TEXT, REJECT_REASON, REJECT_RULE, SOURCE
from lakegate.columns import PREFIX as RESERVED_PREFIX

_CSV_BLOCK_BYTES = 1 << 20  # 1 MiB blocks measured fastest here, single-threaded, at the lowest RSS
_JSON_CHUNK_LINES = 50_000


def with_lineage(table: pa.Table, source: str, first_position: int) -> pa.Table:
    """Append the source and 1-based position columns to a parsed table."""
    return with_positions(table, source, np.arange(first_position, first_position + table.num_rows))


def with_positions(table: pa.Table, source: str, positions: np.ndarray) -> pa.Table:
    """Append the source column and the given positions to a parsed table."""
    n = table.num_rows
    return table.append_column(SOURCE, pa.repeat(pa.scalar(source), n)).append_column(
        POSITION, pa.array(positions, pa.int64())
    )


def _row_numbers(first: int, count: int, rejected: set[int]) -> np.ndarray:
    """``count`` CSV row numbers from ``first`` on, skipping the numbers of rejected rows."""
    candidates = np.arange(first, first + count + len(rejected), dtype=np.int64)
    return candidates[~np.isin(candidates, np.fromiter(rejected, np.int64, len(rejected)))][:count]


def reject_table(source: str, rejects: list[tuple[int | None, str, str, str | None]]) -> pa.Table:
    """Build a table of rejected records: (position, rule, reason, raw text)."""
    positions, rules, reasons, raws = zip(*rejects, strict=True) if rejects else ((), (), (), ())
    return pa.table(
        {
            SOURCE: pa.array([source] * len(rejects), pa.string()),
            POSITION: pa.array(positions, pa.int64()),
            REJECT_RULE: pa.array(rules, pa.string()),
            REJECT_REASON: pa.array(reasons, pa.string()),
            RAW_TEXT: pa.array(raws, pa.string()),
        }
    )


def read_csv(
    handle: IO[bytes], source: str, *, delimiter: str, encoding: str, batch_rows: int
) -> Iterator[pa.Table]:
    """Stream a CSV file as string columns; rows with the wrong field count become rejects."""
    try:
        header = _csv_header(handle, delimiter, encoding)
    except UnicodeDecodeError as exc:
        yield file_reject(
            source, "file_unreadable", f"not {encoding} text ({exc.reason} at byte {exc.start})"
        )
        return
    if header is None:
        yield reject_table(source, [(None, "empty_file", f"{source}: the file is empty (no header)", None)])
        return
    if problem := header_problem(header):
        yield file_reject(source, "invalid_header", problem)
        return
    rejects: list[tuple[int | None, str, str, str | None]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        rejects.append(
            (
                row.number,
                "csv_field_count",
                f"{source} line {row.number}: expected {row.expected_columns} fields, "
                f"found {row.actual_columns}",
                row.text,
            )
        )
        return "skip"

    try:
        reader = pacsv.open_csv(
            handle,
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, use_threads=False, encoding=encoding),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as exc:  # e.g. the first block is not valid text in the declared encoding
        yield file_reject(source, "file_unreadable", f"CSV cannot be parsed ({exc})")
        return
    # Data rows carry their row number as pyarrow counts it (header = 1), like rejects do, so the
    # positions of one file never collide and name the same row in data and quarantine.
    next_row = 2
    seen_rows = 0
    rejected: set[int] = set()
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in _parsed(reader, source):
        if isinstance(batch, pa.Table):  # the file could not be parsed any further
            yield batch
            break
        pending.append(batch)
        pending_rows += batch.num_rows
        if rejects:
            rejected.update(number for number, *_ in rejects if number is not None)
            yield reject_table(source, rejects)
            seen_rows += len(rejects)
            rejects.clear()
        if pending_rows >= batch_rows:
            positions = _row_numbers(next_row, pending_rows, rejected)
            yield with_positions(pa.Table.from_batches(pending), source, positions)
            next_row = int(positions[-1]) + 1
            rejected = {n for n in rejected if n >= next_row}
            seen_rows += pending_rows
            pending, pending_rows = [], 0
    if pending_rows:
        rejected.update(number for number, *_ in rejects if number is not None)
        yield with_positions(
            pa.Table.from_batches(pending), source, _row_numbers(next_row, pending_rows, rejected)
        )
        seen_rows += pending_rows
    if rejects:
        yield reject_table(source, rejects)
    elif not seen_rows:
        yield reject_table(source, [(None, "empty_file", f"{source}: header only, no data rows", None)])


def _parsed(reader: pacsv.CSVStreamingReader, source: str) -> Iterator[pa.RecordBatch | pa.Table]:
    """The reader's batches; a parse error pyarrow cannot skip ends the file with one reject row
    (the rows before it are loaded; the file stays in landing for the rest)."""
    try:
        yield from reader
    except pa.ArrowInvalid as exc:
        yield file_reject(source, "csv_parse_error", f"cannot be parsed past the rows loaded before ({exc})")


def header_problem(names: list[str]) -> str | None:
    """Why a file's column names cannot be stored (Delta compares names case-insensitively), or None."""
    reserved = sorted(n for n in names if n.startswith(RESERVED_PREFIX))
    if reserved:
        return f"column name(s) {', '.join(reserved)} use the reserved prefix {RESERVED_PREFIX}"
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            return f"columns '{seen[name.lower()]}' and '{name}' collide (names are case-insensitive)"
        seen[name.lower()] = name
    return None


def file_reject(source: str, rule: str, problem: str) -> pa.Table:
    """One reject row standing for a whole file that cannot be read; the file stays in landing."""
    reason = f"{source}: {problem}; fix the file and drop it again"
    return reject_table(source, [(None, rule, reason, None)])


def _csv_header(handle: IO[bytes], delimiter: str, encoding: str) -> list[str] | None:
    first = handle.readline()
    handle.seek(0)
    if not first.strip():
        return None
    # pyarrow drops a UTF-8 byte-order mark; so must we, or the first column escapes the all-text types.
    return next(csv.reader([first.decode(encoding).lstrip("\ufeff").rstrip("\r\n")], delimiter=delimiter))


def read_parquet(handle: IO[bytes], source: str, *, batch_rows: int) -> Iterator[pa.Table]:
    """Stream a Parquet file row group by row group, keeping its types."""
    position = 1
    for batch in pq.ParquetFile(handle, pre_buffer=False).iter_batches(batch_size=batch_rows):
        yield with_lineage(pa.Table.from_batches([batch]), source, position)
        position += batch.num_rows


def read_json(handle: IO[bytes], source: str, *, encoding: str, batch_rows: int) -> Iterator[pa.Table]:
    """Read newline-delimited JSON (or one JSON array) into text columns; bad lines become rejects.

    A JSON *array* file has to be parsed whole; newline-delimited files stream in bounded chunks.
    """
    text = io.TextIOWrapper(handle, encoding=encoding)
    first = text.read(1)
    while first and first.isspace():
        first = text.read(1)
    if not first:
        yield reject_table(source, [(None, "empty_file", f"{source}: the file is empty", None)])
        return
    if first == "[":
        yield from _json_array(first + text.read(), source)
        return
    lines: list[tuple[int, str]] = []
    line_no = 0
    for line_no, line in enumerate(_prepend(first, text), start=1):
        if line.strip():
            lines.append((line_no, line))
        if len(lines) >= min(batch_rows, _JSON_CHUNK_LINES):
            yield from _json_lines(lines, source)
            lines = []
    if lines:
        yield from _json_lines(lines, source)


def _prepend(first: str, text: io.TextIOWrapper) -> Iterator[str]:
    head = text.readline()
    yield first + head
    yield from text


def _json_lines(lines: list[tuple[int, str]], source: str) -> Iterator[pa.Table]:
    good: list[tuple[int, str]] = []
    rejects: list[tuple[int | None, str, str, str | None]] = []
    for number, line in lines:
        try:
            if not isinstance(json.loads(line), dict):
                raise ValueError("not a JSON object")
            good.append((number, line))
        except ValueError as exc:
            reason = f"{source} line {number}: not a JSON object ({type(exc).__name__})"
            rejects.append((number, "json_syntax", reason, line.rstrip("\r\n")))
    if good and (problem := header_problem(_keys(good))):
        rejects += [
            (n, "invalid_header", f"{source} line {n}: {problem}", line.rstrip("\r\n")) for n, line in good
        ]
        good = []
    if good:
        frame = pl.read_ndjson(io.StringIO("".join(line for _, line in good)), infer_schema_length=None)
        table = plain_strings(_as_text(frame).to_arrow())
        positions = pa.array([n for n, _ in good], pa.int64())
        yield table.append_column(SOURCE, pa.repeat(pa.scalar(source), len(good))).append_column(
            POSITION, positions
        )
    if rejects:
        yield reject_table(source, rejects)


def _keys(lines: list[tuple[int, str]]) -> list[str]:
    keys: dict[str, None] = {}
    for _, line in lines:
        keys.update(dict.fromkeys(json.loads(line)))
    return list(keys)


def _json_array(document: str, source: str) -> Iterator[pa.Table]:
    try:
        records = json.loads(document)
        if not all(isinstance(r, dict) for r in records):
            raise ValueError("array items must be JSON objects")
    except ValueError as exc:
        yield reject_table(
            source, [(None, "json_syntax", f"{source}: not a JSON array of objects ({exc})", None)]
        )
        return
    if records:
        yield with_lineage(
            plain_strings(_as_text(pl.from_dicts(records, infer_schema_length=None)).to_arrow()), source, 1
        )


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Render every column as text: scalars as written, nested values as compact JSON."""
    exprs = []
    for name, dtype in frame.schema.items():
        if dtype.is_nested():
            # Wrap in a struct to JSON-encode any nested type, then unwrap the {"v": ...} envelope.
            encoded = pl.struct(pl.col(name).alias("v")).struct.json_encode()
            exprs.append(
                pl.when(pl.col(name).is_null())
                .then(None)
                .otherwise(encoded.str.slice(5, None).str.head(-1))
                .alias(name)
            )
        else:
            exprs.append(pl.col(name).cast(pl.String))
    return frame.select(exprs)
