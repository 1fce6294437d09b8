"""Typing parsed CSV rows with the dataset's declared column types while the file is read.

The zone destination types text anyway; typing here lets a clean file arrive at the zone already in its
final form, so its load file can become the Delta data file as it is (no second read and encode). Values are
read by :func:`lakegate.textcast.cast_text`, which reads text exactly as the zone's ``cast_schema`` does or
refuses it. A row holding a value it refuses stays text, as received, and the zone casts it (or quarantines
it with its raw text): a bad value costs its own row the fast path, never its neighbours.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from lakegate.textcast import ISO_8601, arrow_type, cast_text

_BOOL_TEXT = ["true", "false", "1", "0"]  # (an Arrow array is made when used: pa.array imports pandas)
_DATE = r"^\d{4}-\d{2}-\d{2}$"
# The plain decimal forms of numbers; others (``+5``, `` 5``, ``1_000``) go to the zone's cast_schema as text.
_INTEGER = r"^-?[0-9]+$"
_FLOAT = r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$"


def arrow_types(columns: Mapping[str, str]) -> dict[str, pa.DataType]:
    """The declared columns this module can type (text and decimals are left to the zone)."""
    return {name: t for name, type_name in columns.items() if (t := arrow_type(type_name)) is not None}


def split_typed(table: pa.Table, types: Mapping[str, pa.DataType]) -> tuple[pa.Table | None, pa.Table | None]:
    """``table`` (text columns) as (rows typed, rows left as text); either part may be None.

    A region whose declared columns all cast is typed whole. Otherwise the rows whose values in the
    columns that failed look readable are kept: the columns that did cast are filtered, the ones that
    failed are cast again on those rows only; the other rows stay text. When that cast still fails, the
    whole region stays text.
    """
    if not types or any(name not in table.column_names for name in types):
        return None, table  # a column is missing: the zone adds it (and types what is there)
    cast: dict[str, pa.ChunkedArray | pa.Array] = {}
    readable = None
    for name, target in types.items():
        column = table.column(name)
        # A datetime column's ISO 8601 check is the costly part of its cast: done once, it is also its mask.
        ok = _looks_readable(column, target) if pa.types.is_timestamp(target) else None
        checked = ok is not None
        typed_column = (
            cast_text(column, target, forms_checked=checked) if not checked or pc.all(ok).as_py() else None
        )
        if typed_column is not None:
            cast[name] = typed_column
            continue
        ok = _looks_readable(column, target) if ok is None else ok
        readable = ok if readable is None else pc.and_(readable, ok)
    if readable is None:
        return _with(table, cast), None
    good, rest = table.filter(readable), table.filter(pc.invert(readable))
    for name, target in types.items():
        if name in cast:
            cast[name] = pc.filter(cast[name], readable)
        elif (
            typed_column := cast_text(good.column(name), target, forms_checked=pa.types.is_timestamp(target))
        ) is not None:
            cast[name] = typed_column
        else:
            return None, table
    return (_with(good, cast) if good.num_rows else None), (rest if rest.num_rows else None)


def _with(table: pa.Table, columns: Mapping[str, pa.ChunkedArray | pa.Array]) -> pa.Table:
    for name, column in columns.items():
        table = table.set_column(table.column_names.index(name), name, column)
    return table


def _looks_readable(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """Per row: whether the value has a form :func:`cast_text` may take (it still has the last word)."""
    empty = pc.fill_null(pc.equal(column, ""), True)
    if pa.types.is_boolean(target):
        ok = pc.is_in(pc.utf8_lower(column), value_set=pa.array(_BOOL_TEXT, pa.string()))
    elif pa.types.is_date(target):
        ok = pc.match_substring_regex(column, _DATE)
    elif pa.types.is_timestamp(target):
        ok = pc.match_substring_regex(column, ISO_8601)
    else:
        ok = pc.match_substring_regex(column, _INTEGER if pa.types.is_integer(target) else _FLOAT)
    return pc.or_(pc.fill_null(ok, False), empty)
