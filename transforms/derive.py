"""Fields derived in flight: ``url_parts`` (host and path of URLs) and ``event_date`` (date of timestamps)."""

from __future__ import annotations

from typing import Final

import polars as pl

from lakegate import columns
from transforms._types import TransformContext, canonical_type_name

_SCHEME: Final = r"^[a-zA-Z][a-zA-Z0-9+.-]*://"
_HOST: Final = _SCHEME + r"(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)"
_PATH: Final = _SCHEME + r"[^/?#]*([^?#]*)"


def url_parts(lf: pl.LazyFrame, ctx: TransformContext) -> pl.LazyFrame:
    """Add ``<col>_host`` (lower case, without user info or port) and ``<col>_path`` (without query or
    fragment; ``/`` when empty) for each text column named ``url`` or ending in ``_url``.

    A value that is not an absolute URL (``scheme://host...``) gets null parts; the row is kept as is.
    ``ctx`` is not used.
    """
    names = [
        n
        for n, dtype in lf.collect_schema().items()
        if (n == "url" or n.endswith("_url")) and dtype == pl.String and not n.startswith(columns.PREFIX)
    ]
    parts = []
    for name in names:
        url = pl.col(name).str.strip_chars()
        host = url.str.extract(_HOST, 1).str.to_lowercase()
        path = url.str.extract(_PATH, 1)
        parts += [
            pl.when(host != "").then(host).alias(f"{name}_host"),
            pl.when(path == "").then(pl.lit("/")).otherwise(path).alias(f"{name}_path"),
        ]
    return lf.with_columns(parts)


def event_date(lf: pl.LazyFrame, ctx: TransformContext) -> pl.LazyFrame:
    """Add ``<col>_date`` (the UTC calendar date) for each column declared ``datetime`` in ``ctx.schema``.

    Runs after typing (lakegate casts declared columns first); a null timestamp gives a null date.
    """
    schema = lf.collect_schema()
    names = [
        n
        for n, type_name in ctx.schema.items()
        if canonical_type_name(type_name) == "datetime" and isinstance(schema.get(n), pl.Datetime)
    ]
    return lf.with_columns(_utc(pl.col(n), schema[n]).dt.date().alias(f"{n}_date") for n in names)


def _utc(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    zoned = isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    return column.dt.convert_time_zone("UTC") if zoned else column  # naive: taken as UTC already
