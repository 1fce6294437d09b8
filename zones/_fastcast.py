"""A fast path in front of ``transforms.cast_schema`` for the write path.

pyarrow's vectorised parsers are 3 to 30 times faster than the general polars parsing in ``cast_schema``, but
accept a narrower (and for integers a slightly different) set of inputs. So a column is cast here only
when pyarrow takes *every* value of the batch and would read each exactly as ``cast_schema`` does;
otherwise the column is left to ``cast_schema``, which also reports the values that do not cast. A test
holds both paths to the same results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from transforms import dtype_of

_NAIVE_TIMESTAMP = pa.timestamp("us")
# The forms cast_schema reads: a date, or a date and hh:mm[:ss[.ffffff]] with an optional offset.
_ISO_8601 = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
_OFFSET = re.compile(r"(Z|[+-]\d\d(:?\d\d)?)$")


def fast_cast(table: pa.Table, schema: Mapping[str, str]) -> tuple[pa.Table, dict[str, str]]:
    """Cast the declared string columns pyarrow parses exactly as ``cast_schema`` would.

    Returns:
        The table with those columns cast, and the declarations still to be cast by ``cast_schema``.
    """
    left: dict[str, str] = {}
    for name, type_name in schema.items():
        if name not in table.column_names:
            left[name] = type_name
            continue
        column = table.column(name)
        target = pl.Series(name, [], dtype=dtype_of(type_name)).to_arrow().type
        if pa.types.is_string(column.type) and _is_text(target):
            continue  # text declared as text stays exactly as received, as in cast_schema
        cast = _try(column, target) if pa.types.is_string(column.type) else None
        if cast is None:
            left[name] = type_name
        else:
            table = table.set_column(table.column_names.index(name), name, cast)
    return table, left


def _is_text(arrow_type: pa.DataType) -> bool:
    return arrow_type in (pa.string(), pa.large_string(), pa.string_view())


def _try(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray | None:
    values = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)  # "" means null
    if pa.types.is_integer(target) and any(pc.any(pc.match_substring(values, x)).as_py() for x in "xX"):
        return None  # pyarrow reads 0x10 as 16; cast_schema refuses hexadecimal
    try:
        if pa.types.is_timestamp(target) and target.tz is not None:
            return _timestamp(values, target)
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _timestamp(values: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """ISO 8601 with an offset (or Z) converts to UTC; without one it is read as UTC, like cast_schema.

    A failed parse costs as much as a good one, so the first value picks which form to try first.
    """
    if not pc.all(pc.match_substring_regex(values, _ISO_8601)).as_py():
        raise pa.ArrowInvalid("not the ISO 8601 forms cast_schema reads")  # e.g. hours without minutes
    first = next(iter(pc.drop_null(values.slice(0, 16)).to_pylist()), "")
    first_form, second_form = (_aware, _naive) if _OFFSET.search(first) else (_naive, _aware)
    try:
        return first_form(values, target)
    except pa.ArrowInvalid:
        return second_form(values, target)


def _aware(values: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    return pc.cast(values, target)


def _naive(values: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    return pc.cast(pc.cast(values, _NAIVE_TIMESTAMP), target)
