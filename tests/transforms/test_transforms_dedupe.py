"""``dedupe_latest``."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms import TransformContext, dedupe_latest


def _dedupe(
    frame: pl.DataFrame, primary_key: tuple[str, ...], order_by: tuple[str, ...] = ()
) -> pl.DataFrame:
    return dedupe_latest(frame.lazy(), TransformContext(primary_key=primary_key, order_by=order_by)).collect()


def test_without_order_by_the_last_occurrence_wins() -> None:
    frame = pl.DataFrame({"v": ["a1", "b1", "a2", "c1", "b2", "a3"], "id": [1, 2, 1, 3, 2, 1]})
    # Survivors keep their input order, and the columns theirs.
    expected = pl.DataFrame({"v": ["c1", "b2", "a3"], "id": [3, 2, 1]})
    assert_frame_equal(_dedupe(frame, ("id",)), expected)


def test_with_order_by_the_largest_value_wins_wherever_it_is() -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 1, 1, 2, 2],
            "updated": [5, 9, 7, 2, 1],
            "v": ["old", "newest", "middle", "newer", "older"],
        }
    )
    expected = pl.DataFrame({"id": [1, 2], "updated": [9, 2], "v": ["newest", "newer"]})
    assert_frame_equal(_dedupe(frame, ("id",), ("updated",)), expected)


def test_order_by_ties_go_to_the_later_row() -> None:
    frame = pl.DataFrame({"id": [1, 1, 1], "updated": [3, 3, 1], "v": ["first", "second", "third"]})
    expected = pl.DataFrame({"id": [1], "updated": [3], "v": ["second"]})
    assert_frame_equal(_dedupe(frame, ("id",), ("updated",)), expected)


def test_null_order_by_values_count_as_oldest() -> None:
    frame = pl.DataFrame({"id": [1, 1, 2], "updated": [4, None, None], "v": ["dated", "undated", "only"]})
    expected = pl.DataFrame({"id": [1, 2], "updated": [4, None], "v": ["dated", "only"]})
    assert_frame_equal(_dedupe(frame, ("id",), ("updated",)), expected)


def test_several_order_by_columns_compare_in_turn() -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 1, 1],
            "day": ["2024-01-02", "2024-01-03", "2024-01-03"],
            "seq": [9, 1, 2],
            "v": ["older day", "same day, lower seq", "same day, higher seq"],
        }
    )
    result = _dedupe(frame, ("id",), ("day", "seq"))
    assert result["v"].to_list() == ["same day, higher seq"]


def test_composite_key() -> None:
    frame = pl.DataFrame(
        {
            "tenant": ["a", "a", "b", "a"],
            "id": [1, 2, 1, 1],
            "v": [1, 2, 3, 4],
        }
    )
    expected = pl.DataFrame({"tenant": ["a", "b", "a"], "id": [2, 1, 1], "v": [2, 3, 4]})
    assert_frame_equal(_dedupe(frame, ("tenant", "id")), expected)


def test_rows_with_a_null_in_the_key_are_all_kept() -> None:
    frame = pl.DataFrame(
        {
            "tenant": ["a", None, "a", None, "a", "a"],
            "id": [None, 1, None, 1, 1, 1],
            "updated": [1, 1, 1, 1, 1, 2],
            "v": [1, 2, 3, 4, 5, 6],
        }
    )
    expected = pl.DataFrame(
        {
            "tenant": ["a", None, "a", None, "a"],
            "id": [None, 1, None, 1, 1],
            "updated": [1, 1, 1, 1, 2],
            "v": [1, 2, 3, 4, 6],
        }
    )
    assert_frame_equal(_dedupe(frame, ("tenant", "id")), expected)
    assert_frame_equal(_dedupe(frame, ("tenant", "id"), ("updated",)), expected)


def test_a_column_named_like_the_internal_row_index_is_kept() -> None:
    frame = pl.DataFrame({"id": [1, 1], "_lakegate_row": ["x", "y"]})
    assert_frame_equal(_dedupe(frame, ("id",)), pl.DataFrame({"id": [1], "_lakegate_row": ["y"]}))


def test_needs_a_primary_key() -> None:
    with pytest.raises(ValueError, match="dedupe_latest needs a primary_key"):
        dedupe_latest(pl.LazyFrame({"id": [1]}), TransformContext())


def test_missing_key_or_order_columns_are_named() -> None:
    lf = pl.LazyFrame({"id": [1]})
    with pytest.raises(ValueError, match=r"\['ts'\] are not in the frame"):
        dedupe_latest(lf, TransformContext(primary_key=("id",), order_by=("ts",)))
    with pytest.raises(ValueError, match=r"\['key'\] are not in the frame"):
        dedupe_latest(lf, TransformContext(primary_key=("key",)))
