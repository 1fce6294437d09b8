"""``cdc_apply``: a batch of change rows (``_lakegate_op``, ordered by ``_lakegate_position``) reduced to
what the current-state table needs.

For each primary key only its latest change survives (by position: an older change never wins); deletes
survive as ``d`` rows so the curated merge can remove the key; everything before the batch's last
truncate is dropped and the truncate row itself is kept so the merge can empty the table. Columns the
source did not resend (unchanged TOAST values, listed in ``_lakegate_unchanged``) are filled from the
key's earlier change in the batch; those with no earlier change stay listed, and the merge keeps the
stored value for them.
"""

from __future__ import annotations

import polars as pl

from lakegate.columns import OP, OP_TRUNCATE, POSITION, PREFIX, UNCHANGED
from transforms._types import TransformContext, TransformError


def cdc_apply(lf: pl.LazyFrame, ctx: TransformContext) -> pl.LazyFrame:
    """Keep the latest change per ``ctx.primary_key`` by position, after the last truncate.

    Raises:
        TransformError: no primary key, or the frame lacks the change columns (op, position).
    """
    if not ctx.primary_key:
        raise TransformError("cdc_apply needs the pipeline's primary_key to know which rows are one record")
    schema = lf.collect_schema()
    missing = [c for c in (*ctx.primary_key, OP, POSITION) if c not in schema]
    if missing:
        raise TransformError(f"cdc_apply: columns {missing} are not in the frame; is the source a CDC one?")
    lf = lf.sort(POSITION)
    truncated_at = pl.col(POSITION).filter(pl.col(OP) == OP_TRUNCATE).max()
    lf = lf.filter(truncated_at.is_null() | (pl.col(POSITION) >= truncated_at))
    if UNCHANGED in schema:
        lf = fill_unchanged(lf, [c for c in schema if not c.startswith(PREFIX)], list(ctx.primary_key))
    is_latest = pl.col(POSITION) == pl.col(POSITION).max().over(ctx.primary_key)
    return lf.filter((pl.col(OP) == OP_TRUNCATE) | is_latest)


def fill_unchanged(lf: pl.LazyFrame, data: list[str], key: list[str]) -> pl.LazyFrame:
    """``lf`` (sorted by position) with the ``data`` columns listed in ``_lakegate_unchanged`` taken from the
    key's earlier change; those with none stay listed."""
    listed_in = pl.concat_str(pl.lit(","), pl.col(UNCHANGED), pl.lit(",")).fill_null("")
    filled: list[pl.Expr] = []
    still: list[pl.Expr] = []
    for name in data:
        listed = listed_in.str.contains(f",{name},", literal=True)
        group = (~listed).cum_sum().over(key)  # rows since the key's last complete value of the column
        filled.append(
            pl.when(listed & (group > 0))
            .then(pl.col(name).first().over([*key, group]))
            .otherwise(pl.col(name))
        )
        still.append(pl.when(listed & (group == 0)).then(pl.lit(name)))
    remaining = pl.concat_str(still, separator=",", ignore_nulls=True)
    return lf.with_columns(*filled, pl.when(remaining != "").then(remaining).alias(UNCHANGED))
