"""scd2: one version per change of a key, closed by the key's next change, a delete or a truncate."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from lakegate.columns import COMMITTED_AT, OP, POSITION, UNCHANGED
from transforms import TransformContext, get_transform
from transforms._types import TransformError

CTX = TransformContext(primary_key=("id",))
Row = tuple[int | None, str | None, str, int, int | None]


def _at(hour: int | None) -> datetime | None:
    return None if hour is None else datetime(2026, 11, 1, hour, tzinfo=UTC)


def _history(rows: list[Row], unchanged: list[str | None] | None = None) -> list[tuple[object, ...]]:
    frame = pl.DataFrame(
        [(i, v, op, pos, _at(h)) for i, v, op, pos, h in rows],
        schema={
            "id": pl.Int64,
            "v": pl.String,
            OP: pl.String,
            POSITION: pl.Int64,
            COMMITTED_AT: pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    if unchanged is not None:
        frame = frame.with_columns(pl.Series(UNCHANGED, unchanged, pl.String))
    out = get_transform("scd2")(frame.lazy(), CTX).collect()
    return [
        tuple(r)
        for r in out.sort("id", POSITION)
        .select("id", "v", "valid_from", "valid_to", "is_current")
        .iter_rows()
    ]


def test_versions_are_ordered_by_position_whatever_the_arrival_order() -> None:
    rows: list[Row] = [
        (1, "c", "u", 30, 3),
        (1, "a", "r", 10, None),
        (1, "b", "u", 20, 2),
        (2, "x", "c", 15, 1),
    ]
    assert _history(rows) == [
        (1, "a", None, _at(2), False),
        (1, "b", _at(2), _at(3), False),
        (1, "c", _at(3), None, True),
        (2, "x", _at(1), None, True),
    ]


def test_a_delete_closes_the_current_version_and_a_reinsert_opens_a_new_one() -> None:
    rows: list[Row] = [
        (1, "a", "c", 10, 1),
        (1, None, "d", 20, 2),
        (2, "b", "c", 25, 2),
        (1, "again", "c", 30, 3),
    ]
    assert _history(rows) == [
        (1, "a", _at(1), _at(2), False),
        (1, "again", _at(3), None, True),
        (2, "b", _at(2), None, True),
    ]


def test_a_truncate_closes_every_open_version_but_not_later_ones() -> None:
    rows: list[Row] = [
        (1, "a", "c", 10, 1),
        (2, "b", "c", 11, 1),
        (2, "b2", "u", 12, 2),
        (None, None, "t", 20, 4),
        (1, "new", "c", 30, 5),
    ]
    assert _history(rows) == [
        (1, "a", _at(1), _at(4), False),
        (1, "new", _at(5), None, True),
        (2, "b", _at(1), _at(2), False),
        (2, "b2", _at(2), _at(4), False),
    ]


def test_unchanged_values_are_carried_into_the_next_version() -> None:
    rows: list[Row] = [(1, "doc", "c", 10, 1), (1, None, "u", 20, 2)]
    assert [r[1] for r in _history(rows, unchanged=[None, "v"])] == ["doc", "doc"]


def test_it_needs_a_key_and_the_change_columns() -> None:
    frame = pl.LazyFrame({"id": [1], OP: ["c"], POSITION: [1]})
    with pytest.raises(TransformError, match="primary_key"):
        get_transform("scd2")(frame, TransformContext())
    with pytest.raises(TransformError, match="_lakegate_committed_at"):
        get_transform("scd2")(frame, CTX)
