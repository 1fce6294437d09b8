"""Typing parsed CSV rows with the dataset's declared column types while the file is read.

The zone destination types text anyway; typing here lets a clean file arrive at the zone already in its
final form, so its load file can become the Delta data file as it is (no second read and encode). Values are
read by :func:`lakegate.textcast.cast_text`, which reads text exactly as the zone's ``cast_schema`` does or
refuses it. A row holding a value it refuses stays text, as received, and the zone casts it (or quarantines
it with its raw text): a bad value costs its own row the fast path, never its neighbours.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from lakegate.textcast import ISO_8601, arrow_type, cast_text

_BOOL_TEXT = pa.array(["true", "false", "1", "0"])
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_NUMBERS = {
    pa.int32(): pl.Int32(),
    pa.int64(): pl.Int64(),
    pa.float32(): pl.Float32(),
    pa.float64(): pl.Float64(),
}


def arrow_types(columns: Mapping[str, str]) -> dict[str, pa.DataType]:
    """The declared columns this module can type (text and decimals are left to the zone)."""
    return {name: t for name, type_name in columns.items() if (t := arrow_type(type_name)) is not None}


def split_typed(table: pa.Table, types: Mapping[str, pa.DataType]) -> tuple[pa.Table | None, pa.Table | None]:
    """``table`` (text columns) as (rows typed, rows left as text); either part may be None.

    A region whose declared columns all cast is typed whole; otherwise the rows whose values look readable
    are cast, and the others stay text. When that cast still fails, the whole region stays text.
    """
    if not types or any(name not in table.column_names for name in types):
        return None, table  # a column is missing: the zone adds it (and types what is there)
    typed, failing = _cast_all(table, types)
    if typed is not None:
        return typed, None
    readable = None
    for name in failing:
        ok = _looks_readable(table.column(name), types[name])
        readable = ok if readable is None else pc.and_(readable, ok)
    assert readable is not None
    good = table.filter(readable)
    rest = table.filter(pc.invert(readable))
    typed, _ = _cast_all(good, types)
    if typed is None:
        return None, table
    return (typed if typed.num_rows else None), (rest if rest.num_rows else None)


def _cast_all(table: pa.Table, types: Mapping[str, pa.DataType]) -> tuple[pa.Table | None, list[str]]:
    failing: list[str] = []
    for name, target in types.items():
        index = table.column_names.index(name)
        cast = cast_text(table.column(index), target)
        if cast is None:
            failing.append(name)
        elif not failing:
            table = table.set_column(index, name, cast)
    return (None if failing else table), failing


def _looks_readable(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """Per row: whether the value has a form :func:`cast_text` may take (it still has the last word)."""
    empty = pc.fill_null(pc.equal(column, ""), True)
    if pa.types.is_boolean(target):
        ok = pc.is_in(pc.utf8_lower(column), value_set=_BOOL_TEXT)
    elif pa.types.is_date(target):
        ok = pc.match_substring_regex(column, _DATE)
    elif pa.types.is_timestamp(target):
        ok = pc.match_substring_regex(column, ISO_8601)
    else:  # numbers: what polars reads, without surrounding blanks or a hexadecimal x
        parsed = pl.Series(column.combine_chunks()).cast(_NUMBERS[target], strict=False)
        ok = pc.and_(
            pa.array(parsed.is_not_null().to_arrow()),
            pc.invert(pc.match_substring_regex(column, r"^\s|\s$|[xX]")),
        )
    return pc.or_(pc.fill_null(ok, False), empty)
