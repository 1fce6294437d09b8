"""The write path's pyarrow fast path must read every value exactly as ``cast_schema`` does."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_series_equal

from connectors.files._typed import arrow_types, split_typed
from transforms import CAST_ERRORS, TransformContext, cast_schema
from zones._fastcast import fast_cast

VALUES = {
    "int64": ["12", " 12", "+5", "-3", "", "1e3", "0x10", "0X1F", "1_000", "12.0", "9223372036854775808"],
    "int32": ["7", "-2147483648", "2147483648", ""],
    "float64": ["1.5", "1e3", "nan", "inf", "-inf", "+1.5", ".5", "5.", "1,5", " 2.5", "", "infinity"],
    "bool": ["true", "false", "1", "0", "True", "TRUE", "yes", "t", ""],
    "date": ["2024-01-01", "2024-1-1", "2024-02-30", "20240101", "", "2024-01-01T00:00:00"],
    "datetime": [
        "2024-01-01T10:00:00Z",
        "2024-01-01T10:00:00+02:00",
        "2024-01-01 10:00:00",
        "2024-01-01",
        "2024-01-01T10:00:00.123456789Z",
        "2024-01-01T10:00Z",
        "2024-01-01T10:00:00+0200",
        "2024-01-01T10:00:00.5",
        "2024-01-01T10:00:00.000000",
        "",
        "yesterday",
        "2024-01-01T10+02:00",
    ],
    "string": ["x", "", " padded ", "0x10"],
    "decimal(12,2)": ["12.5", "12.555", "1e2", "-0.01", "12", "9999999999.99", "99999999999.99", ""],
}


def reference(values: list[str], type_name: str) -> pl.DataFrame:
    frame = pl.DataFrame({"c": values}).lazy()
    return cast_schema(frame, TransformContext(schema={"c": type_name})).collect()


@pytest.mark.parametrize("type_name", sorted(VALUES))
@pytest.mark.parametrize("size", [1, 0])  # each value alone, and the whole list as one batch
def test_fast_path_agrees_with_cast_schema(type_name: str, size: int) -> None:
    batches = [[v] for v in VALUES[type_name]] if size else [VALUES[type_name]]
    for values in batches:
        table, left = fast_cast(pa.table({"c": values}), {"c": type_name})
        expected = reference(values, type_name)
        if left:
            assert left == {"c": type_name}
            continue
        assert expected[CAST_ERRORS].is_null().all(), f"fast path accepted {values} that cast_schema rejects"
        got = pl.from_arrow(table)
        assert isinstance(got, pl.DataFrame)
        assert_series_equal(got["c"], expected["c"], check_names=False)


def test_fast_path_takes_clean_columns_and_leaves_the_rest() -> None:
    table = pa.table({"a": ["1", "2"], "b": ["1", "x"], "t": ["2024-01-01T00:00:00Z", ""], "s": ["x", ""]})
    declared = {"a": "int64", "b": "int64", "t": "datetime", "s": "string", "gone": "int64"}
    cast, left = fast_cast(table, declared)
    assert left == {"b": "int64", "gone": "int64"}
    assert cast.column("a").type == pa.int64()
    assert cast.column("t").to_pylist()[1] is None


@pytest.mark.parametrize("type_name", sorted(set(VALUES) - {"string", "decimal(12,2)"}))
def test_the_connector_types_rows_exactly_as_cast_schema_or_leaves_them_text(type_name: str) -> None:
    """The ``files`` connector types CSV while it parses (``connectors.files._typed``): a row it types holds
    what cast_schema reads; any other row stays text, for the zone to cast or quarantine."""
    values = VALUES[type_name] + ["1", "x"]  # a batch where some rows type and others do not
    table = pa.table({"c": values, "n": list(range(len(values)))})
    typed, text = split_typed(table, arrow_types({"c": type_name}))
    expected = reference(values, type_name)
    typed_rows = typed["n"].to_pylist() if typed is not None else []
    text_rows = text["n"].to_pylist() if text is not None else []
    assert sorted(typed_rows + text_rows) == list(range(len(values)))  # every row once
    if typed is not None:
        assert typed.schema.field("c").type == arrow_types({"c": type_name})["c"]
        wanted = expected[typed_rows]
        assert wanted[CAST_ERRORS].is_null().all(), "typed a value cast_schema rejects"
        got = pl.from_arrow(typed)
        assert isinstance(got, pl.DataFrame)
        assert_series_equal(got["c"], wanted["c"], check_names=False)
    rejected = expected[CAST_ERRORS].is_not_null().arg_true().to_list()
    assert set(rejected) <= set(text_rows)  # a value cast_schema rejects always reaches the zone as text
