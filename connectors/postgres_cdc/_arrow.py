"""Columns of PostgreSQL text values -> Arrow arrays, one vectorised cast per column and batch.

Snapshot rows (``SELECT col::text``) and pgoutput changes (text format) arrive as the same text, so both
go through here and agree on types. Types without a lossless Arrow cast from text (numeric, json,
intervals, arrays, ...) stay text; declare their type in the pipeline's ``columns`` to type them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),  # bool
    20: pa.int64(),  # int8
    21: pa.int16(),  # int2
    23: pa.int32(),  # int4
    700: pa.float32(),  # float4
    701: pa.float64(),  # float8
    1082: pa.date32(),  # date
    1114: pa.timestamp("us"),  # timestamp
    1184: pa.timestamp("us", "UTC"),  # timestamptz
}


def arrow_type(type_oid: int) -> pa.DataType:
    """The Arrow type a column of PostgreSQL type ``type_oid`` lands as."""
    return _TYPES.get(type_oid, pa.string())


def column(values: Sequence[str | None], type_oid: int) -> pa.Array:
    """Text values (``None`` = SQL NULL) as an Arrow array of the column's type."""
    text = pa.array(values, pa.string())
    target = arrow_type(type_oid)
    if target == pa.string():
        return text
    if target == pa.bool_():
        return pc.equal(text, "t")
    if pa.types.is_floating(target):  # PostgreSQL spells them Infinity/-Infinity/NaN
        text = pc.replace_substring_regex(text, "^(-?)Infinity$", r"\1inf")
    return text.cast(target)
