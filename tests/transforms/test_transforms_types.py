"""Declared type names, ``dtype_of`` and ``TransformContext``."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from transforms import TYPE_NAMES, TransformContext, dtype_of


def test_type_names_are_the_supported_ones() -> None:
    assert TYPE_NAMES == (
        "string",
        "int32",
        "int64",
        "float32",
        "float64",
        "bool",
        "date",
        "datetime",
        "decimal(P,S)",
    )


@pytest.mark.parametrize(
    ("type_name", "expected"),
    [
        ("string", pl.String()),
        ("int32", pl.Int32()),
        ("int64", pl.Int64()),
        ("float32", pl.Float32()),
        ("float64", pl.Float64()),
        ("bool", pl.Boolean()),
        ("date", pl.Date()),
        ("datetime", pl.Datetime("us", "UTC")),
        ("decimal(12,2)", pl.Decimal(12, 2)),
        ("decimal(38,0)", pl.Decimal(38, 0)),
        ("decimal(5,5)", pl.Decimal(5, 5)),
        # Config is hand-written: case and spaces don't matter.
        (" Decimal( 12 , 2 ) ", pl.Decimal(12, 2)),
        ("INT64", pl.Int64()),
    ],
)
def test_dtype_of(type_name: str, expected: pl.DataType) -> None:
    assert dtype_of(type_name) == expected


@pytest.mark.parametrize(
    "type_name",
    ["varchar", "int", "decimal", "decimal(12)", "decimal(39,2)", "decimal(5,6)", "decimal(0,0)", ""],
)
def test_dtype_of_rejects_unknown_names_and_lists_the_allowed_ones(type_name: str) -> None:
    with pytest.raises(ValueError, match="allowed types") as raised:
        dtype_of(type_name)
    message = str(raised.value)
    assert repr(type_name) in message
    for allowed in TYPE_NAMES:
        assert allowed in message


def test_context_defaults_are_empty() -> None:
    ctx = TransformContext()
    assert (ctx.primary_key, dict(ctx.schema), ctx.order_by) == ((), {}, ())


def test_context_is_frozen_and_detached_from_the_callers_containers() -> None:
    schema = {"id": "int64"}
    key = ["id"]
    ctx = TransformContext(primary_key=key, schema=schema, order_by=["ts"])  # type: ignore[arg-type]
    schema["extra"] = "string"
    key.append("other")
    assert ctx.primary_key == ("id",)
    assert ctx.order_by == ("ts",)
    assert dict(ctx.schema) == {"id": "int64"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.primary_key = ("x",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        ctx.schema["id"] = "string"  # type: ignore[index]


@pytest.mark.parametrize("field", ["primary_key", "order_by"])
def test_context_rejects_a_bare_string_for_column_lists(field: str) -> None:
    with pytest.raises(TypeError, match=field):
        TransformContext(**{field: "id"})  # type: ignore[arg-type]
