"""``normalize_strings``."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from transforms import CAST_ERRORS, TransformContext, normalize_strings


def test_strips_strings_and_turns_empty_ones_into_null() -> None:
    lf = pl.LazyFrame(
        {
            "name": ["  Ada ", "", "   ", None, "\tGrace\n", "a b"],
            "city": ["Paris", " Rome", "x ", "", None, " "],
        }
    )
    expected = pl.DataFrame(
        {
            "name": ["Ada", None, None, None, "Grace", "a b"],
            "city": ["Paris", "Rome", "x", None, None, None],
        }
    )
    assert_frame_equal(normalize_strings(lf, TransformContext()).collect(), expected)


def test_leaves_lakegate_columns_and_other_types_alone() -> None:
    frame = pl.DataFrame(
        {
            "n": [1, 2],
            "name": [" a ", ""],
            CAST_ERRORS: [" kept ", ""],
            "_lakegate_source": ["", " s3://x "],
            "tags": [[" a "], [""]],
        }
    )
    expected = frame.with_columns(pl.Series("name", ["a", None]))
    assert_frame_equal(normalize_strings(frame.lazy(), TransformContext()).collect(), expected)


def test_frame_without_string_columns_is_unchanged() -> None:
    frame = pl.DataFrame({"n": [1, None], "f": [0.5, 1.0]})
    assert_frame_equal(normalize_strings(frame.lazy(), TransformContext()).collect(), frame)
