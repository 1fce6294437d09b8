"""Data-quality checks: run declared Great Expectations (1.x) expectations against polars frames.

Pure data-quality logic (no Dagster import). Reports carry only counts, percentages, column
names and, for table-level expectations, the observed row/column count or column-name list:
Great Expectations' unexpected values (``partial_unexpected_list`` and friends), observed
aggregates (a column's max, its distinct values...) and exception messages, which may all hold
cell values, never leave this module.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import math
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines._ge_frames import to_pandas_for_ge
from pipelines.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext
    from great_expectations.expectations.expectation import Expectation as GxExpectation

__all__ = [
    "Expectation",
    "ExpectationOutcome",
    "QualityConfigError",
    "QualityReport",
    "expectation_problems",
    "standard_expectations",
    "validate",
]

GALLERY_URL = "https://greatexpectations.io/expectations"

# Table-level expectations whose observed value is a row/column count or a column-name list:
# the only observed values allowed out of this module.
_OBSERVABLE = frozenset(
    {
        "expect_table_row_count_to_be_between",
        "expect_table_row_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
    }
)
# Expectation fields lakegate manages itself (ids, result shape, exception handling).
_RESERVED_KWARGS = frozenset({"id", "result_format", "catch_exceptions", "rendered_content", "batch_id"})
# Fields of every GE expectation that describe it rather than what it checks.
_GE_BOOKKEEPING = frozenset({"meta", "notes", "description", "severity", "windows"})
_INDEX_KEY = "lakegate_index"
_EXCEPTION_RE = re.compile(r"^(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Warning)):", re.MULTILINE)

_lock = threading.Lock()
_context: AbstractDataContext | None = None


class QualityConfigError(PipelineError, ValueError):
    """A declared expectation is invalid (unknown type, missing or unknown argument...)."""


@dataclass(frozen=True)
class Expectation:
    """A declared Great Expectations expectation.

    Attributes:
        type: GE expectation in snake case, e.g. ``"expect_column_values_to_be_between"``.
        kwargs: Its arguments, e.g. ``{"column": "amount", "min_value": 0}``.
    """

    type: str
    kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class ExpectationOutcome:
    """The value-free result of one expectation.

    Attributes:
        expectation: Snake-case expectation type.
        column: Column checked, the column list joined with "," for compound expectations, or
            None for table-level ones.
        success: Whether the expectation held.
        element_count: Rows evaluated (map expectations only).
        unexpected_count: Rows failing it (map expectations only).
        unexpected_percent: Percentage of non-null rows failing it.
        observed: Observed row/column count or column-name list, for table-level expectations only.
        detail: Value-free reason for a failure, when there is more to say than counts: column
            not in the frame, exception class raised while evaluating, missing columns. Never an
            exception message.
    """

    expectation: str
    column: str | None
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed: str | None
    detail: str | None = None

    def describe(self) -> str:
        """One line naming the expectation and why it failed, e.g. ``"...(id): 2 of 5 unexpected"``."""
        head = f"{self.expectation}({self.column})" if self.column is not None else self.expectation
        if self.detail is not None:
            return f"{head}: {self.detail}"
        if self.unexpected_count is not None:
            return f"{head}: {self.unexpected_count} of {self.element_count} unexpected"
        if self.observed is not None:
            return f"{head}: observed {self.observed}"
        return f"{head}: {'passed' if self.success else 'failed'}"


@dataclass(frozen=True)
class QualityReport:
    """Outcome of validating one frame against a suite.

    Attributes:
        success: True when every expectation held.
        outcomes: One outcome per distinct declared expectation, in declaration order.
    """

    success: bool
    outcomes: tuple[ExpectationOutcome, ...]

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary: success, evaluated and failed counts, one line per failure."""
        failures = [o.describe() for o in self.outcomes if not o.success]
        return {
            "success": self.success,
            "evaluated": len(self.outcomes),
            "failed": len(failures),
            "failures": failures,
        }


def standard_expectations(columns: Sequence[str], primary_key: Sequence[str]) -> list[Expectation]:
    """Expectations every table gets: schema, primary key not null and unique, at least one row.

    Args:
        columns: Declared columns; all must be present (extra columns are allowed).
        primary_key: Primary-key columns (may be empty).

    Returns:
        The expectations, schema first and row count last.

    Raises:
        QualityConfigError: A bare string was given instead of a sequence, or the primary key
            repeats a column or names one not among ``columns`` (when columns are declared).
    """
    for name, value in (("columns", columns), ("primary_key", primary_key)):
        if isinstance(value, str):
            raise QualityConfigError(f"{name} must be a sequence of column names, not the string {value!r}")
    cols, pk = list(columns), list(primary_key)
    if len(set(pk)) != len(pk):
        raise QualityConfigError(f"primary key {pk} repeats a column")
    if cols and (undeclared := [c for c in pk if c not in cols]):
        raise QualityConfigError(f"primary key column(s) {undeclared} are not among the declared columns")

    out: list[Expectation] = []
    if cols:
        schema = {"column_set": cols, "exact_match": False}
        out.append(Expectation("expect_table_columns_to_match_set", schema))
    out.extend(Expectation("expect_column_values_to_not_be_null", {"column": c}) for c in pk)
    if len(pk) == 1:
        out.append(Expectation("expect_column_values_to_be_unique", {"column": pk[0]}))
    elif pk:
        out.append(Expectation("expect_compound_columns_to_be_unique", {"column_list": pk}))
    out.append(Expectation("expect_table_row_count_to_be_between", {"min_value": 1}))
    return out


def validate(df: pl.DataFrame, expectations: Sequence[Expectation], *, suite_name: str) -> QualityReport:
    """Run the expectations with Great Expectations against ``df``.

    Identical expectations are evaluated and reported once (GE suites are sets). A column missing
    from the frame, or an expectation raising while evaluated, gives a failed outcome with
    ``detail`` set rather than an exception.

    Args:
        df: Frame to check (converted to pandas for GE; the frame is not modified).
        expectations: Expectations to run.
        suite_name: Name used in error messages and for the GE suite.

    Returns:
        The value-free report.

    Raises:
        QualityConfigError: An expectation type is unknown or its arguments are invalid; the
            message lists every problem on one line.
    """
    if not isinstance(suite_name, str) or not suite_name:
        raise QualityConfigError("suite_name must be a non-empty string")
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"validate expects a polars DataFrame, got {type(df).__name__}")
    # The standard suite (schema, key not null and unique, row count) is a few polars aggregates over the
    # columns it names, answered without importing Great Expectations (~3 s a process); only the rest is
    # built and run by GE, through pandas, with only the columns it needs.
    plain: dict[str, Expectation] = {}  # canonical form -> first declaration
    others: list[Expectation] = []
    for exp in expectations:
        if _answerable(exp, df):
            plain.setdefault(_canonical(exp), exp)
        else:
            others.append(exp)
    built_for, gx_expectations = _build(others, suite_name) if others else ([], [])
    ge_of = dict(zip(map(id, built_for), gx_expectations, strict=True))
    kept = {id(e) for e in plain.values()} | set(ge_of)
    declared: list[Expectation] = []
    for exp in expectations:
        if id(exp) in kept:
            declared.append(exp)
            kept.discard(id(exp))
    if not declared:
        return QualityReport(success=True, outcomes=())
    fast = [_aggregated(exp, df) for exp in declared]
    rest = [(exp, ge_of[id(exp)]) for exp, done in zip(declared, fast, strict=True) if done is None]
    results = iter(
        _run(to_pandas_for_ge(_needed(df, [e for e, _ in rest])), [g for _, g in rest], suite_name)
        if rest
        else []
    )
    outcomes = tuple(
        done if done is not None else _outcome(exp, next(results), set(df.columns))
        for exp, done in zip(declared, fast, strict=True)
    )
    return QualityReport(success=all(o.success for o in outcomes), outcomes=outcomes)


def _answerable(exp: object, df: pl.DataFrame) -> bool:
    """Whether ``exp`` is a well-formed expectation :func:`_aggregated` answers on ``df`` (anything else,
    malformed arguments included, is left to Great Expectations, which also explains them)."""
    if not isinstance(exp, Expectation) or not isinstance(exp.kwargs, Mapping):
        return False
    if exp.type in _MAP_ARGUMENTS:
        return _map_answerable(exp, df)
    kwargs = dict(exp.kwargs)
    if exp.type == "expect_table_columns_to_match_set":
        names = kwargs.get("column_set")
        return (
            set(kwargs) <= {"column_set", "exact_match"}
            and isinstance(names, list | tuple)
            and all(isinstance(n, str) for n in names)
            and isinstance(kwargs.get("exact_match", True), bool)
        )
    if exp.type == _ROW_COUNT:
        bounds = [kwargs.get("min_value"), kwargs.get("max_value")]
        return (
            set(kwargs) <= {"min_value", "max_value"}
            and any(b is not None for b in bounds)
            and all(b is None or (isinstance(b, int | float) and not isinstance(b, bool)) for b in bounds)
        )
    if exp.type in ("expect_column_values_to_not_be_null", "expect_column_values_to_be_unique"):
        return set(kwargs) == {"column"} and isinstance(kwargs["column"], str) and bool(kwargs["column"])
    if exp.type == "expect_compound_columns_to_be_unique":
        names = kwargs.get("column_list")
        return (
            set(kwargs) == {"column_list"}
            and isinstance(names, list | tuple)
            and len(names) >= 2
            and all(isinstance(n, str) and n for n in names)
        )
    return False


_BETWEEN, _IN_SET, _LENGTHS = (
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_value_lengths_to_equal",
)
_MAP_ARGUMENTS = {
    _BETWEEN: {"column", "min_value", "max_value", "strict_min", "strict_max", "mostly"},
    _IN_SET: {"column", "value_set", "mostly"},
    _LENGTHS: {"column", "value", "mostly"},
}
"""Value checks answered by polars (with these arguments only), as Great Expectations evaluates them."""


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _map_answerable(exp: Expectation, df: pl.DataFrame) -> bool:
    """A value check with plain arguments on a column whose type polars compares as GE does through
    pandas (integers; decimals with whole bounds; floats without NaN, which pandas keeps as a value;
    text)."""
    kwargs = dict(exp.kwargs)
    column, mostly = kwargs.get("column"), kwargs.get("mostly", 1.0)
    if not set(kwargs) <= _MAP_ARGUMENTS[exp.type] or not isinstance(column, str) or not column:
        return False
    if not _number(mostly) or not 0 <= mostly <= 1:
        return False
    if column not in df.columns:
        return True  # a failed outcome naming the column, as from GE
    values, dtype = df.get_column(column), df.schema[column]
    if exp.type == _BETWEEN:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        whole = isinstance(dtype, pl.Decimal)  # compared exactly with whole bounds only
        return (
            (dtype.is_integer() or whole or (dtype.is_float() and not values.is_nan().any()))
            and (low is not None or high is not None)
            and all(b is None or (_number(b) and (not whole or isinstance(b, int))) for b in (low, high))
            and (low is None or high is None or low <= high)
            and all(isinstance(kwargs.get(k, False), bool) for k in ("strict_min", "strict_max"))
        )
    if exp.type == _IN_SET:
        chosen = kwargs.get("value_set")
        if not isinstance(chosen, list | tuple) or not chosen:
            return False
        if dtype == pl.String:
            return all(isinstance(v, str) for v in chosen)
        return dtype.is_integer() and all(isinstance(v, int) and not isinstance(v, bool) for v in chosen)
    length = kwargs.get("value")
    return dtype == pl.String and isinstance(length, int) and not isinstance(length, bool) and length >= 0


def _map_outcome(exp: Expectation, df: pl.DataFrame) -> ExpectationOutcome:
    """A value check over the non-null values, counted and judged (``mostly``) as GE does."""
    kwargs = dict(exp.kwargs)
    column = str(kwargs["column"])
    if column not in df.columns:
        detail = f"column(s) not in frame: {column}"
        return ExpectationOutcome(exp.type, column, False, None, None, None, None, detail)
    values = df.get_column(column).drop_nulls()
    if exp.type == _BETWEEN:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        ok = pl.repeat(True, values.len(), eager=True)
        if low is not None:
            ok &= values > low if kwargs.get("strict_min", False) else values >= low
        if high is not None:
            ok &= values < high if kwargs.get("strict_max", False) else values <= high
    elif exp.type == _IN_SET:
        ok = values.is_in(list(kwargs["value_set"]))
    else:
        ok = values.str.len_chars() == kwargs["value"]
    considered, unexpected = values.len(), values.len() - int(ok.sum())
    mostly = float(kwargs.get("mostly", 1.0))
    success = considered == 0 or (considered - unexpected) / considered >= mostly
    percent = unexpected / considered * 100 if considered else None
    return ExpectationOutcome(exp.type, column, success, df.height, unexpected, percent, None, None)


def _canonical(exp: Expectation) -> str:
    """One string per distinct expectation (GE's notion of a repeat: same type, same arguments)."""
    return json.dumps([exp.type, dict(exp.kwargs)], sort_keys=True, default=str)


def _needed(df: pl.DataFrame, expectations: list[Expectation]) -> pl.DataFrame:
    """The columns of ``df`` the expectations read (all of them when one looks at the whole table)."""
    needed = columns_read(expectations)
    return df if needed is None else df.select([c for c in df.columns if c in needed])


def columns_read(expectations: Sequence[Expectation]) -> set[str] | None:
    """The columns whose values ``expectations`` read; ``None``: all (one looks at the whole table)."""
    named = [_columns(e.kwargs) for e in expectations]
    if any(not columns for columns in named):
        return None
    return {c for columns in named for c in columns}


def _aggregated(exp: Expectation, df: pl.DataFrame) -> ExpectationOutcome | None:
    """The outcome of a standard-suite expectation from polars aggregates, as Great Expectations reports
    it (same counts and percentages); ``None`` for anything else, which Great Expectations evaluates."""
    if exp.type in _MAP_ARGUMENTS:
        return _map_outcome(exp, df) if _map_answerable(exp, df) else None
    kwargs, columns = dict(exp.kwargs), _columns(exp.kwargs)
    if exp.type == "expect_table_columns_to_match_set" and set(kwargs) <= {"column_set", "exact_match"}:
        wanted, present = list(kwargs.get("column_set") or []), list(df.columns)
        missing = [c for c in wanted if c not in present]
        unexpected = [c for c in present if c not in wanted] if kwargs.get("exact_match", True) else []
        parts = [
            f"{k} columns: {','.join(v)}" for k, v in (("missing", missing), ("unexpected", unexpected)) if v
        ]
        ok = not missing and not unexpected
        return _table_outcome(exp, ok, ",".join(sorted(present)), None if ok else "; ".join(parts) or None)
    if exp.type == _ROW_COUNT and set(kwargs) <= {"min_value", "max_value"}:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        ok = (low is None or df.height >= low) and (high is None or df.height <= high)
        return _table_outcome(exp, ok, str(df.height), None)
    if exp.type not in _KEY_SHAPES or set(kwargs) != {_KEY_SHAPES[exp.type]}:
        return None
    if absent := [c for c in columns if c not in df.columns]:
        detail = f"column(s) not in frame: {','.join(absent)}"
        return ExpectationOutcome(exp.type, ",".join(columns), False, None, None, None, None, detail)
    bad: int
    considered: int
    if exp.type == "expect_column_values_to_not_be_null":
        bad, considered = df.get_column(columns[0]).null_count(), df.height
    else:  # unique: every row of a repeated value counts; rows with only nulls are left out
        kept = df.lazy().filter(~pl.all_horizontal(pl.col(columns).is_null()))
        value = pl.col(columns[0]) if len(columns) == 1 else pl.struct(columns)
        distinct, considered = kept.select(value.n_unique().alias("n"), pl.len().alias("of")).collect().row(0)
        # Counting the rows of repeated values is 5x slower than counting distinct values: only on failure.
        bad = 0 if distinct == considered else kept.select(value.is_duplicated().sum()).collect().item()
    percent = bad / considered * 100 if considered else None  # computed as GE does
    return ExpectationOutcome(exp.type, ",".join(columns), bad == 0, df.height, int(bad), percent, None, None)


def _table_outcome(exp: Expectation, success: bool, observed: str, detail: str | None) -> ExpectationOutcome:
    return ExpectationOutcome(exp.type, None, success, None, None, None, observed, detail)


_ROW_COUNT = "expect_table_row_count_to_be_between"
# Key expectations answered by aggregates, with the one argument they may carry.
_KEY_SHAPES = {
    "expect_column_values_to_not_be_null": "column",
    "expect_column_values_to_be_unique": "column",
    "expect_compound_columns_to_be_unique": "column_list",
}


CATALOGUE = Path(__file__).with_name("expectations.json")
"""Great Expectations' expectation types and their arguments (required, optional), as installed: lets a
``defs.yaml`` be checked in milliseconds instead of importing GE (~3 s). ``tests/test_quality.py`` holds it
equal to the live catalogue (regenerate with ``LAKEGATE_UPDATE_SNAPSHOTS=1``)."""


def live_catalogue() -> dict[str, dict[str, list[str]]]:
    """The catalogue read from the installed Great Expectations (slow: imports it)."""
    _import_gx()
    from great_expectations.expectations.registry import (
        get_expectation_impl,
        list_registered_expectation_implementations,
    )

    catalogue: dict[str, dict[str, list[str]]] = {}
    for name in sorted(list_registered_expectation_implementations()):
        fields = get_expectation_impl(name).__fields__
        usable = {k: v for k, v in fields.items() if k not in _RESERVED_KWARGS | _GE_BOOKKEEPING}
        catalogue[name] = {
            "required": sorted(k for k, v in usable.items() if v.required),
            "optional": sorted(k for k, v in usable.items() if not v.required),
        }
    return catalogue


@functools.cache
def _catalogue() -> dict[str, dict[str, list[str]]]:
    loaded: dict[str, dict[str, list[str]]] = json.loads(CATALOGUE.read_text())
    return loaded


def expectation_problems(expectations: Sequence[Expectation], columns: Sequence[str]) -> list[str]:
    """Problems of declared expectations, checked before any run: one line each, ``[i] type: problem``.

    Each expectation is resolved against Great Expectations' catalogue (unknown types and arguments get a
    "did you mean", missing arguments are named); the columns it names must be among the declared
    ``columns`` (when any are declared), with the closest declared name suggested. Argument *values* are
    checked by Great Expectations when the check runs.
    """
    catalogue = _catalogue()
    problems: list[str] = []
    for i, exp in enumerate(expectations):
        known = catalogue.get(exp.type)
        if known is None:
            close = difflib.get_close_matches(exp.type, list(catalogue), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(f"[{i}] unknown expectation '{exp.type}': {hint}see {GALLERY_URL}")
            continue
        arguments = known["required"] + known["optional"]
        for name in sorted(set(exp.kwargs) - set(arguments)):
            close = difflib.get_close_matches(name, arguments, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(
                f"[{i}] {exp.type}: unknown argument '{name}'{hint}; arguments: {', '.join(arguments)}"
            )
        problems += [
            f"[{i}] {exp.type}: missing argument '{name}'"
            for name in known["required"]
            if name not in exp.kwargs
        ]
        for name in [c for c in _columns(exp.kwargs) if columns and c not in columns]:
            close = difflib.get_close_matches(name, list(columns), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(
                f"[{i}] {exp.type}: column '{name}' is not declared under columns{hint}; "
                "declare it or fix the name"
            )
    return problems


def _import_gx() -> None:
    """Import GE, keeping its INFO chatter (hundreds of lines at import) out of the logs.

    The ``great_expectations`` logger is set to WARNING only if nobody configured its level.
    """
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations  # noqa: F401


def _build(
    expectations: Sequence[Expectation], suite_name: str
) -> tuple[list[Expectation], list[GxExpectation]]:
    """Turn declarations into GE expectation objects, deduplicated, or raise listing every problem."""
    _import_gx()
    from great_expectations.compatibility.pydantic import ValidationError
    from great_expectations.exceptions.exceptions import InvalidExpectationConfigurationError
    from great_expectations.expectations.registry import (
        get_expectation_impl,
        list_registered_expectation_implementations,
    )

    registered = set(list_registered_expectation_implementations())
    problems: list[str] = []
    declared: list[Expectation] = []
    built: list[GxExpectation] = []
    where = f"(suite {suite_name})"
    for i, exp in enumerate(expectations):
        if not isinstance(exp, Expectation):
            problems.append(f"item {i} {where} is a {type(exp).__name__}, not an Expectation")
            continue
        if not isinstance(exp.type, str) or exp.type not in registered:
            close = difflib.get_close_matches(str(exp.type), registered, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(f"unknown expectation '{exp.type}' {where}: {hint}see {GALLERY_URL}")
            continue
        if not isinstance(exp.kwargs, Mapping):
            problems.append(f"expectation '{exp.type}' {where}: kwargs must be a mapping")
            continue
        if reserved := sorted(_RESERVED_KWARGS.intersection(exp.kwargs)):
            names = ", ".join(reserved)
            problems.append(f"expectation '{exp.type}' {where}: {names}: set by lakegate, remove it")
            continue
        try:
            gx_exp = get_expectation_impl(exp.type)(**exp.kwargs)
        except ValidationError as e:
            problems.append(f"expectation '{exp.type}' {where}: {_pydantic_problems(e)}")
            continue
        except InvalidExpectationConfigurationError as e:
            problems.append(f"expectation '{exp.type}' {where}: {_one_line(e.message)}")
            continue
        except (TypeError, ValueError) as e:
            problems.append(f"expectation '{exp.type}' {where}: {_one_line(str(e))}")
            continue
        if not any(_same(gx_exp, other) for other in built):
            declared.append(exp)
            built.append(gx_exp)
    if problems:
        raise QualityConfigError("; ".join(problems))
    return declared, built


def _pydantic_problems(error: Exception) -> str:
    """Condense a pydantic ValidationError into ``arg: msg / msg; arg: msg``."""
    by_field: dict[str, list[str]] = {}
    for err in error.errors():  # type: ignore[attr-defined]
        field = ".".join(str(p) for p in err["loc"] if p != "__root__") or "arguments"
        msg = "unknown argument" if err["type"] == "value_error.extra" else err["msg"]
        if msg not in by_field.setdefault(field, []):
            by_field[field].append(msg)
    return "; ".join(f"{field}: {' / '.join(msgs)}" for field, msgs in by_field.items())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _same(a: GxExpectation, b: GxExpectation) -> bool:
    """GE's own notion of duplicate expectations (a suite keeps only one of them)."""
    excluded = {"id", "meta", "notes", "rendered_content"}
    return a.expectation_type == b.expectation_type and a.dict(exclude=excluded) == b.dict(exclude=excluded)


def _get_context() -> AbstractDataContext:
    """Build the process-wide ephemeral GE context once (slow: imports and configures GE)."""
    global _context
    with _lock:
        if _context is None:
            _import_gx()
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
                analytics_enabled=False,
            )
            _context = gx.get_context(mode="ephemeral", project_config=config)
        return _context


def _run(
    pdf: pd.DataFrame, expectations: list[GxExpectation], suite_name: str
) -> list[ExpectationValidationResult]:
    """Validate ``pdf``; return GE results in the order of ``expectations``.

    Each call gets its own throw-away pandas data source (so its own execution engine, whose
    metric cache would otherwise keep the last frame's intermediates alive) and a suite that is
    never added to the context; results are not stored anywhere.
    """
    import great_expectations as gx
    from great_expectations.validator.v1_validator import Validator

    context = _get_context()
    source_name = f"lakegate_quality_{uuid.uuid4().hex}"
    with _lock:
        source = context.data_sources.add_pandas(name=source_name)
        batch_definition = source.add_dataframe_asset(name="frame").add_batch_definition_whole_dataframe(
            name="whole"
        )
    try:
        suite = gx.ExpectationSuite(name=suite_name)
        for i, exp in enumerate(expectations):
            exp.meta = {**(exp.meta or {}), _INDEX_KEY: i}
            suite.add_expectation(exp)
        result_format = {
            "result_format": "BASIC",  # counts only; SUMMARY/COMPLETE collect values and row indexes
            "partial_unexpected_count": 0,
            "exclude_unexpected_values": True,
            "include_unexpected_rows": False,
        }
        validator = Validator(
            batch_definition=batch_definition,
            batch_parameters={"dataframe": pdf},
            result_format=result_format,
        )
        suite_result = validator.validate_expectation_suite(suite)
    finally:
        with _lock:
            context.data_sources.delete(name=source_name)

    ordered: list[ExpectationValidationResult | None] = [None] * len(expectations)
    for res in suite_result.results:
        if res.expectation_config is not None:
            ordered[res.expectation_config.meta[_INDEX_KEY]] = res
    if any(res is None for res in ordered):
        raise RuntimeError(f"great_expectations returned no result for some expectations ({suite_name})")
    return ordered  # type: ignore[return-value]


def _outcome(
    exp: Expectation, res: ExpectationValidationResult, frame_columns: set[str]
) -> ExpectationOutcome:
    """Keep only value-free fields of a GE result."""
    result = res.result or {}
    columns = _columns(exp.kwargs)
    observed = None
    if exp.type in _OBSERVABLE:
        value = result.get("observed_value")
        if _count(value) is not None:
            observed = str(value)
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            observed = ",".join(value)
    detail = None
    if missing := [c for c in columns if c not in frame_columns]:
        detail = f"column(s) not in frame: {','.join(missing)}"
    elif raised := _raised(res.exception_info):
        detail = f"could not be evaluated ({raised})"
    elif exp.type == "expect_table_columns_to_match_set" and not res.success:
        detail = _column_set_mismatch(result, exact=bool(exp.kwargs.get("exact_match", True)))
    percent = result.get("unexpected_percent")
    if not isinstance(percent, int | float) or isinstance(percent, bool) or not math.isfinite(percent):
        percent = None
    return ExpectationOutcome(
        expectation=exp.type,
        column=",".join(columns) if columns else None,
        success=bool(res.success),
        element_count=_count(result.get("element_count")),
        unexpected_count=_count(result.get("unexpected_count")),
        unexpected_percent=None if percent is None else float(percent),
        observed=observed,
        detail=detail,
    )


def _column_set_mismatch(result: Mapping[str, Any], *, exact: bool) -> str | None:
    """Name the missing (and, for an exact match, unexpected) columns from GE's details."""
    mismatched = (result.get("details") or {}).get("mismatched") or {}
    parts = []
    for key in ("missing", "unexpected") if exact else ("missing",):
        names = mismatched.get(key)
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            parts.append(f"{key} columns: {','.join(names)}")
    return "; ".join(parts) or None


def _columns(kwargs: Mapping[str, Any]) -> list[str]:
    if isinstance(kwargs.get("column"), str):
        return [kwargs["column"]]
    if isinstance(kwargs.get("column_list"), list | tuple):
        return [str(c) for c in kwargs["column_list"]]
    return [str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs]


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _raised(exception_info: Mapping[str, Any] | None) -> str | None:
    """Name the exception class GE caught (root cause first); its message is never used."""
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, Mapping) and info.get("raised_exception"):
            match = _EXCEPTION_RE.search(str(info.get("exception_traceback") or ""))
            return match.group(1) if match else "error"
    return None
