"""Asset checks every lakegate asset carries. Check metadata holds counts and rule names only —
never a data value (PII must not leak through check results)."""

from __future__ import annotations

import dagster as dg
import polars as pl

from dagster_project.quality import Expectation, QualityConfigError, standard_expectations, validate
from dagster_project.spec import PipelineSpec
from zones import LoadReport, ZoneName, load_config, open_zone

_UNIQUE = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
_ROW_COUNT = "expect_table_row_count_to_be_between"


def expectations_for(spec: PipelineSpec, *, full: bool) -> list[Expectation]:
    """The standard suite plus declared expectations.

    ``full=False`` (one run's rows of append-only raw) drops key uniqueness (resent records are normal
    in raw) and the row count (a run may bring nothing new).
    """
    standard = standard_expectations(list(spec.columns), spec.primary_key)
    declared = [Expectation(e.type, e.kwargs) for e in spec.quality.expectations]
    if not full:
        standard = [e for e in standard if e.type not in _UNIQUE and e.type != _ROW_COUNT]
    return standard + declared


def data_quality(
    spec: PipelineSpec, zone: ZoneName, key: dg.AssetKey, *, full: bool, run_id: str | None = None
) -> dg.AssetCheckResult:
    """Great Expectations over the dataset's table in ``zone`` (declared columns only), or over the rows
    run ``run_id`` committed."""
    table = open_zone(zone, load_config()).delta_table(spec.domain, spec.name)
    wanted = list(spec.columns) or None
    if table is None:
        frame = pl.DataFrame()
    else:
        scan = pl.scan_delta(table)
        if run_id is not None:
            scan = scan.filter(pl.col("_lakegate_run_id") == run_id)
        frame = scan.select(_present(table, wanted) or pl.all()).collect()
    try:
        report = validate(
            frame, expectations_for(spec, full=full), suite_name=f"{zone.value}.{spec.domain}.{spec.name}"
        )
    except QualityConfigError as exc:
        return dg.AssetCheckResult(
            asset_key=key,
            check_name="quality",
            passed=False,
            metadata={"error": str(exc)},
            severity=dg.AssetCheckSeverity.ERROR,
        )
    summary = report.summary()
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="quality",
        passed=report.success,
        metadata={
            "rows": frame.height,
            "evaluated": summary["evaluated"],
            "failed": summary["failed"],
            "failures": dg.MetadataValue.json(summary["failures"]),
        },
    )


def _present(table: object, wanted: list[str] | None) -> list[str] | None:
    if wanted is None:
        return None
    names = {f.name for f in table.schema().fields}  # type: ignore[attr-defined]
    return [c for c in wanted if c in names]


def rows_accounted(report: LoadReport, key: dg.AssetKey) -> dg.AssetCheckResult:
    """Guarantee 3: every input row of this run was committed or quarantined."""
    balanced = report.input_rows == report.committed_rows + report.quarantined_rows
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="rows_accounted",
        passed=balanced,
        metadata={
            "input_rows": report.input_rows,
            "committed_rows": report.committed_rows,
            "quarantined_rows": report.quarantined_rows,
        },
    )


def quarantine_check(spec: PipelineSpec, key: dg.AssetKey) -> dg.AssetCheckResult:
    """Every quarantined record names its rule and reason."""
    counts = _aggregate(
        ZoneName.QUARANTINE,
        spec,
        records=pl.len(),
        unexplained=(pl.col("_lakegate_rule").is_null() | pl.col("_lakegate_reason").is_null()).sum(),
    )
    return dg.AssetCheckResult(
        asset_key=key, check_name="records_explained", passed=counts["unexplained"] == 0, metadata=counts
    )


def pii_vault_check(spec: PipelineSpec, key: dg.AssetKey) -> dg.AssetCheckResult:
    """The vault holds exactly one non-empty value per (token, column)."""
    counts = _aggregate(
        ZoneName.PII,
        spec,
        tokens=pl.len(),
        duplicated=pl.len() - pl.struct("token", "column").n_unique(),
        empty=pl.col("value").is_null().sum(),
    )
    passed = counts["duplicated"] == 0 and counts["empty"] == 0
    return dg.AssetCheckResult(asset_key=key, check_name="vault_consistent", passed=passed, metadata=counts)


def _aggregate(zone: ZoneName, spec: PipelineSpec, **measures: pl.Expr) -> dict[str, int]:
    """Counts over a zone table, computed by polars on the columns they need (0 when no table yet)."""
    table = open_zone(zone, load_config()).delta_table(spec.domain, spec.name)
    if table is None:
        return dict.fromkeys(measures, 0)
    row = pl.scan_delta(table).select(**measures).collect().row(0, named=True)
    return {name: int(value or 0) for name, value in row.items()}
