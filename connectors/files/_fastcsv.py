"""CSV parsed and typed on all cores by polars, in chunks, into Parquet load files dlt imports as they are.

A chunk (about :data:`CHUNK_BYTES` of whole lines) takes this path only when polars' reading of it is
provably the record-by-record reading of ``_csv``: UTF-8, lines ending ``\\n`` or ``\\r\\n``, every line
exactly one record with all its fields. polars fills a missing field with ``""``, reads an empty line as a
row of ``""`` and keeps a lone ``\\r`` in a value, so the chunk's bytes are accounted for: its length must
equal the values' bytes plus the delimiters, line breaks and quotes they imply (a quoted value costs two
quotes, a quote inside one a second quote), and its line breaks must equal its rows. Otherwise the
chunk and the rest of the file go to ``_csv``'s regions.

Declared columns are read exactly as the zone's ``cast_schema`` reads them, or left as text: numbers by
``cast_schema``'s own polars cast (``cast_schema`` strips blanks first; a value with blanks does not cast
here), booleans ``true``/``false``/``1``/``0``, dates ``YYYY-MM-DD``, datetimes of the ISO 8601 forms
by :func:`lakegate.textcast.cast_text` (pyarrow, ~10x polars' ``strptime``); ``""`` is null. A row
holding any other value is yielded as text with its position, for the zone to cast or quarantine with
its raw text, as ``_csv`` does. ``tests/connectors/test_files_fast.py`` holds both paths equal.
"""

from __future__ import annotations

import codecs
import os
import re
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Final

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.files._bytecount import LF, carriage_returns, count, quotes
from connectors.files._rows import header_problem
from connectors.files._text import READ_ERRORS
from lakegate.columns import INGESTED_AT, LOAD_ID, POSITION, RUN_ID, SOURCE
from lakegate.dictionary import dictionary_columns
from lakegate.scalars import text_scalar, utc_microseconds_scalar
from lakegate.textcast import ARROW_TYPES, cast_text
from lakegate.vetting import ChunkVetter

CHUNK_BYTES = 6 << 20
"""Bytes of whole lines parsed at a time (about 48k rows of a 12-column file). Each chunk costs ~1.5 ms of
fixed work (about ten polars calls), so fewer chunks are faster: on the 5M-row benchmark, 6 MiB took
2.74-2.98 s against 2.81-3.13 s with 5 MiB, and peaked at 0.45-0.47 GB against 0.42-0.44 GB (before the
quotes were counted in blocks, 6 MiB peaked at up to 0.505 GB, over the 0.5 GB budget)."""
ROW_GROUP_ROWS = 100_000
"""Rows per row group of a load file. Only text columns with few distinct values are dictionary-encoded
(:func:`~lakegate.dictionary.dictionary_columns`), so groups need not be large; two of them are in memory
(one gathering, one being encoded)."""
FILE_BYTES = 128 << 20
"""Encoded bytes after which a load file (and the Delta data file it becomes) is finished: the size the
zones compact small files to (``zones.retention``). Each file is one Delta commit and one audit record
(~20 ms together on the 5M-row benchmark: 1M-row files cost its load step 0.09 s, these 0.04-0.06 s)."""


_POLARS_OF: Final[Mapping[pa.DataType, pl.DataType]] = {
    pa.int32(): pl.Int32(),
    pa.int64(): pl.Int64(),
    pa.float32(): pl.Float32(),
    pa.float64(): pl.Float64(),
    pa.bool_(): pl.Boolean(),
    pa.date32(): pl.Date(),
    pa.timestamp("us", "UTC"): pl.Datetime("us", "UTC"),
}
"""polars' type of each Arrow type textcast reads (spelled out: converting an empty array imports pandas)."""


def _polars_type(arrow: pa.DataType) -> pl.DataType:
    return _POLARS_OF[arrow]


_TYPES: Final[Mapping[str, pl.DataType]] = {
    **{name: _polars_type(t) for name, t in ARROW_TYPES.items()},
    "string": pl.String(),
}
"""Declared type names this path reads: those textcast casts (as the zone does), and text."""
_ARROW: Final[Mapping[pl.DataType, pa.DataType]] = {_polars_type(t): t for t in ARROW_TYPES.values()}
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# The ISO 8601 forms textcast reads (lakegate.textcast.ISO_8601), split into those without an offset (read
# as UTC) and those with one: a chunk types the forms of its first datetime, the others stay text (textcast
# reads a column of one kind only). [0-9]: polars' \d is any Unicode digit, pyarrow's an ASCII one.
_DAY, _TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}", r"[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
_OFFSET = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
_NAIVE, _AWARE = f"{_DAY}({_TIME})?$", f"{_DAY}{_TIME}{_OFFSET}"
_NAIVE_LENGTHS = [10, 16, 19, *range(21, 27)]
"""The lengths of the forms ``_NAIVE`` matches. Of the texts of these lengths, pyarrow's parse into a
timestamp without a zone reads exactly those (it refuses an offset, a ``Z``, a lone hour, a seventh decimal,
any other character); ``tests/connectors/test_files_fast.py`` holds the two equal."""
_AWARE_FORM = re.compile(_AWARE.replace("$", r"\Z"))  # (Python's $ also matches before a final \n)
_UTC = pa.timestamp("us", "UTC")
_PARSERS = 2  # chunks parsed at a time
_AHEAD = 3
"""Chunks read and handed to the parsers: the one waiting lets a parser that finishes start the next at
once (the file's read and the previous chunk's hand-over happen meanwhile)."""
_Read = tuple[pa.Table | None, pa.Table | None, bool]
"""A chunk read: its typed rows (with lineage), its rows left as text (with their lines), and whether the
zone's vetter found its typed rows clean."""
_TRUE, _FALSE = ["true", "1"], ["false", "0"]
_VALUE, _FORM = "\x00value", "\x00form"  # suffixes of working columns (no CSV header holds a NUL)


@dataclass(frozen=True)
class Stamp:
    """The lineage every row of a load package carries (the zone adopts a file only when it matches)."""

    load_id: str
    run_id: str
    ingested_at: datetime

    @classmethod
    def of(cls, load_id: str, run_id: str) -> Stamp:
        """The lineage of a package: ingested at the instant of its load id (as the zone reads it)."""
        at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(Decimal(load_id) * 1_000_000))
        return cls(load_id, run_id, at)


def polars_types(columns: Mapping[str, str]) -> dict[str, pl.DataType] | None:
    """The declared columns as polars types, or None when one is of a type this path does not read."""
    types = {}
    for name, type_name in columns.items():
        dtype = _TYPES.get("".join(type_name.split()).lower())
        if dtype is None:
            return None
        types[name] = dtype
    return types


@dataclass(frozen=True)
class FastPath:
    """What the caller grants this path: the rows' lineage, a folder on the load packages' filesystem
    for the Parquet files (dlt hard-links them into the package; the caller removes the folder), and the
    zone's vetter of typed chunks, if it lends one (see :mod:`lakegate.vetting`)."""

    stamp: Stamp
    folder: Path
    vetter: ChunkVetter | None = None


@dataclass(frozen=True)
class Imported:
    """A finished Parquet load file of typed rows, for dlt to import as it is."""

    path: str
    rows: int
    schema: pa.Schema

    @property
    def hints(self) -> pa.Table:
        """An empty table of the file's schema: dlt's column hints for the imported file (from no batches:
        ``Schema.empty_table`` imports pandas)."""
        return pa.Table.from_batches([], self.schema)


@dataclass(frozen=True)
class Rest:
    """Where this path stops: the bytes read from there on, and their first line."""

    data: bytes
    line: int


class FastReader:
    """Reads a CSV file's data lines chunk by chunk (see the module doc)."""

    def __init__(
        self,
        handle: IO[bytes],
        source: str,
        names: list[str],
        types: Mapping[str, pl.DataType],
        delimiter: str,
        fast: FastPath,
    ) -> None:
        self._handle = handle
        self._source = source
        self.names = names
        self._types = types
        self._delimiter = delimiter
        self._folder = fast.folder
        self._vetter = fast.vetter
        self._typed_names = [n for n in names if types.get(n, pl.String()) != pl.String]
        self._text_names = [n for n in names if n not in self._typed_names]
        self._datetimes = {n for n in self._typed_names if types[n] == pl.Datetime}
        self._values = [
            pl.col(f"{n}{_VALUE}").alias(n) if n in self._typed_names else pl.col(n) for n in names
        ]
        self._reads: dict[tuple[bool, ...], list[pl.Expr]] = {}
        self._strict = False
        """Whether a chunk's datetimes of a plain length were refused: chunks are then read strictly."""
        self._schema = arrow_schema(names, types)
        self._lineage = _Lineage(source, fast.stamp)
        self.unread: bytes | None = None
        """The bytes read for a header this path does not take (the caller reads the file from them)."""

    @classmethod
    def open(
        cls,
        handle: IO[bytes],
        source: str,
        delimiter: str,
        encoding: str,
        columns: Mapping[str, str],
        fast: FastPath | None,
    ) -> FastReader | None:
        """A reader positioned after the header, or None when the file's settings rule this path out.

        A header this path does not take (quotes, a byte-order mark, a declared column missing...) is
        kept in :attr:`unread` and :meth:`chunks` yields nothing.
        """
        types = polars_types(columns)
        if (
            fast is None
            or not types
            or codecs.lookup(encoding).name != "utf-8"
            or len(delimiter.encode()) != 1
            or delimiter in '"\r\n'
        ):
            return None
        try:
            first = handle.readline(1 << 20)
        except READ_ERRORS:
            first = b""
        try:
            names = first.decode("utf-8").removesuffix("\n").removesuffix("\r").split(delimiter)
        except UnicodeDecodeError:
            names = []
        reader = cls(handle, source, names, types, delimiter, fast)
        if (
            not first.endswith(b"\n")  # (also the file's end, or a read that failed)
            or any(c in first.removesuffix(b"\r\n") for c in (b'"', b"\r", codecs.BOM_UTF8))
            or len(names) < 2  # one column: an empty line would read as a value
            or header_problem(names)
            or not set(types) <= set(names)
            or len(set(names)) != len(names)
            or any(not name for name in names)
        ):
            reader.unread = first
        return reader

    def chunks(self) -> Iterator[Imported | pa.Table | Rest]:
        """Typed rows as load files, rows left as text as tables, and at the first chunk this path does
        not take, :class:`Rest` and nothing more.

        Two chunks are parsed at a time, on two threads (polars and numpy release the GIL), while one more
        waits: a chunk's first line is known before it is parsed, as a chunk is taken only when each line
        is one record.
        """
        if self.unread is not None:
            return
        line, more = 2, True
        ahead: deque[tuple[bytes, int, Future[_Read | None] | None]] = deque()
        with (
            ThreadPoolExecutor(_PARSERS, thread_name_prefix="lakegate-csv-fast") as parse,
            ThreadPoolExecutor(1, thread_name_prefix="lakegate-parquet") as encode,
        ):
            file = _File(self._folder / f"{self._source.rsplit('/', 1)[-1]}", encode, self._vetter)
            while True:
                while more and len(ahead) < _AHEAD:
                    data, whole = self._read_lines()
                    more = whole and data.endswith(b"\n")  # (else the last line, or none)
                    if not whole:  # a line longer than a chunk, or a read that failed
                        ahead.append((data, line, None))  # (the regions read on and report it)
                    elif not data:
                        break
                    else:
                        feeds = count(data, LF)
                        ahead.append((data, line, parse.submit(self.chunk, data, line, feeds)))
                        line += feeds + (not data.endswith(b"\n"))
                if not ahead:
                    break
                data, at, future = ahead.popleft()
                done = future.result() if future is not None else None
                if done is None:  # (or a chunk polars does not read alike)
                    for _, _, waiting in ahead:
                        if waiting is not None:
                            waiting.cancel()  # (the regions read them)
                    yield from file.close()
                    yield Rest(data + b"".join(later for later, _, _ in ahead), at)
                    return
                del data
                typed, text, clean = done
                if typed is not None:
                    yield from file.write(typed, clean=clean, last=not more)
                if text is not None:
                    yield text
            yield from file.close()

    def _read_lines(self) -> tuple[bytes, bool]:
        """About :data:`CHUNK_BYTES` of the file's next lines, the last one read to its end (one copy of the
        bytes: no tail is carried to the next chunk), and whether they are whole lines read well: False
        for a line longer than a chunk or a read that failed (the regions that read on from there meet the
        failure again and report it). b"" at the file's end."""
        data = b""
        try:
            data = self._handle.read(CHUNK_BYTES)
            if not data or data.endswith(b"\n"):
                return data, True
            rest = self._handle.readline(CHUNK_BYTES)
        except READ_ERRORS:
            return data, False
        return data + rest, len(rest) < CHUNK_BYTES or rest.endswith(b"\n")

    def chunk(self, data: bytes, line: int, feeds: int) -> _Read | None:
        """``data`` (whole lines from ``line`` on, ``feeds`` ``\\n`` bytes) as (typed rows, rows left as
        text), or None when this path cannot prove its reading."""
        # Quotes inside values come from "" in quoted ones (polars refuses any other): counted only then.
        quoted, escaped = quotes(data)
        names = self.names
        try:
            frame = pl.read_csv(
                data,
                has_header=False,
                schema=dict.fromkeys(names, pl.String()),
                separator=self._delimiter,
                empty_string_is_null=False,
                truncate_ragged_lines=False,
                raise_if_empty=False,
            )
        except pl.exceptions.PolarsError:
            return None
        sizes = frame.select(
            pl.sum_horizontal(pl.col(names).str.len_bytes().sum()).alias("bytes"),
            pl.sum_horizontal(pl.col(names).null_count()).alias("nulls"),
            (
                pl.sum_horizontal(pl.col(names).str.count_matches('"', literal=True).sum())
                if escaped
                else pl.lit(0)
            ).alias("quotes"),
        ).row(0)
        breaks = frame.height - (not data.endswith(b"\n"))  # one per record, none inside a value
        crs = carriage_returns(data, breaks)
        if feeds != breaks or crs is None:
            return None
        implied = sizes[0] + quoted - sizes[2] + frame.height * (len(names) - 1) + breaks + crs
        if sizes[1] or implied != len(data):
            return None
        return self._typed(frame, line)

    def _typed(self, text: pl.DataFrame, line: int, *, strict: bool = False) -> _Read | None:
        """The chunk's rows ``text`` typed; without ``strict``, a datetime without an offset is taken on
        its length and left to pyarrow's stricter parse, and if pyarrow refuses one, the chunk is read
        again with the regular expressions."""
        names, typed, strict = self.names, self._typed_names, strict or self._strict
        # One parallel pass reads each typed column and checks its form; a cheap second one combines them.
        aware = tuple(_aware(text, name, self._types[name]) for name in typed)
        frame = text.with_columns(
            pl.int_range(line, line + text.height, dtype=pl.Int64).alias(POSITION),
            *self._read_exprs(aware, strict),
        )
        # A column of the plain form without a null value needs no row check (the common case, and cheap:
        # null counts are kept with the column).
        got = frame.get_column
        doubtful = [n for n in typed if got(f"{n}{_VALUE}").null_count() or not got(f"{n}{_FORM}").all()]
        ok_rows = _typed_rows(frame, doubtful)
        good = frame.select(*self._values, POSITION)
        if ok_rows is not None:
            good = good.filter(ok_rows)
        table, clean = None, False
        if good.height:
            naive = set() if strict else {n for n, a in zip(typed, aware, strict=True) if not a}
            table = self._arrow(good, naive & self._datetimes)
            if table is None:
                if strict or not self._datetimes:
                    return None
                self._strict = True  # (a file with such values: its next chunks take the regex at once)
                return self._typed(text, line, strict=True)
            clean = self._vetter is not None and self._vetter.clean(good.select(self._text_names))
        left = None
        if ok_rows is not None:
            schema = self._schema
            as_text = pa.schema(
                [*(pa.field(n, pa.string()) for n in names), schema.field(SOURCE), schema.field(POSITION)]
            )
            rest = frame.select(pl.col(*names, POSITION).filter(~ok_rows))  # (~3x DataFrame.filter here)
            source = pl.lit(self._source, pl.String).alias(SOURCE)
            left = rest.with_columns(source).select(*names, SOURCE, POSITION).to_arrow().cast(as_text)
        return table, left, clean

    def _read_exprs(self, aware: tuple[bool, ...], strict: bool) -> list[pl.Expr]:
        """The expressions reading the typed columns, whose datetimes are ``aware`` or not (built once per
        combination)."""
        types = self._types
        exprs = self._reads.get((*aware, strict))
        if exprs is None:
            exprs = [
                e
                for name, a in zip(self._typed_names, aware, strict=True)
                for e in _read(name, types[name], a, strict)
            ]
            self._reads[(*aware, strict)] = exprs
        return exprs

    def _arrow(self, good: pl.DataFrame, naive: set[str]) -> pa.Table | None:
        """The typed rows ``good`` (values and position) as the load file's Arrow table with its lineage, or
        None when :func:`~lakegate.textcast.cast_text` refuses a datetime (forms mixed in a column,
        February 30; in a column of ``naive``, anything but the forms without an offset). Datetimes are
        read by pyarrow's ISO parser, ~10x polars' ``strptime``."""
        values = good.to_arrow()
        columns = []
        for name, field in zip(self.names, self._schema, strict=False):
            column = values.column(name)
            if name in self._datetimes:
                read = cast_text(column, _UTC, forms_checked=True, naive=name in naive)
                if read is None:
                    return None
                column = read
            columns.append(column.cast(field.type))
        source, load_id, run_id, ingested_at = self._lineage.columns(good.height)
        lineage = [source, values.column(POSITION), load_id, run_id, ingested_at]
        return pa.Table.from_arrays([*columns, *lineage], schema=self._schema)


class _Lineage:
    """The constant lineage columns of a reader's load files (source, load id, run id, ingested at): built
    once, each chunk takes a zero-copy slice."""

    def __init__(self, source: str, stamp: Stamp) -> None:
        self._values = (
            text_scalar(source),
            text_scalar(stamp.load_id),
            text_scalar(stamp.run_id),
            utc_microseconds_scalar(stamp.ingested_at),
        )
        self._columns: tuple[pa.Array, ...] = ()

    def columns(self, rows: int) -> tuple[pa.Array, ...]:
        """Source, load id, run id and ingested at, ``rows`` long (position is the chunk's own)."""
        built = self._columns
        if not built or len(built[0]) < rows:
            built = self._columns = tuple(pa.repeat(value, max(rows, 1 << 16)) for value in self._values)
        return tuple(column.slice(0, rows) for column in built)


class _File:
    """The load file being written: chunks gathered into row groups of :data:`ROW_GROUP_ROWS`, each
    encoded on a thread while the next chunks are parsed. A finished file of chunks all vetted clean is
    handed to the vetter."""

    def __init__(self, stem: Path, pool: ThreadPoolExecutor, vetter: ChunkVetter | None) -> None:
        self._stem = stem
        self._pool = pool
        self._vetter = vetter
        self._clean = True
        self._writer: pq.ParquetWriter | None = None
        self._pending: Future[None] | None = None
        self._group: list[pa.Table] = []
        self._path = ""
        self._rows = 0
        self._files = 0

    def write(self, table: pa.Table, *, clean: bool, last: bool) -> Iterator[Imported]:
        """Add ``table`` (``clean``: vetted so); yields the file once :data:`FILE_BYTES` of it are encoded.

        ``last``: the file's last chunks are being parsed; each is encoded at once, so that only the last
        one is left to encode when parsing ends (not a whole row group).
        """
        self._clean = self._clean and clean
        self._group.append(table)
        self._rows += table.num_rows
        if self._writer is not None and os.path.getsize(self._path) >= FILE_BYTES:
            yield from self.close()
        elif last or sum(t.num_rows for t in self._group) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._group:
            return
        group = pa.concat_tables(self._group)
        self._group = []
        if self._writer is None:
            self._files += 1
            self._path = f"{self._stem}.{self._files}.parquet"
            self._writer = pq.ParquetWriter(
                self._path, group.schema, compression="snappy", use_dictionary=dictionary_columns(group)
            )
        if self._pending is not None:
            self._pending.result()
        self._pending = self._pool.submit(self._writer.write_table, group, row_group_size=group.num_rows)

    def close(self) -> Iterator[Imported]:
        """Finish the file being written, if any, and yield it."""
        self._flush()
        if self._writer is None:
            return
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        schema = self._writer.schema
        self._writer.close()
        self._writer = None
        if self._clean and self._vetter is not None:
            self._vetter.vetted(self._path)
        yield Imported(self._path, self._rows, schema)
        self._rows, self._clean = 0, True


def arrow_schema(names: list[str], types: Mapping[str, pl.DataType]) -> pa.Schema:
    """The Arrow schema of a typed chunk's load file: the columns, then source, position and lineage."""
    fields = [pa.field(n, _ARROW.get(types.get(n, pl.String()), pa.string())) for n in names]
    return pa.schema(
        [
            *fields,
            pa.field(SOURCE, pa.string()),
            pa.field(POSITION, pa.int64()),
            pa.field(LOAD_ID, pa.string()),
            pa.field(RUN_ID, pa.string()),
            pa.field(INGESTED_AT, pa.timestamp("us", "UTC")),
        ]
    )


def _typed_rows(frame: pl.DataFrame, doubtful: list[str]) -> pl.Series | None:
    """Which rows every ``doubtful`` column read (a value of its form, or empty), or None when all did.

    Series operations: on a chunk, the expression engine's set-up costs more than the comparisons.
    """
    ok: pl.Series | None = None
    got = frame.get_column
    for name in doubtful:
        empty = got(name).str.len_bytes() == 0
        read = got(f"{name}{_FORM}") & (got(f"{name}{_VALUE}").is_not_null() | empty)
        ok = read if ok is None else ok & read
    return None if ok is None or ok.all() else ok


def _aware(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> bool:
    """Whether the first datetime of column ``name`` is of a form with an offset (False for other columns;
    a date alone ends in what looks like one, ``-01``)."""
    if not isinstance(dtype, pl.Datetime):
        return False
    first = next((value for value in frame.get_column(name).head(64).to_list() if value), "")
    return _AWARE_FORM.match(first) is not None  # (Python: three polars calls cost ~1 ms)


def _read(name: str, dtype: pl.DataType, aware: bool = False, strict: bool = True) -> tuple[pl.Expr, pl.Expr]:
    """The value of ``name`` as ``dtype`` (null when empty or not read), and whether it is empty or of a
    plain form (see the module doc); a datetime's value stays its text, for pyarrow (which reads ``""`` as
    null). Without ``strict``, a datetime without an offset is of its form when of one of its lengths."""
    raw = pl.col(name)
    empty = raw == ""
    value: pl.Expr
    if dtype == pl.Boolean:  # true/false/1/0 (comparisons: ~8x replace_strict's mapping)
        value = pl.when(raw.is_in(_TRUE)).then(True).when(raw.is_in(_FALSE)).then(False)
        form = pl.lit(True)
    elif dtype == pl.Date:
        form = empty | raw.str.contains(_DATE)
        value = raw.str.to_date("%Y-%m-%d", strict=False)
    elif isinstance(dtype, pl.Datetime) and not (aware or strict):
        form = empty | raw.str.len_bytes().is_in(_NAIVE_LENGTHS)  # (~5x cheaper than the regex)
        value = raw
    elif isinstance(dtype, pl.Datetime):
        form = empty | raw.str.contains(_AWARE if aware else _NAIVE)
        value = raw
    else:  # cast_schema's own parse (of the stripped text): a value it takes is read alike
        form = pl.lit(True)
        value = raw.cast(dtype, strict=False)
    return value.alias(f"{name}{_VALUE}"), form.alias(f"{name}{_FORM}")
