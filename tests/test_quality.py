"""Tests for pipelines.quality against real Great Expectations (no mocks)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal

import polars as pl
import pytest

from pipelines import quality
from pipelines._ge_frames import to_pandas_for_ge
from pipelines.quality import (
    Expectation,
    ExpectationOutcome,
    QualityConfigError,
    QualityReport,
    standard_expectations,
    validate,
)

CANARY = "canary-pii-7f3a@example.com"
BETWEEN = "expect_column_values_to_be_between"


def _outcome(report: QualityReport, expectation: str, column: str | None = None) -> ExpectationOutcome:
    matches = [o for o in report.outcomes if o.expectation == expectation and o.column == column]
    assert len(matches) == 1, report.outcomes
    return matches[0]


def _orders(**overrides: list) -> pl.DataFrame:
    data = {
        "order_id": [1, 2, 3],
        "email": ["a@example.com", "b@example.com", "c@example.com"],
        "amount": [10.0, 20.5, 99.0],
    }
    return pl.DataFrame({**data, **overrides})


def test_passing_frame() -> None:
    exps = standard_expectations(["order_id", "email", "amount"], ["order_id"])
    exps.append(Expectation(BETWEEN, {"column": "amount", "min_value": 0, "max_value": 100}))

    report = validate(_orders(), exps, suite_name="orders")

    assert report.success
    assert [o.expectation for o in report.outcomes] == [e.type for e in exps]
    assert all(o.success and o.detail is None for o in report.outcomes)
    not_null = _outcome(report, "expect_column_values_to_not_be_null", "order_id")
    assert (not_null.element_count, not_null.unexpected_count) == (3, 0)
    assert _outcome(report, "expect_table_row_count_to_be_between").observed == "3"
    assert report.summary() == {"success": True, "evaluated": 5, "failed": 0, "failures": []}


def test_duplicate_pk_fails_and_no_cell_value_leaves_the_module() -> None:
    df = _orders(email=[CANARY, CANARY, "c@example.com"], amount=[1.0, -5.0, 3.0])
    exps = [
        *standard_expectations(["order_id", "email"], ["email"]),
        Expectation(BETWEEN, {"column": "amount", "min_value": 0}),
        Expectation("expect_column_values_to_be_in_set", {"column": "email", "value_set": ["x"]}),
        Expectation("expect_column_values_to_match_regex", {"column": "email", "regex": "^z"}),
        # Aggregate expectations whose GE observed_value is a cell value:
        Expectation("expect_column_most_common_value_to_be_in_set", {"column": "email", "value_set": ["x"]}),
        Expectation("expect_column_distinct_values_to_be_in_set", {"column": "email", "value_set": ["x"]}),
        Expectation("expect_column_max_to_be_between", {"column": "amount", "max_value": 0}),
    ]

    report = validate(df, exps, suite_name="orders")

    assert not report.success
    unique = _outcome(report, "expect_column_values_to_be_unique", "email")
    assert (unique.success, unique.unexpected_count, unique.element_count) == (False, 2, 3)
    assert _outcome(report, BETWEEN, "amount").unexpected_count == 1
    most_common = _outcome(report, "expect_column_most_common_value_to_be_in_set", "email")
    assert not most_common.success and most_common.observed is None
    summary = json.dumps(report.summary())
    assert "expect_column_values_to_be_unique(email): 2 of 3 unexpected" in summary
    for text in (repr(report), str(report), summary):
        assert CANARY not in text
        assert "-5.0" not in text  # the failing amount is a cell value too

    # The assertions above mean something only if GE's raw results do hold the canary.
    _, gx_exps = quality._build(exps, "orders")
    raw = quality._run(to_pandas_for_ge(df), gx_exps, "orders")
    assert any(CANARY in str(r.result) for r in raw)


def test_null_in_pk() -> None:
    report = validate(
        _orders(order_id=[1, None, 3]),
        standard_expectations(["order_id"], ["order_id"]),
        suite_name="orders",
    )

    assert not report.success
    not_null = _outcome(report, "expect_column_values_to_not_be_null", "order_id")
    assert (not_null.success, not_null.unexpected_count, not_null.element_count) == (False, 1, 3)
    assert _outcome(report, "expect_column_values_to_be_unique", "order_id").success
    assert report.summary()["failures"] == [
        "expect_column_values_to_not_be_null(order_id): 1 of 3 unexpected"
    ]


def test_compound_pk_uniqueness() -> None:
    pk = ["order_id", "line"]
    exps = standard_expectations(["order_id", "line"], pk)
    assert exps[-2] == Expectation("expect_compound_columns_to_be_unique", {"column_list": pk})

    unique_pairs = pl.DataFrame({"order_id": [1, 1, 2], "line": [1, 2, 1]})  # order_id repeats alone
    assert validate(unique_pairs, exps, suite_name="lines").success

    duplicated = pl.DataFrame({"order_id": [1, 1, 2, 1], "line": [1, 2, 1, 2]})
    report = validate(duplicated, exps, suite_name="lines")
    compound = _outcome(report, "expect_compound_columns_to_be_unique", "order_id,line")
    assert (report.success, compound.success, compound.unexpected_count) == (False, False, 2)


def test_missing_column_is_a_failed_outcome_not_an_exception() -> None:
    exps = [
        *standard_expectations(["order_id", "customer_id"], []),
        Expectation(BETWEEN, {"column": "nope", "min_value": 0}),
        Expectation("expect_compound_columns_to_be_unique", {"column_list": ["order_id", "nope2"]}),
    ]

    report = validate(_orders(), exps, suite_name="orders")

    assert not report.success
    schema = _outcome(report, "expect_table_columns_to_match_set")
    assert not schema.success and schema.detail == "missing columns: customer_id"
    assert schema.observed == "amount,email,order_id"
    missing = _outcome(report, BETWEEN, "nope")
    assert not missing.success and missing.detail == "column(s) not in frame: nope"
    assert missing.unexpected_count is None
    compound = _outcome(report, "expect_compound_columns_to_be_unique", "order_id,nope2")
    assert not compound.success and compound.detail == "column(s) not in frame: nope2"
    assert report.summary()["failures"] == [
        "expect_table_columns_to_match_set: missing columns: customer_id",
        f"{BETWEEN}(nope): column(s) not in frame: nope",
        "expect_compound_columns_to_be_unique(order_id,nope2): column(s) not in frame: nope2",
    ]


def test_declared_between() -> None:
    exps = [Expectation(BETWEEN, {"column": "amount", "min_value": 0, "max_value": 100})]
    df = pl.DataFrame({"amount": [-1.0, 50.0, 101.0, None]})

    report = validate(df, exps, suite_name="payments")

    outcome = report.outcomes[0]
    assert (outcome.success, outcome.element_count, outcome.unexpected_count) == (False, 4, 2)
    assert outcome.unexpected_percent == pytest.approx(200 / 3)  # of the 3 non-null values
    assert validate(df.filter(pl.col("amount") == 50), exps, suite_name="payments").success


def test_between_keeps_column_types() -> None:
    """Dates compare with dates, datetimes with datetimes, nullable big ints stay exact."""
    df = pl.DataFrame(
        {
            "day": [dt.date(2024, 1, 1), dt.date(2020, 1, 1), None],
            "at": [dt.datetime(2024, 1, 1), dt.datetime(2020, 1, 1), None],
            "far": [dt.datetime(9999, 12, 31), dt.datetime(2020, 1, 1), None],  # outside datetime64[ns]
            "at_tz": pl.Series([dt.datetime(2024, 1, 1), dt.datetime(2020, 1, 1), None]).dt.replace_time_zone(
                "UTC"
            ),
            "big": [2**60, 2**60 + 1, None],  # equal once converted to float64
            "small": [5, 1, None],
        }
    )
    since_2021 = dt.datetime(2021, 1, 1)
    exps = [
        Expectation(BETWEEN, {"column": "day", "min_value": dt.date(2021, 1, 1)}),
        Expectation(BETWEEN, {"column": "at", "min_value": since_2021}),
        Expectation(BETWEEN, {"column": "far", "min_value": since_2021}),
        Expectation(BETWEEN, {"column": "at_tz", "min_value": since_2021.replace(tzinfo=dt.UTC)}),
        Expectation(BETWEEN, {"column": "small", "min_value": 2}),
        Expectation("expect_column_values_to_be_unique", {"column": "big"}),
    ]

    report = validate(df, exps, suite_name="types")

    counts = {(o.expectation, o.column): (o.unexpected_count, o.detail) for o in report.outcomes}
    assert counts == {
        (BETWEEN, "day"): (1, None),
        (BETWEEN, "at"): (1, None),
        (BETWEEN, "far"): (1, None),
        (BETWEEN, "at_tz"): (1, None),
        (BETWEEN, "small"): (1, None),
        ("expect_column_values_to_be_unique", "big"): (0, None),
    }


def test_expectation_raising_is_a_failed_outcome_naming_only_the_exception_class() -> None:
    report = validate(
        _orders(email=[CANARY, "b", "c"]),
        [Expectation(BETWEEN, {"column": "email", "min_value": 0})],  # numbers vs strings
        suite_name="orders",
    )

    outcome = report.outcomes[0]
    assert not outcome.success
    assert outcome.detail == "could not be evaluated (TypeError)"
    assert CANARY not in repr(report)


def test_unknown_expectation_type() -> None:
    exps = [Expectation("expect_colum_values_to_be_between", {"column": "amount", "min_value": 0})]

    with pytest.raises(QualityConfigError) as err:
        validate(_orders(), exps, suite_name="orders")

    message = str(err.value)
    assert message.startswith("unknown expectation 'expect_colum_values_to_be_between' (suite orders): ")
    assert "did you mean 'expect_column_values_to_be_between'?" in message
    assert message.endswith("see https://greatexpectations.io/expectations")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"min_value": 0}, "column: field required"),
        ({"column": "amount", "min_value": 0, "minimum": 1}, "minimum: unknown argument"),
        ({"column": "amount"}, "min_value and max_value cannot both be None"),
        ({"column": "amount", "min_value": 0, "result_format": "COMPLETE"}, "result_format: set by lakegate"),
    ],
)
def test_bad_kwargs(kwargs: dict, problem: str) -> None:
    with pytest.raises(QualityConfigError) as err:
        validate(_orders(), [Expectation(BETWEEN, kwargs)], suite_name="orders")

    message = str(err.value)
    assert message.startswith(f"expectation '{BETWEEN}' (suite orders): ")
    assert problem in message
    assert "\n" not in message


def test_config_errors_are_all_listed_at_once() -> None:
    exps = [
        Expectation("expect_nothing", {}),
        Expectation("expect_column_values_to_not_be_null", {}),
        Expectation("expect_column_values_to_be_unique", {"column": "order_id"}),
    ]

    with pytest.raises(QualityConfigError) as err:
        validate(_orders(), exps, suite_name="orders")

    assert "unknown expectation 'expect_nothing'" in str(err.value)
    assert "expectation 'expect_column_values_to_not_be_null' (suite orders): column: field required" in str(
        err.value
    )


def test_empty_frame() -> None:
    df = _orders().clear()
    exps = standard_expectations(["order_id", "email"], ["order_id"])

    report = validate(df, exps, suite_name="orders")

    assert not report.success
    rows = _outcome(report, "expect_table_row_count_to_be_between")
    assert (rows.success, rows.observed) == (False, "0")
    assert _outcome(report, "expect_column_values_to_not_be_null", "order_id").element_count == 0
    assert report.summary() == {
        "success": False,
        "evaluated": 4,
        "failed": 1,
        "failures": ["expect_table_row_count_to_be_between: observed 0"],
    }


def test_all_null_columns() -> None:
    df = pl.DataFrame({"id": pl.Series([None, None], dtype=pl.Int64), "untyped": [None, None]})
    exps = [
        Expectation("expect_column_values_to_not_be_null", {"column": "id"}),
        Expectation("expect_column_values_to_not_be_null", {"column": "untyped"}),
        Expectation(BETWEEN, {"column": "id", "min_value": 0}),
        Expectation("expect_column_values_to_be_unique", {"column": "untyped"}),
    ]

    report = validate(df, exps, suite_name="nulls")

    assert [(o.success, o.unexpected_count) for o in report.outcomes] == [
        (False, 2),
        (False, 2),
        (True, 0),  # GE ignores nulls in value checks: only not_null catches them
        (True, 0),
    ]


def test_identical_expectations_are_reported_once() -> None:
    exps = [
        *standard_expectations(["order_id"], ["order_id"]),
        Expectation("expect_column_values_to_not_be_null", {"column": "order_id"}),
    ]

    report = validate(_orders(), exps, suite_name="orders")

    assert len(report.outcomes) == len(exps) - 1


def test_calls_share_the_context_but_not_data() -> None:
    exps = standard_expectations(["order_id"], ["order_id"])
    dupes = _orders(order_id=[1, 1, 2])
    original = dupes.clone()

    assert not validate(dupes, exps, suite_name="orders").success
    assert validate(_orders(), exps, suite_name="orders").success  # no state from the first frame
    assert dupes.equals(original)
    context = quality._get_context()
    assert context is quality._get_context()
    assert context.data_sources.all() == {}  # per-call data sources are removed


def test_no_expectations() -> None:
    assert validate(_orders(), [], suite_name="orders") == QualityReport(success=True, outcomes=())


def test_standard_expectations() -> None:
    assert standard_expectations(["a", "b"], ["a"]) == [
        Expectation("expect_table_columns_to_match_set", {"column_set": ["a", "b"], "exact_match": False}),
        Expectation("expect_column_values_to_not_be_null", {"column": "a"}),
        Expectation("expect_column_values_to_be_unique", {"column": "a"}),
        Expectation("expect_table_row_count_to_be_between", {"min_value": 1}),
    ]
    assert [e.type for e in standard_expectations([], [])] == ["expect_table_row_count_to_be_between"]
    with pytest.raises(QualityConfigError, match="not the string"):
        standard_expectations(["a"], "a")
    with pytest.raises(QualityConfigError, match="not among the declared columns"):
        standard_expectations(["a"], ["b"])
    with pytest.raises(QualityConfigError, match="repeats"):
        standard_expectations(["a"], ["a", "a"])


def test_the_shipped_expectation_catalogue_is_the_installed_one() -> None:
    """``pipelines/expectations.json`` (used to check defs.yaml fast) equals Great Expectations' own."""
    live = quality.live_catalogue()
    if os.environ.get("LAKEGATE_UPDATE_SNAPSHOTS"):
        quality.CATALOGUE.write_text(json.dumps(live, indent=1, sort_keys=True) + "\n")
    assert json.loads(quality.CATALOGUE.read_text()) == live
    assert live["expect_column_values_to_be_between"]["required"] == ["column"]


@pytest.mark.parametrize(
    "frame",
    [
        pl.DataFrame({"a": [1, 2, 2, None, None], "b": [1, None, None, None, 3]}),
        pl.DataFrame({"a": [None, None], "b": ["x", "x"]}),
        pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}),
        pl.DataFrame({"a": pl.Series([], dtype=pl.Int64), "b": pl.Series([], dtype=pl.String)}),
    ],
)
def test_the_standard_suite_from_aggregates_reports_what_great_expectations_reports(
    frame: pl.DataFrame,
) -> None:
    """The standard suite is computed with polars aggregates (no pandas): held equal to GE's own results."""
    exps = [
        *standard_expectations(["a", "b", "c"], ["a"]),
        Expectation("expect_table_columns_to_match_set", {"column_set": ["a", "b"]}),
        Expectation("expect_column_values_to_be_unique", {"column": "b"}),
        Expectation("expect_compound_columns_to_be_unique", {"column_list": ["a", "b"]}),
        Expectation("expect_column_values_to_not_be_null", {"column": "b"}),
        Expectation("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 3}),
    ]
    fast = validate(frame, exps, suite_name="fast").outcomes
    declared, gx_exps = quality._build(exps, "ge")
    ge = [
        quality._outcome(e, r, set(frame.columns))
        for e, r in zip(declared, quality._run(to_pandas_for_ge(frame), gx_exps, "ge"), strict=True)
    ]
    assert all(quality._aggregated(e, frame) is not None for e in declared)  # none went through GE
    assert list(fast) == ge


def test_the_standard_suite_runs_without_importing_great_expectations() -> None:
    """A run checked by the standard suite and the common value checks never pays GE's ~3 s import;
    another declared check does."""
    script = """
import sys
import polars as pl
from pipelines.quality import Expectation, standard_expectations, validate
frame = pl.DataFrame({"id": [1, 2, 2], "note": ["a", None, "c"]})
suite = [*standard_expectations(["id", "note"], ["id"]), *standard_expectations([], [])]
report = validate(frame, suite, suite_name="orders")
assert [o.success for o in report.outcomes] == [True, True, False, True], report
assert "great_expectations" not in sys.modules
between = Expectation("expect_column_values_to_be_between", {"column": "id", "min_value": 2})
assert not validate(frame, [*suite, between], suite_name="orders").outcomes[-1].success
assert "great_expectations" not in sys.modules
regex = Expectation("expect_column_values_to_match_regex", {"column": "note", "regex": "^[ab]$"})
assert not validate(frame, [*suite, regex], suite_name="orders").outcomes[-1].success
assert "great_expectations" in sys.modules
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


VALUE_CHECKS = [
    Expectation("expect_column_values_to_be_between", {"column": "qty", "min_value": 0}),
    Expectation("expect_column_values_to_be_between", {"column": "qty", "max_value": 3, "strict_max": True}),
    Expectation("expect_column_values_to_be_between", {"column": "qty", "min_value": 1, "max_value": 3}),
    Expectation(
        "expect_column_values_to_be_between",
        {"column": "price", "min_value": 0.5, "strict_min": True, "mostly": 0.5},
    ),
    Expectation("expect_column_values_to_be_between", {"column": "price", "max_value": 2.5, "mostly": 0.9}),
    Expectation("expect_column_values_to_be_in_set", {"column": "status", "value_set": ["new", "paid"]}),
    Expectation(
        "expect_column_values_to_be_in_set", {"column": "status", "value_set": ["paid"], "mostly": 0.25}
    ),
    Expectation("expect_column_values_to_be_in_set", {"column": "qty", "value_set": [1, 2, 7]}),
    Expectation("expect_column_value_lengths_to_equal", {"column": "country", "value": 2}),
    Expectation("expect_column_value_lengths_to_equal", {"column": "country", "value": 2, "mostly": 0.6}),
    Expectation("expect_column_values_to_be_between", {"column": "absent", "min_value": 0}),
    Expectation("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "max_value": 2}),
]


@pytest.mark.parametrize(
    "frame",
    [
        pl.DataFrame(
            {
                "qty": [1, 2, None, 3, 7],
                "price": [0.5, 1.25, None, 2.5, 3.0],
                "status": ["new", "paid", None, "lost", "paid"],
                "country": ["DE", "Ü", "FRA", None, "ÉÈ"],
                "amount": [Decimal("0.00"), Decimal("-0.01"), None, Decimal("2.00"), Decimal("2.01")],
            },
            schema_overrides={"amount": pl.Decimal(12, 2)},
        ),
        pl.DataFrame(
            {"qty": [None, None], "price": [None, 1.0], "status": ["new", "new"], "country": ["DE"] * 2},
            schema_overrides={"qty": pl.Int64},
        ).with_columns(amount=pl.lit(None, pl.Decimal(12, 2))),
        pl.DataFrame(
            {"qty": [1, 2], "price": [1.0, 2.0], "status": ["new", "paid"], "country": ["DE", "NL"]},
            schema={"qty": pl.Int32, "price": pl.Float32, "status": pl.String, "country": pl.String},
        ).with_columns(amount=pl.lit(Decimal("1.5"), pl.Decimal(12, 2))),
        pl.DataFrame(
            schema={
                "qty": pl.Int64,
                "price": pl.Float64,
                "status": pl.String,
                "country": pl.String,
                "amount": pl.Decimal(12, 2),
            }
        ),
    ],
)
def test_value_checks_from_polars_report_what_great_expectations_reports(frame: pl.DataFrame) -> None:
    """Common value checks (between, in set, lengths; with ``mostly``) are answered by polars: held equal
    to GE's own results on the same frame, nulls, unicode and empty frames included."""
    fast = validate(frame, VALUE_CHECKS, suite_name="fast").outcomes
    declared, gx_exps = quality._build(VALUE_CHECKS, "ge")
    ge = [
        quality._outcome(e, r, set(frame.columns))
        for e, r in zip(declared, quality._run(to_pandas_for_ge(frame), gx_exps, "ge"), strict=True)
    ]
    assert all(quality._answerable(e, frame) for e in declared)  # none went through GE
    assert list(fast) == ge


def test_value_checks_polars_cannot_judge_alike_go_to_great_expectations() -> None:
    """NaN (a value to pandas, the greatest number to polars) and a text column compared with numbers."""
    frame = pl.DataFrame({"price": [1.0, float("nan")], "code": ["1", "2"]})
    checks = [
        Expectation("expect_column_values_to_be_between", {"column": "price", "max_value": 5}),
        Expectation("expect_column_values_to_be_in_set", {"column": "code", "value_set": [1, 2]}),
    ]
    assert not any(quality._answerable(e, frame) for e in checks)
    outcomes = validate(frame, checks, suite_name="odd").outcomes
    assert outcomes[0].unexpected_count == 1  # GE: NaN is not <= 5
