"""CSV: pyarrow parses clean regions; a region with a problem is parsed record by record in Python.

Every input record gets exactly one position, the line it starts on (header = line 1), whether it is
loaded or rejected; empty lines are not records. The fast path hands a region (about one block of whole
lines) to pyarrow and keeps the result only when it is certainly the record-by-record result: the region
is valid UTF-8, pyarrow parsed it, each line is exactly one record (rows + invalid rows = lines) and the
last line does not leave a quote open. Otherwise the region goes through :func:`_records`, which follows
pyarrow's quoting (a quote opens a value only at the start of a field, ``""`` is a quote inside one) and
rejects per record: undecodable bytes (``invalid_encoding``), a wrong field count
(``csv_field_count``), and a quote that never closes into a valid record (``csv_quote``: only the line it
opens on is rejected, and reading resumes on the next line instead of swallowing the rest of the file).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

import dlt
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from dlt.extract.items import DataItemWithMeta

from connectors.files._fastcsv import FastPath, FastReader, Imported, Rest
from connectors.files._rows import (
    Reject,
    file_reject,
    first_bad_byte,
    has_bad_bytes,
    header_problem,
    raw_text,
    reject_table,
    with_positions,
)
from connectors.files._text import Region, Regions, count_breaks
from connectors.files._typed import arrow_types, split_typed

CSV_BLOCK_BYTES = 1 << 20  # 1 MiB blocks measured fastest here, single-threaded, at the lowest RSS
PARSE_THREADS = 2
_AHEAD = 4  # regions parsed ahead of the one handed out (each about one block)
# A quoted value may span lines, but one still open after this much text is taken for an unterminated
# quote (bounds the memory a runaway quote can hold).
MAX_RECORD_CHARS = 16 << 20


def read_csv(
    handle: IO[bytes],
    source: str,
    *,
    delimiter: str,
    encoding: str,
    batch_rows: int,
    columns: Mapping[str, str] | None = None,
    fast: FastPath | None = None,
) -> Iterator[pa.Table | DataItemWithMeta]:
    """Stream a CSV file as string columns plus reject rows; see the module doc for the rules.

    With ``columns`` (declared type names), values are typed as they are parsed (see ``_typed``): rows
    typed whole come out typed, rows holding a value that is not read there come out as text, together
    at the end of the file (or once ``batch_rows`` of them wait), so the load file changes schema rarely.
    With ``fast`` as well, chunks polars provably reads alike are typed on all cores into Parquet load
    files dlt imports as they are (``_fastcsv``); the first chunk it does not take and the rest of the
    file are read here, region by region.
    """
    types = arrow_types(columns or {})
    text: list[pa.Table] = []
    head, line, records = b"", 1, 0
    names: list[str] | None = None
    reader = FastReader.open(handle, source, delimiter, encoding, columns or {}, fast)
    if reader is not None:
        names = reader.names
        for item in reader.chunks():
            if isinstance(item, Imported):
                records += item.rows
                yield dlt.mark.with_file_import(item.path, "parquet", item.rows, item.hints)
            elif isinstance(item, Rest):
                head, line = item.data, item.line
            else:
                records += item.num_rows
                text.append(item)
                if sum(t.num_rows for t in text) >= batch_rows:
                    yield pa.concat_tables(text)
                    text.clear()
        if reader.unread is not None:  # the header itself was not for this path
            head, names = reader.unread, None
    regions = Regions(handle, encoding, CSV_BLOCK_BYTES, head=head, at_start=names is None)
    parser = _Parser(source, delimiter, encoding)
    if names is None:
        header = _header(regions, parser)
        if isinstance(header, pa.Table):
            yield header
            return
        names, line = header
    parser.names = names
    read, line = yield from _regions(regions, parser, line, types, batch_rows, text)
    records += read
    if text:
        yield pa.concat_tables(text)
    if regions.problem:
        problem = f"{source} line {line}: the file cannot be read from this line on ({regions.problem})"
        yield reject_table(source, [(line, "file_unreadable", problem, None)])
    elif not records:
        yield reject_table(source, [(None, "empty_file", f"{source}: header only, no data rows", None)])


def _regions(
    regions: Regions,
    parser: _Parser,
    line: int,
    types: Mapping[str, pa.DataType],
    batch_rows: int,
    text: list[pa.Table],
) -> Generator[pa.Table, None, tuple[int, int]]:
    """Yield the regions' rows from ``line`` on (rows left as text are added to ``text``, and yielded
    once ``batch_rows`` wait); returns how many records were read and the line after them."""
    names = parser.names
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False)
    pending: list[pa.Table] = []
    pending_rows = records = 0
    text_rows = sum(t.num_rows for t in text)
    with ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="lakegate-csv") as pool:
        ahead = _Ahead(
            regions, pool, lambda region, at: _fast_typed(region, names, parser, convert, at, types)
        )
        while (item := ahead.next(line)) is not None:
            region, line, done = item
            if done is None:
                final = region.final or len(region.text) >= MAX_RECORD_CHARS
                parsed = parser.records(region.text, line, final)
                if parsed.consumed < len(region.text):
                    regions.push_back(region.text[parsed.consumed :])
                typed, as_text = split_typed(parsed.table, types) if types else (None, parsed.table)
            else:
                parsed, typed, as_text = done
            line = parsed.next_line
            if parsed.rejects:
                yield reject_table(parser.source, parsed.rejects)
            records += parsed.table.num_rows + len(parsed.rejects)
            if as_text is not None and as_text.num_rows:
                text.append(as_text)
                text_rows += as_text.num_rows
            if typed is not None:
                pending.append(typed)
                pending_rows += typed.num_rows
            if pending_rows >= batch_rows:
                yield pa.concat_tables(pending)
                pending, pending_rows = [], 0
            if text_rows >= batch_rows:
                yield pa.concat_tables(text)
                text.clear()
                text_rows = 0
    if pending:
        yield pa.concat_tables(pending)
    return records, line


_Done = tuple["_Parsed", pa.Table | None, pa.Table | None]
"""A region parsed on the fast path: the parse, its typed rows and its rows left as text."""


def _fast_typed(
    region: Region,
    columns: list[str],
    parser: _Parser,
    convert: pacsv.ConvertOptions,
    line: int,
    types: Mapping[str, pa.DataType],
) -> _Done | None:
    parsed = _fast(region, columns, parser, convert, line)
    if parsed is None:
        return None
    typed, as_text = split_typed(parsed.table, types) if types else (None, parsed.table)
    return parsed, typed, as_text


class _Ahead:
    """Regions parsed (and typed) on a thread pool, a few ahead of the one being handed out, in order.

    pyarrow parses and casts without the GIL, so this uses the second core while dlt writes the load file
    on the first. A region's first line is known before it is parsed (its line breaks are counted), so
    regions are independent. A region that the fast path does not take (bad bytes, a quoted value over the
    region's end, an empty line) is handed out with no result, for :meth:`_Parser.records`; the regions read
    after it are given back to the reader first (records may give back part of it, which must come first).
    """

    def __init__(
        self, regions: Regions, pool: ThreadPoolExecutor, parse: Callable[[Region, int], _Done | None]
    ) -> None:
        self._regions = regions
        self._pool = pool
        self._parse = parse
        self._queue: deque[tuple[Region, int, Future[_Done | None] | None]] = deque()
        self._line = 0
        self._eof = False

    def next(self, line: int) -> tuple[Region, int, _Done | None] | None:
        """The next region, its first line and its fast-path result (None: parse it record by record).

        Args:
            line: The line the next region starts on (where the caller's parse of the last one ended).
        """
        if not self._queue:
            self._line = line
        self._fill()
        if not self._queue:
            return None
        region, start, future = self._queue.popleft()
        done = future.result() if future is not None else None
        if done is None and self._queue:
            for later, _, pending in reversed(self._queue):
                if pending is not None:
                    pending.cancel()
                self._regions.push_back(later.text)
            self._queue.clear()
            self._eof = False
        return region, start, done

    def _fill(self) -> None:
        while len(self._queue) < _AHEAD and not self._eof:
            if self._queue and self._queue[-1][2] is None:
                return  # where the next region starts is known only once this one is parsed
            region = self._regions.next()
            if region is None:
                self._eof = True
                return
            data = region.clean
            if data is None:
                self._queue.append((region, self._line, None))
                continue
            self._queue.append((region, self._line, self._pool.submit(self._parse, region, self._line)))
            self._line += count_breaks(data) + (not data.endswith((b"\n", b"\r")))


class _Parsed:
    """Data rows (with lineage) and rejects of one region, and where parsing stopped."""

    def __init__(self, table: pa.Table, rejects: list[Reject], consumed: int, next_line: int) -> None:
        self.table = table
        self.rejects = rejects
        self.consumed = consumed
        self.next_line = next_line


def _header(regions: Regions, parser: _Parser) -> tuple[list[str], int] | pa.Table:
    """The column names and the first data line, or a whole-file reject."""
    text = ""
    while (region := regions.next()) is not None:
        # pyarrow drops a byte-order mark; so must we, or the first column escapes the all-text types.
        text = text + region.text if text else region.text.lstrip("\ufeff")
        _, i = parser.skip_empty_lines(text, 1, 0)
        if region.final or len(text) >= MAX_RECORD_CHARS or parser.scan(text, i) is not None:
            break
    line, i = parser.skip_empty_lines(text, 1, 0)
    if i >= len(text):
        if regions.problem:
            return file_reject(parser.source, "file_unreadable", regions.problem)
        empty = f"{parser.source}: the file is empty (no header)"
        return reject_table(parser.source, [(None, "empty_file", empty, None)])
    record = parser.scan(text, i)
    if record is None or has_bad_bytes(text[i : record[1]]):
        what = "an unterminated quote" if record is None else f"bytes that are not {parser.encoding}"
        return file_reject(parser.source, "file_unreadable", f"the header (line {line}) holds {what}")
    fields, end, inner, _ = record
    if problem := header_problem(fields):
        return file_reject(parser.source, "invalid_header", problem)
    regions.push_back(text[_after_break(text, end) :])
    return fields, line + inner + 1


def _fast(
    region: Region, columns: list[str], parser: _Parser, convert: pacsv.ConvertOptions, line: int
) -> _Parsed | None:
    """pyarrow's parse of a clean region with its positions, or None when the region needs
    :meth:`_Parser.records`."""
    data = region.clean
    if data is None:
        return None
    lines = count_breaks(data) + (not data.endswith((b"\n", b"\r")))
    last = data[data.rfind(b"\n", 0, len(data) - 1) + 1 :]
    if b'"' in last and parser.scan(last.decode("utf-8"), 0) is None:
        return None  # the last line opens a quoted value that may go on in the next region
    invalid: list[pacsv.InvalidRow] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pacsv.open_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(
                use_threads=False, column_names=columns, block_size=max(len(data), CSV_BLOCK_BYTES)
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=parser.delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=convert,
        ).read_all()
    except pa.ArrowInvalid:
        return None
    if table.num_rows + len(invalid) != lines or any(row.number is None for row in invalid):
        return None  # an empty line or a value spanning lines: positions need the record-level parse
    positions = np.arange(line, line + lines, dtype=np.int64)
    rejects: list[Reject] = []
    if invalid:
        numbers = [int(row.number) for row in invalid]
        rejects = [
            parser.field_count_reject(line + n - 1, row.actual_columns, row.text)
            for n, row in zip(numbers, invalid, strict=True)
        ]
        positions = np.delete(positions, np.array(numbers) - 1)
    return _Parsed(with_positions(table, parser.source, positions), rejects, len(data), line + lines)


def _after_break(text: str, j: int) -> int:
    """Index just past the line break at ``text[j]`` (``j`` itself at the end of the text)."""
    if j >= len(text):
        return j
    return j + 2 if text.startswith("\r\n", j) else j + 1


class _Parser:
    """The record-by-record CSV parser of one file (used for the header and for problem regions)."""

    def __init__(self, source: str, delimiter: str, encoding: str) -> None:
        self.source = source
        self.delimiter = delimiter
        self.encoding = encoding
        self.names: list[str] = []
        """The header's column names."""
        self._field_end = re.compile(f"[{re.escape(delimiter)}\r\n]")
        self._line_end = re.compile("[\r\n]")

    def skip_empty_lines(self, text: str, line: int, i: int) -> tuple[int, int]:
        """Skip empty lines from ``text[i]`` on; the line number and index of the next record."""
        while i < len(text) and text[i] in "\r\n":
            i, line = _after_break(text, i), line + 1
        return line, i

    def scan(self, text: str, i: int) -> tuple[list[str], int, int, bool] | None:
        """The record starting at ``text[i]``: (fields, index of its line break, line breaks inside
        quoted values, whether every closing quote ends its field), or None while a quoted value is
        still open at the end of ``text``."""
        n, fields, inner, well_formed = len(text), [], 0, True
        while True:
            if i < n and text[i] == '"':
                parts, k = [], i + 1
                while True:
                    q = text.find('"', k)
                    if q < 0:
                        return None
                    parts.append(text[k:q])
                    if not text.startswith('"', q + 1):
                        break
                    parts.append('"')
                    k = q + 2
                value = "".join(parts)
                inner += count_breaks(value)
                stop = self._field_end.search(text, q + 1)
                j = stop.start() if stop else n
                if j > q + 1:  # pyarrow keeps text after a closing quote as part of the value
                    well_formed = False
                    value += text[q + 1 : j]
            else:
                stop = self._field_end.search(text, i)
                j = stop.start() if stop else n
                value = text[i:j]
            fields.append(value)
            if j < n and text[j] == self.delimiter:
                i = j + 1
                continue
            return fields, j, inner, well_formed

    def records(self, text: str, line: int, final: bool) -> _Parsed:
        """Parse ``text`` (starting on ``line``) record by record; unless ``final``, stop before a record
        whose quoted value is still open at the end of the text."""
        rows: list[list[str]] = []
        positions: list[int] = []
        rejects: list[Reject] = []
        n, i = len(text), 0
        while True:
            line, i = self.skip_empty_lines(text, line, i)
            if i >= n:
                break
            stop = self._line_end.search(text, i)
            line_end = stop.start() if stop else n
            if '"' not in text[i:line_end]:
                record: tuple[list[str], int, int, bool] | None = (
                    text[i:line_end].split(self.delimiter),
                    line_end,
                    0,
                    True,
                )
            else:
                record = self.scan(text, i)
                if record is None and not final:
                    break
            if record is None or (record[2] and (not record[3] or len(record[0]) != len(self.names))):
                rejects.append(self._quote_reject(line, text[i:line_end]))
                line, i = line + 1, _after_break(text, line_end)
                continue
            fields, end, inner, _ = record
            span = text[i:end]
            if has_bad_bytes(span):
                rejects.append(self._encoding_reject(line, span))
            elif len(fields) != len(self.names):
                rejects.append(self.field_count_reject(line, len(fields), raw_text(span)))
            else:
                rows.append(fields)
                positions.append(line)
            line, i = line + inner + 1, _after_break(text, end)
        columns = zip(*rows, strict=True) if rows else [()] * len(self.names)
        table = pa.table([pa.array(column, pa.string()) for column in columns], names=self.names)
        return _Parsed(with_positions(table, self.source, positions), rejects, i, line)

    def field_count_reject(self, line: int, found: int, raw: str | None) -> Reject:
        reason = f"{self.source} line {line}: expected {len(self.names)} fields, found {found}"
        return (line, "csv_field_count", reason, raw)

    def _quote_reject(self, line: int, text: str) -> Reject:
        reason = (
            f"{self.source} line {line}: a quote opened on this line never closes into a valid record "
            "(stray or unterminated quote); only this line is rejected"
        )
        return (line, "csv_quote", reason, raw_text(text))

    def _encoding_reject(self, line: int, text: str) -> Reject:
        at = first_bad_byte(text)
        reason = f"{self.source} line {line}: not valid {self.encoding} (first bad byte at character {at})"
        return (line, "invalid_encoding", reason, raw_text(text))
