"""Which text columns of a Parquet file get a dictionary: only those with few distinct values (a country, a
status, a constant lineage column). pyarrow's default (a dictionary for every column, given up once it
outgrows 1 MiB) hashes every id, product name or free text before it falls back to plain encoding.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

DICTIONARY_SAMPLE = 1_000
"""Rows of a stream's first batch that decide which text columns get a dictionary (at most 1/10 distinct)."""
_TEXT = (pa.string(), pa.large_string())


def dictionary_columns(data: pa.RecordBatch | pa.Table) -> list[str]:
    """The text columns of ``data`` worth a parquet dictionary: few distinct values among its first rows
    (a column already dictionary-encoded keeps one)."""
    sample = data.slice(0, DICTIONARY_SAMPLE)
    limit = max(1, sample.num_rows // 10)
    coded = []
    for field, column in zip(sample.schema, sample.columns, strict=True):
        if pa.types.is_dictionary(field.type):
            if field.type.value_type in _TEXT:
                coded.append(field.name)
        elif field.type in _TEXT and pc.count_distinct(column).as_py() <= limit:
            coded.append(field.name)
    return coded
