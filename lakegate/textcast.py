"""Text read as typed values by pyarrow, exactly as ``transforms.cast_schema`` reads it, or not at all.

pyarrow's vectorised parsers are 3 to 30 times faster than the general polars parsing in ``cast_schema`` but
accept a narrower (and for integers a slightly different) set of inputs. :func:`cast_text` therefore casts a
column only when pyarrow takes *every* value and reads each exactly as ``cast_schema`` does; otherwise it
returns None and the caller leaves the column to ``cast_schema`` (which also names the values that do not
cast). Shared by the ``files`` connector (typing CSV while it parses) and the zone destination, so both read
text the same way; ``tests/zones/test_fastcast.py`` holds it equal to ``cast_schema``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from lakegate.scalars import text_scalar

ARROW_TYPES: Final[Mapping[str, pa.DataType]] = MappingProxyType(
    {
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "datetime": pa.timestamp("us", "UTC"),
    }
)
"""Declared type names (``transforms.TYPE_NAMES``) pyarrow can read, and the Arrow type each is stored as."""

_NAIVE_TIMESTAMP = pa.timestamp("us")
ISO_8601: Final = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
"""The ISO 8601 forms cast_schema reads: a date, or a date and hh:mm[:ss[.ffffff]] with an optional offset."""
_OFFSET = re.compile(r"(Z|[+-]\d\d(:?\d\d)?)$")
_EMPTY_TEXT, _NULL_TEXT = text_scalar(""), text_scalar(None)


def arrow_type(type_name: str) -> pa.DataType | None:
    """The Arrow type a declared type name is read into here, or None (text, decimals: not cast here)."""
    return ARROW_TYPES.get("".join(type_name.split()).lower())


def cast_text(
    column: pa.ChunkedArray | pa.Array,
    target: pa.DataType,
    *,
    forms_checked: bool = False,
    naive: bool = False,
) -> pa.ChunkedArray | pa.Array | None:
    """``column`` (text) as ``target``, or None when some value is not one pyarrow reads as cast_schema does.

    The empty string is null, as in cast_schema. ``forms_checked``: the caller has already matched every
    non-empty value against :data:`ISO_8601` (a datetime ``target``), or, with ``naive``, knows each is
    of the length of one of its forms without an offset, the only ones then read; so that pass is skipped.
    """
    values = pc.if_else(pc.equal(column, _EMPTY_TEXT), _NULL_TEXT, column)
    if pa.types.is_integer(target) and any(pc.any(pc.match_substring(values, x)).as_py() for x in "xX"):
        return None  # pyarrow reads 0x10 as 16; cast_schema refuses hexadecimal
    try:
        if pa.types.is_timestamp(target) and target.tz is not None:
            return _naive(values, target) if naive else _timestamp(values, target, forms_checked)
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _timestamp(
    values: pa.ChunkedArray | pa.Array, target: pa.DataType, forms_checked: bool
) -> pa.ChunkedArray | pa.Array:
    """ISO 8601 with an offset (or Z) converts to UTC; without one it is read as UTC, like cast_schema.

    A failed parse costs as much as a good one, so the first value picks which form to try first.
    """
    if not forms_checked and not pc.all(pc.match_substring_regex(values, ISO_8601)).as_py():
        raise pa.ArrowInvalid("not the ISO 8601 forms cast_schema reads")  # e.g. hours without minutes
    first = next(iter(pc.drop_null(values.slice(0, 16)).to_pylist()), "")
    first_form, second_form = (_aware, _naive) if _OFFSET.search(first) else (_naive, _aware)
    try:
        return first_form(values, target)
    except pa.ArrowInvalid:
        return second_form(values, target)


def _aware(values: pa.ChunkedArray | pa.Array, target: pa.DataType) -> pa.ChunkedArray | pa.Array:
    return pc.cast(values, target)


def _naive(values: pa.ChunkedArray | pa.Array, target: pa.DataType) -> pa.ChunkedArray | pa.Array:
    return pc.cast(pc.cast(values, _NAIVE_TIMESTAMP), target)
