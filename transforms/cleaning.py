"""``normalize_strings``: trim string columns and turn empty strings into nulls."""

from __future__ import annotations

from typing import Final

import polars as pl

from lakegate import columns
from transforms._types import TransformContext

# Columns lakegate adds itself (such as the cast errors) are bookkeeping, not data to clean.
_INTERNAL_PREFIX: Final = columns.PREFIX


def normalize_strings(lf: pl.LazyFrame, ctx: TransformContext) -> pl.LazyFrame:
    """Strip leading and trailing whitespace from every String column and make empty results null.

    Reserved ``_lakegate_*`` columns and columns of other types are left untouched; ``ctx`` is
    not used.
    """
    columns = [
        name
        for name, dtype in lf.collect_schema().items()
        if dtype == pl.String and not name.startswith(_INTERNAL_PREFIX)
    ]
    stripped = pl.col(columns).str.strip_chars()
    return lf.with_columns(pl.when(stripped != "").then(stripped))
