"""``cast_schema``: parsing, typed nulls, the ``CAST_ERRORS`` column and column layout."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms import CAST_ERRORS, TransformContext, cast_schema

UTC_US = pl.Datetime("us", "UTC")


def _cast(frame: pl.DataFrame, schema: dict[str, str]) -> pl.DataFrame:
    return cast_schema(frame.lazy(), TransformContext(schema=schema)).collect()


def _expected(columns: dict[str, tuple[list[Any], pl.DataType]], errors: list[str | None]) -> pl.DataFrame:
    data = {name: pl.Series(name, values, dtype=dtype) for name, (values, dtype) in columns.items()}
    return pl.DataFrame([*data.values(), pl.Series(CAST_ERRORS, errors, dtype=pl.String)])


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("type_name", "dtype", "texts", "values"),
    [
        ("int64", pl.Int64(), ["1", " -42 ", "+7", "9007199254740993"], [1, -42, 7, 9007199254740993]),
        ("int32", pl.Int32(), ["2147483647", "\t0\n"], [2147483647, 0]),
        ("float64", pl.Float64(), ["1.5", " -2 ", "1e3", ".25"], [1.5, -2.0, 1000.0, 0.25]),
        ("float32", pl.Float32(), ["0.5", "3"], [0.5, 3.0]),
        (
            "bool",
            pl.Boolean(),
            ["true", "FALSE", "1", "0", "Yes", "no", "T", "f", " True "],
            [True, False, True, False, True, False, True, False, True],
        ),
        ("date", pl.Date(), ["2024-02-29", " 1999-12-31 "], [date(2024, 2, 29), date(1999, 12, 31)]),
        (
            "decimal(12,2)",
            pl.Decimal(12, 2),
            ["12.34", "-0.5", "7", " 1.20 "],
            [Decimal("12.34"), Decimal("-0.50"), Decimal("7.00"), Decimal("1.20")],
        ),
    ],
)
def test_valid_text_is_parsed(
    type_name: str, dtype: pl.DataType, texts: list[str], values: list[Any]
) -> None:
    result = _cast(pl.DataFrame({"c": texts}), {"c": type_name})
    assert_frame_equal(result, _expected({"c": (values, dtype)}, [None] * len(texts)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05T10:11:12", _utc(2024, 3, 5, 10, 11, 12)),
        ("2024-03-05 10:11:12", _utc(2024, 3, 5, 10, 11, 12)),
        ("2024-03-05T10:11:12Z", _utc(2024, 3, 5, 10, 11, 12)),
        ("2024-03-05T10:11:12.5Z", _utc(2024, 3, 5, 10, 11, 12, 500000)),
        ("2024-03-05T10:11:12.123456", _utc(2024, 3, 5, 10, 11, 12, 123456)),
        # Polars keeps microseconds; finer digits are cut off, not rounded.
        ("2024-03-05T10:11:12.1234569+00:00", _utc(2024, 3, 5, 10, 11, 12, 123456)),
        ("2024-03-05T10:11:12+02:00", _utc(2024, 3, 5, 8, 11, 12)),
        ("2024-03-05 10:11:12.250-05:30", _utc(2024, 3, 5, 15, 41, 12, 250000)),
        ("2024-03-05T10:11:12+0100", _utc(2024, 3, 5, 9, 11, 12)),
        ("2024-03-05T01:11:12+03", _utc(2024, 3, 4, 22, 11, 12)),
        ("2024-03-05T10:11", _utc(2024, 3, 5, 10, 11)),
        ("2024-03-05T10:11-01:00", _utc(2024, 3, 5, 11, 11)),
        ("2024-03-05", _utc(2024, 3, 5)),
        ("  2024-12-31T23:59:59-00:30  ", _utc(2025, 1, 1, 0, 29, 59)),
    ],
)
def test_iso_datetimes_are_converted_to_utc(text: str, expected: datetime) -> None:
    result = _cast(pl.DataFrame({"ts": [text]}), {"ts": "datetime"})
    assert_frame_equal(result, _expected({"ts": ([expected], UTC_US)}, [None]))


@pytest.mark.parametrize(
    ("type_name", "bad"),
    [
        ("int64", ["1.5", "abc", "1e3", "12 34", "9223372036854775808"]),
        ("int32", ["2147483648", "0x10"]),
        ("float64", ["abc", "1,5", "1.2.3"]),
        ("bool", ["maybe", "2", "y", "truee"]),
        ("date", ["2024-02-30", "05/03/2024", "2024-03-05T00:00:00", "20240305", "2024-13-01"]),
        (
            "datetime",
            [
                "garbage",
                "2024-02-30T10:11:12",
                "2024-03-05T24:00:00",
                "2024-03-05T10:11:12+25:00",
                "2024-03-05T10:11:12.",
                "2024-03-05T10:11.5",
                "2024-03-05T10:11:12 +02:00",
                "2024-03-05T10:11:12+02:00Z",
                "2024-03-05Z",
                "20240305T101112Z",
                "05/03/2024 10:11",
            ],
        ),
        ("decimal(5,2)", ["abc", "1234.5", "1,5"]),
    ],
)
def test_invalid_text_becomes_a_typed_null_and_an_error(type_name: str, bad: list[str]) -> None:
    result = _cast(pl.DataFrame({"amount": bad}), {"amount": type_name})
    message = f"column 'amount' is not a valid {type_name}"
    expected = _expected({"amount": ([None] * len(bad), result.schema["amount"])}, [message] * len(bad))
    assert_frame_equal(result, expected)
    assert result.schema["amount"] != pl.String


def test_errors_name_every_failed_column_and_never_the_value() -> None:
    secret = "ada.lovelace@example.com"
    frame = pl.DataFrame(
        {
            "id": ["1", secret, "3"],
            "amount": [secret, secret, "2.5"],
            "day": ["2024-01-01", "2024-01-02", "not a date"],
        }
    )
    result = _cast(frame, {"id": "int64", "amount": "decimal(12,2)", "day": "date"})
    assert result[CAST_ERRORS].to_list() == [
        "column 'amount' is not a valid decimal(12,2)",
        "column 'id' is not a valid int64; column 'amount' is not a valid decimal(12,2)",
        "column 'day' is not a valid date",
    ]
    assert not result[CAST_ERRORS].str.contains(secret, literal=True).any()
    assert not result[CAST_ERRORS].str.contains("not a date", literal=True).any()


def test_empty_and_blank_strings_become_null_without_error() -> None:
    frame = pl.DataFrame({"n": ["", "  ", None, "4"], "ts": ["\t", "", None, "2024-01-01"]})
    result = _cast(frame, {"n": "int32", "ts": "datetime"})
    expected = _expected(
        {"n": ([None, None, None, 4], pl.Int32()), "ts": ([None, None, None, _utc(2024, 1, 1)], UTC_US)},
        [None] * 4,
    )
    assert_frame_equal(result, expected)


def test_declared_type_names_are_written_canonically_in_errors() -> None:
    result = _cast(pl.DataFrame({"a": ["x"]}), {"a": " Decimal(10, 3) "})
    assert result[CAST_ERRORS].to_list() == ["column 'a' is not a valid decimal(10,3)"]


def test_missing_declared_columns_are_added_as_typed_nulls() -> None:
    result = _cast(pl.DataFrame({"id": ["1"]}), {"id": "int64", "seen": "datetime", "score": "decimal(6,1)"})
    expected = _expected(
        {"id": ([1], pl.Int64()), "seen": ([None], UTC_US), "score": ([None], pl.Decimal(6, 1))},
        [None],
    )
    assert_frame_equal(result, expected)


def test_column_order_is_kept_and_undeclared_columns_pass_through() -> None:
    frame = pl.DataFrame(
        {
            "note": [" untouched ", ""],
            "id": ["1", "x"],
            "raw": [b"\x00", None],
            "amount": ["2.5", ""],
        }
    )
    result = _cast(frame, {"amount": "float64", "id": "int64"})
    expected = pl.DataFrame(
        {
            "note": [" untouched ", ""],
            "id": [1, None],
            "raw": [b"\x00", None],
            "amount": [2.5, None],
            CAST_ERRORS: [None, "column 'id' is not a valid int64"],
        }
    )
    assert_frame_equal(result, expected)


def test_text_declared_as_string_is_left_as_it_is() -> None:
    frame = pl.DataFrame({"name": [" Ada ", "", None]})
    expected = frame.with_columns(pl.lit(None, dtype=pl.String).alias(CAST_ERRORS))
    assert_frame_equal(_cast(frame, {"name": "string"}), expected)


def test_existing_errors_are_kept_first() -> None:
    frame = pl.DataFrame(
        {
            CAST_ERRORS: ["earlier problem", None, "", "earlier problem"],
            "n": ["x", "y", "1", "2"],
        }
    )
    result = _cast(frame, {"n": "int64"})
    expected = pl.DataFrame(
        {
            CAST_ERRORS: [
                "earlier problem; column 'n' is not a valid int64",
                "column 'n' is not a valid int64",
                None,
                "earlier problem",
            ],
            "n": [None, None, 1, 2],
        }
    )
    assert_frame_equal(result, expected)


def test_without_a_schema_only_the_error_column_is_added() -> None:
    frame = pl.DataFrame({"a": ["1"]})
    expected = frame.with_columns(pl.lit(None, dtype=pl.String).alias(CAST_ERRORS))
    assert_frame_equal(cast_schema(frame.lazy(), TransformContext()).collect(), expected)


def test_typed_columns_are_cast() -> None:
    paris = pl.Series("paris", [datetime(2024, 7, 1, 12, 0)]).dt.replace_time_zone("Europe/Paris")
    frame = pl.DataFrame(
        [
            pl.Series("i", [1, 2], dtype=pl.Int32),
            pl.Series("f", [1.0, 2.0]),
            pl.Series("d", [date(2024, 1, 2), None]),
            pl.Series("naive", [datetime(2024, 1, 2, 3, 4, 5), None], dtype=pl.Datetime("ns")),
            pl.concat([paris, pl.Series("paris", [None], dtype=paris.dtype)]),
            pl.Series("b", [True, None]),
            pl.Series("nothing", [None, None]),
        ]
    )
    schema = {
        "i": "float64",
        "f": "int64",
        "d": "datetime",
        "naive": "datetime",
        "paris": "datetime",
        "b": "string",
        "nothing": "date",
    }
    expected = _expected(
        {
            "i": ([1.0, 2.0], pl.Float64()),
            "f": ([1, 2], pl.Int64()),
            "d": ([_utc(2024, 1, 2), None], UTC_US),
            # Values without a time zone are read as UTC, like text without an offset.
            "naive": ([_utc(2024, 1, 2, 3, 4, 5), None], UTC_US),
            "paris": ([_utc(2024, 7, 1, 10, 0), None], UTC_US),
            "b": (["true", None], pl.String()),
            "nothing": ([None, None], pl.Date()),
        },
        [None, None],
    )
    assert_frame_equal(_cast(frame, schema), expected)


def test_typed_values_that_do_not_fit_are_errors() -> None:
    frame = pl.DataFrame({"f": [1.5, 2.0, float("nan"), None], "big": [1, 2, 2**40, None]})
    result = _cast(frame, {"f": "int64", "big": "int32"})
    expected = _expected(
        {"f": ([None, 2, None, None], pl.Int64()), "big": ([1, 2, None, None], pl.Int32())},
        [
            "column 'f' is not a valid int64",
            None,
            "column 'f' is not a valid int64; column 'big' is not a valid int32",
            None,
        ],
    )
    assert_frame_equal(result, expected)


def test_columns_already_of_their_type_are_untouched() -> None:
    frame = pl.DataFrame(
        [
            pl.Series("ts", [datetime(2024, 1, 1, tzinfo=UTC)], dtype=UTC_US),
            pl.Series("n", [7], dtype=pl.Int64),
        ]
    )
    result = _cast(frame, {"ts": "datetime", "n": "int64"})
    assert_frame_equal(result, frame.with_columns(pl.lit(None, dtype=pl.String).alias(CAST_ERRORS)))


def test_unsupported_declared_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported type 'varchar'"):
        cast_schema(pl.LazyFrame({"a": ["1"]}), TransformContext(schema={"a": "varchar"}))


def test_many_rows_mixing_shapes_parse_like_one_row_each() -> None:
    # The datetime parse routes rows by shape; a mixed column must parse each row as if it were alone.
    texts = [
        "2024-03-05",
        "2024-03-05T10:11",
        "2024-03-05 10:11:12.5+01:00",
        "bad",
        "",
        "2024-03-05T10:11Z",
        "2024-03-05T10:11:12",
    ] * 3
    together = _cast(pl.DataFrame({"ts": texts}), {"ts": "datetime"})
    alone = pl.concat([_cast(pl.DataFrame({"ts": [text]}), {"ts": "datetime"}) for text in texts])
    assert_frame_equal(together, alone)
    assert together["ts"].null_count() == 6
