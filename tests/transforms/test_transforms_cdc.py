"""cdc_apply: the latest change per key by position wins; deletes and truncates survive for the merge."""

from __future__ import annotations

import polars as pl
import pytest

from lakegate.columns import OP, POSITION, UNCHANGED
from transforms import TransformContext, get_transform
from transforms._types import TransformError

CTX = TransformContext(primary_key=("id",))


def _apply(rows: list[tuple[int | None, str | None, str, int, str | None]]) -> list[tuple[object, ...]]:
    frame = pl.DataFrame(rows, schema=["id", "v", OP, POSITION, UNCHANGED], orient="row")
    out = get_transform("cdc_apply")(frame.lazy(), CTX).collect()
    return [tuple(r) for r in out.sort(POSITION).select("id", "v", OP, UNCHANGED).iter_rows()]


def test_latest_by_position_wins_whatever_the_arrival_order() -> None:
    rows = [
        (1, "new", "u", 30, None),
        (1, "old", "u", 20, None),
        (2, "x", "c", 10, None),
        (2, None, "d", 40, None),
    ]
    assert _apply(rows) == [(1, "new", "u", None), (2, None, "d", None)]


def test_a_truncate_drops_everything_before_it() -> None:
    rows = [(1, "a", "c", 10, None), (None, None, "t", 20, None), (2, "b", "c", 30, None)]
    assert _apply(rows) == [(None, None, "t", None), (2, "b", "c", None)]


def test_unchanged_values_come_from_the_keys_earlier_change_or_stay_listed() -> None:
    rows = [(1, "doc", "c", 10, None), (1, None, "u", 20, "v"), (2, None, "u", 30, "v")]
    assert _apply(rows) == [(1, "doc", "u", None), (2, None, "u", "v")]


def test_needs_a_key_and_the_change_columns() -> None:
    frame = pl.DataFrame({"id": [1]}).lazy()
    with pytest.raises(TransformError, match="primary_key"):
        get_transform("cdc_apply")(frame, TransformContext())
    with pytest.raises(TransformError, match="CDC"):
        get_transform("cdc_apply")(frame, CTX)
