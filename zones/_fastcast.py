"""A fast path in front of ``transforms.cast_schema`` for the write path (pyarrow; see ``lakegate.textcast``).

A declared column is cast here only when pyarrow takes *every* value of the batch and reads each exactly as
``cast_schema`` does; otherwise it is left to ``cast_schema``, which also reports the values that do not
cast. A column that already has its declared type (the ``files`` connector types CSV as it parses) is kept
as it is. A test holds both paths to the same results.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
import pyarrow as pa

from lakegate.textcast import cast_text
from transforms import dtype_of


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
        if column.type == target or (_is_text(column.type) and _is_text(target)):
            continue  # already typed (or text declared as text): kept exactly as received, as in cast_schema
        cast = cast_text(column, target) if pa.types.is_string(column.type) else None
        if cast is None:
            left[name] = type_name
        else:
            table = table.set_column(table.column_names.index(name), name, cast)
    return table, left


def _is_text(arrow_type: pa.DataType) -> bool:
    return arrow_type in (pa.string(), pa.large_string(), pa.string_view())
