"""``scd2``: change rows (``_lakegate_op``, ``_lakegate_position``, ``_lakegate_committed_at``) turned into
type-2 history: one row per version of a key with ``valid_from``, ``valid_to`` and ``is_current``.

Versions of a key are ordered by position; a version is valid from its commit time (null for snapshot
reads: it existed before replication began) until the key's next change, a delete or a truncate closes
it. Deletes and truncates produce no version. The history is that of the frame it is given: apply it to
the whole change table (raw), or to the current versions of a stored history followed by the new changes
(what a pipeline's ``history: scd2`` does: closed versions come back updated, merged by key and position).
"""

from __future__ import annotations

from typing import Final

import polars as pl

from lakegate.columns import COMMITTED_AT, OP, OP_DELETE, OP_TRUNCATE, POSITION, PREFIX, UNCHANGED
from transforms._types import TransformContext, TransformError
from transforms.cdc import fill_unchanged

VALID_FROM: Final = "valid_from"
VALID_TO: Final = "valid_to"
IS_CURRENT: Final = "is_current"

_NEXT: Final = f"{PREFIX}next_position"
_TRUNCATED: Final = f"{PREFIX}truncated_position"
_TRUNCATED_AT: Final = f"{PREFIX}truncated_at"


def scd2(lf: pl.LazyFrame, ctx: TransformContext) -> pl.LazyFrame:
    """One row per version of each ``ctx.primary_key``, with its validity interval.

    Raises:
        TransformError: no primary key, or the frame lacks the change columns (op, position, commit time).
    """
    if not ctx.primary_key:
        raise TransformError("scd2 needs the pipeline's primary_key to know which rows are one record")
    key = list(ctx.primary_key)
    schema = lf.collect_schema()
    missing = [c for c in (*key, OP, POSITION, COMMITTED_AT) if c not in schema]
    if missing:
        raise TransformError(f"scd2: columns {missing} are not in the frame; is the source a CDC one?")
    lf = lf.sort(POSITION)
    if UNCHANGED in schema:
        lf = fill_unchanged(lf, [c for c in schema if not c.startswith(PREFIX)], key)
    truncates = lf.filter(pl.col(OP) == OP_TRUNCATE).select(
        pl.col(POSITION).alias(_TRUNCATED), pl.col(COMMITTED_AT).alias(_TRUNCATED_AT)
    )
    changes = lf.filter(pl.col(OP) != OP_TRUNCATE).with_columns(
        pl.col(POSITION).shift(-1).over(key).alias(_NEXT),
        pl.col(COMMITTED_AT).shift(-1).over(key).alias(VALID_TO),
    )
    # The first truncate after each change closes it unless the key changed again before.
    versions = changes.join_asof(truncates, left_on=POSITION, right_on=_TRUNCATED, strategy="forward")
    truncated = pl.col(_TRUNCATED).is_not_null() & (
        pl.col(_NEXT).is_null() | (pl.col(_TRUNCATED) < pl.col(_NEXT))
    )
    return (
        versions.with_columns(
            pl.col(COMMITTED_AT).alias(VALID_FROM),
            pl.when(truncated).then(pl.col(_TRUNCATED_AT)).otherwise(pl.col(VALID_TO)).alias(VALID_TO),
            (pl.col(_NEXT).is_null() & pl.col(_TRUNCATED).is_null()).alias(IS_CURRENT),
        )
        .filter(pl.col(OP) != OP_DELETE)
        .drop(_NEXT, _TRUNCATED, _TRUNCATED_AT)
    )
