"""The checks every pipeline's zones carry, declared once.

Each :class:`CheckDef` names the check, the zone table it watches (relative to the pipeline's step),
whether a failure blocks what is downstream, and the function that evaluates it. The Dagster layer
turns the list into asset check specs and results; a plain script calls ``check.evaluate`` directly.
Adding a check is one entry in :data:`CHECKS`.

Outcomes hold counts, rule names and expectation names only — never a data value (PII must not leak
through check results).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import polars as pl
from deltalake import DeltaTable

from connectors import get_connector
from lakegate.columns import INGESTED_AT, PREFIX, REASON, RULE, RUN_ID
from lakegate.errors import LakegateError
from lakegate.registry import RegistrationError, Registry
from pipelines._flow import connector_config, resumed_config
from pipelines.errors import PipelineError
from pipelines.quality import Expectation, QualityConfigError, columns_read, standard_expectations, validate
from pipelines.spec import CdcSpec, Pattern, PipelineSpec, Scope
from zones import LakegateConfig, LoadReport, ZoneName, open_zone
from zones.pii_detection import PiiDetection

_UNIQUE = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
_ROW_COUNT = "expect_table_row_count_to_be_between"
_COLUMN_SET = "expect_table_columns_to_match_set"


class Step(StrEnum):
    """The steps of a pipeline: ``ingest`` (source -> raw, or curated for ETL) and ``curate`` (ELT)."""

    INGEST = "ingest"
    CURATE = "curate"


class Target(StrEnum):
    """Which of a step's tables a check watches."""

    DATA = "data"  # the table the step commits rows to
    QUARANTINE = "quarantine"
    PII = "pii"


@dataclass(frozen=True)
class CheckInput:
    """What a check may look at: the pipeline, its zones, the run and what the step reported."""

    spec: PipelineSpec
    config: LakegateConfig
    run_id: str
    report: LoadReport
    step: Step


@dataclass(frozen=True)
class CheckOutcome:
    """A check's result: passed or not, and value-free metadata (counts, names)."""

    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    failures: tuple[str, ...] = ()
    warn: bool = False
    """A failure is a warning (severity WARN), not an error."""


@dataclass(frozen=True)
class CheckDef:
    """One declared check.

    Attributes:
        name: Check name, unique per asset.
        step: The step whose tables it watches.
        target: The table of that step it watches.
        description: What it verifies, shown in the UI.
        evaluate: Computes the outcome after the step ran.
        blocking: Whether a failure stops downstream materialization, given the pipeline.
        applies: Whether the pipeline has this check at all.
    """

    name: str
    step: Step
    target: Target
    description: str
    evaluate: Callable[[CheckInput], CheckOutcome]
    blocking: Callable[[PipelineSpec], bool] = lambda spec: True
    applies: Callable[[PipelineSpec], bool] = lambda spec: True

    @property
    def key(self) -> str:
        """``<step>.<name>``: unique across the pipeline's checks (``quality`` runs in both steps)."""
        return f"{self.step.value}.{self.name}"


def zone_of(spec: PipelineSpec, step: Step, target: Target) -> ZoneName:
    """The zone holding ``target`` of ``step`` for this pipeline."""
    if target is Target.DATA:
        return spec.ingest_zone if step is Step.INGEST else ZoneName.CURATED
    return ZoneName(target.value)


def expectations_for(spec: PipelineSpec, *, full: bool, scope: Scope = Scope.BATCH) -> list[Expectation]:
    """The standard suite plus the declared expectations of ``scope``.

    ``full=False`` (one run's rows of append-only raw) drops key uniqueness (resent records are normal
    in raw); the row count is the table's, never a run's (a run may bring nothing new), so only
    :func:`table_expectations` carries it.
    """
    standard = standard_expectations(list(spec.columns), spec.primary_key)
    declared = [Expectation(e.type, e.kwargs) for e in spec.quality.scoped(scope)]
    standard = [e for e in standard if e.type != _ROW_COUNT and (full or e.type not in _UNIQUE)]
    return standard + declared


def table_expectations(spec: PipelineSpec) -> list[Expectation]:
    """The whole-table suite (scheduled): the standard one with the row count, and ``scope: table``."""
    standard = standard_expectations(list(spec.columns), spec.primary_key)
    return standard + [Expectation(e.type, e.kwargs) for e in spec.quality.scoped(Scope.TABLE)]


def _quality(check: CheckInput) -> CheckOutcome:
    """Great Expectations over the rows this run wrote to the step's data table (declared columns only).

    Its cost follows the batch, never the table: the rows are found by run id and by the instants the
    run's packages were ingested at, by which Delta's file statistics skip the other files
    (:func:`_of_run`). Raw is append-only and resent records are normal there: key uniqueness is not
    checked. In curated (ELT's curate, ETL) the batch's keys must be unique and not null; across the
    table the merge by key keeps them unique (one source row per key, matched on the key), so it is not
    re-validated row by row here — the scheduled :func:`table_quality` does that. The table's row count
    comes from the Delta log.
    """
    spec = check.spec
    zone = zone_of(spec, check.step, Target.DATA)
    curated = check.step is Step.CURATE or spec.pattern is Pattern.ETL
    table = open_zone(zone, check.config).delta_table(spec.domain, spec.name)
    suite = expectations_for(spec, full=curated)
    # The schema is the table's (Delta metadata): only the columns the other expectations read are read.
    schema = [e for e in suite if e.type == _COLUMN_SET]
    rows = [e for e in suite if e.type != _COLUMN_SET]
    needed = columns_read(rows)
    wanted = list(spec.columns) if needed is None else [c for c in spec.columns if c in needed]
    frame = pl.DataFrame() if table is None else _read(table, wanted, check)
    if not curated and table is not None and frame.height == 0:
        # This run committed no rows: nothing to gate, and importing Great Expectations costs ~3 s.
        return CheckOutcome(passed=True, metadata={"rows": 0, "evaluated": 0, "failed": 0, "failures": []})
    name = f"{zone.value}.{spec.domain}.{spec.name}"
    columns = pl.DataFrame() if table is None else _read(table, list(spec.columns), check, limit=0)
    outcome = _validated(columns, schema, name, frame, rows)
    if not curated:
        return outcome
    stored = table_rows(table)
    failures = outcome.failures + (() if stored else ("the curated table holds no rows (Delta log)",))
    return CheckOutcome(
        passed=outcome.passed and bool(stored),
        metadata={**outcome.metadata, "table_rows": stored},
        failures=failures,
    )


def table_quality(check: CheckInput) -> CheckOutcome:
    """The whole-table suite over the pipeline's final table: what a batch cannot answer (``scope: table``
    expectations) and an audit of what the write path guarantees (key unique, rows present). Reads every
    row: it runs on ``quality.table_schedule``, not with each run."""
    spec = check.spec
    zone = zone_of(spec, check.step, Target.DATA)
    table = open_zone(zone, check.config).delta_table(spec.domain, spec.name)
    frame = pl.DataFrame() if table is None else _read(table, list(spec.columns), None)
    return _validated(frame, table_expectations(spec), f"{zone.value}.{spec.domain}.{spec.name}.table")


def _validated(
    frame: pl.DataFrame, expectations: list[Expectation], suite_name: str, *more: Any
) -> CheckOutcome:
    """Validate ``frame`` against ``expectations`` (and each further ``frame, expectations`` pair given in
    ``more``) as one suite: value-free counts and failures."""
    pairs = [(frame, expectations), *zip(more[::2], more[1::2], strict=True)]
    try:
        reports = [validate(f, e, suite_name=suite_name) for f, e in pairs]
    except QualityConfigError as exc:
        return CheckOutcome(passed=False, metadata={"error": str(exc)}, failures=(str(exc),))
    summaries = [r.summary() for r in reports]
    failures = [line for s in summaries for line in s["failures"]]
    return CheckOutcome(
        passed=all(r.success for r in reports),
        metadata={
            "rows": max(f.height for f, _ in pairs),
            "evaluated": sum(s["evaluated"] for s in summaries),
            "failed": len(failures),
            "failures": failures,
        },
        failures=tuple(failures),
    )


def table_rows(table: DeltaTable | None) -> int:
    """Rows of a Delta table from its log (the add actions' record counts): no data file is read."""
    if table is None:
        return 0
    # polars reads the log's arro3 table through the Arrow C interface (pa.table would import pandas).
    counts = pl.DataFrame(table.get_add_actions(flatten=True)).get_column("num_records")
    return int(counts.sum() or 0)


def _read(
    table: DeltaTable, wanted: list[str], run: CheckInput | None, limit: int | None = None
) -> pl.DataFrame:
    """The ``wanted`` columns of ``table``: every row, or those ``run`` wrote."""
    scan = pl.scan_delta(table) if limit is None else pl.scan_delta(table).head(limit)
    if run is not None:
        scan = _of_run(scan, table, run)
    present = {f.name for f in table.schema().fields}
    columns = [c for c in wanted if c in present]
    return scan.select(columns or pl.all()).collect()


STATISTICS_PRECISION = timedelta(milliseconds=1)
"""How far a Delta file's timestamp statistics may be from its values (Delta keeps them to the millisecond;
delta-rs truncates, lakegate's staged files round outwards)."""


def _of_run(scan: pl.LazyFrame, table: DeltaTable, check: CheckInput) -> pl.LazyFrame:
    """The rows of ``scan`` that ``check``'s run wrote: by run id, and within the instants its load packages
    were ingested at (:attr:`~zones.LoadReport.ingested_window`), so Delta's file statistics skip every
    other file without reading it (strings have no statistics in lakegate's staged files)."""
    scan = scan.filter(pl.col(RUN_ID) == check.run_id)
    window = check.report.ingested_window
    if window is None or INGESTED_AT not in {f.name for f in table.schema().fields}:
        return scan
    first, last = window[0] - STATISTICS_PRECISION, window[1] + STATISTICS_PRECISION
    return scan.filter(pl.col(INGESTED_AT).is_between(first, last))


def _rows_accounted(check: CheckInput) -> CheckOutcome:
    """Guarantee 3: every input row of this run was committed or quarantined."""
    report = check.report
    counts = {
        "input_rows": report.input_rows,
        "committed_rows": report.committed_rows,
        "quarantined_rows": report.quarantined_rows,
    }
    balanced = report.input_rows == report.committed_rows + report.quarantined_rows
    return CheckOutcome(passed=balanced, metadata=counts)


def _records_explained(check: CheckInput) -> CheckOutcome:
    """Every quarantined record of this run names its rule and reason (a run checks its own records:
    the cost follows the run, not the quarantine's size)."""
    counts = _aggregate(
        check,
        ZoneName.QUARANTINE,
        this_run=True,
        records=pl.len(),
        unexplained=(pl.col(RULE).is_null() | pl.col(REASON).is_null()).sum(),
    )
    return CheckOutcome(passed=counts["unexplained"] == 0, metadata=counts)


def _vault_consistent(check: CheckInput) -> CheckOutcome:
    """The values this run vaulted are one non-empty value per (token, column); across the vault the
    insert-only merge by (token, column) keeps them unique."""
    counts = _aggregate(
        check,
        ZoneName.PII,
        this_run=True,
        tokens=pl.len(),
        duplicated=pl.len() - pl.struct("token", "column").n_unique(),
        empty=pl.col("value").is_null().sum(),
    )
    return CheckOutcome(passed=counts["duplicated"] == 0 and counts["empty"] == 0, metadata=counts)


def _pii_undeclared(check: CheckInput) -> CheckOutcome:
    """PII found by content outside the declared ``pii:`` columns, per ``column.recognizer`` (counts,
    never values). Under ``report`` it landed unprotected: the check warns (declare the columns, see
    ``lakegate pii suggest``); under ``tokenize``/``quarantine`` it was protected and the check passes."""
    found = dict(sorted(check.report.pii_found.items()))
    mode = check.spec.pii_detection
    metadata: dict[str, Any] = {"pii_detection": mode.value, "spans_found": sum(found.values())}
    metadata["found"] = found
    if not found or mode is not PiiDetection.REPORT:
        return CheckOutcome(passed=True, metadata=metadata)
    where = ", ".join(f"{name}: {n}" for name, n in found.items())
    failure = (
        f"undeclared PII left in plaintext (pii_detection: report): {where}; declare it under pii: "
        f"(lakegate pii suggest {check.spec.name}) or use pii_detection: tokenize"
    )
    return CheckOutcome(passed=False, metadata=metadata, failures=(failure,), warn=True)


def _consumer_lag(check: CheckInput) -> CheckOutcome:
    """Messages still waiting at the stream's source after this micro-batch, against ``max_lag``.

    Streaming connectors' probes name each partition with lag as ``"<source> lag <n>"``.
    """
    spec = check.spec
    connector = get_connector(spec.connector.type)
    limit = spec.trigger.max_lag if spec.trigger else None
    if connector.probe is None or limit is None:
        return CheckOutcome(passed=False, failures=("the connector cannot be probed for lag",))
    waiting = connector.probe(connector.parse_config(resumed_config(spec, check.config)))
    lags = [int(item.rpartition(" lag ")[2]) for item in waiting]
    total = sum(lags)
    metadata = {
        "lag": total,
        "max_lag": limit,
        "partitions_with_lag": len(lags),
        "max_partition_lag": max(lags, default=0),
    }
    failures = () if total <= limit else (f"consumer lag {total} message(s) > max_lag {limit}",)
    return CheckOutcome(passed=not failures, metadata=metadata, failures=failures)


def _aggregate(
    check: CheckInput, zone: ZoneName, *, this_run: bool = False, **measures: pl.Expr
) -> dict[str, int]:
    """Counts over a zone table (or this run's rows of it), computed by polars on the columns they
    need (0 when no table yet)."""
    table = open_zone(zone, check.config).delta_table(check.spec.domain, check.spec.name)
    if table is None:
        return dict.fromkeys(measures, 0)
    scan = pl.scan_delta(table)
    if this_run:
        scan = _of_run(scan, table, check)
    row = scan.select(**measures).collect().row(0, named=True)
    return {name: int(value or 0) for name, value in row.items()}


def _source_config(check: CheckInput) -> tuple[Any, Any]:
    connector = get_connector(check.spec.connector.type)
    return connector, connector.parse_config(connector_config(check.spec, check.config))


def _source_health(check: CheckInput) -> CheckOutcome:
    """The source's health measures (e.g. slot lag, retained WAL in bytes) against the ``cdc:`` limits;
    a measure without a limit is reported, not judged."""
    cdc = check.spec.cdc or CdcSpec()
    limits = {"slot_lag_bytes": cdc.max_slot_lag_bytes, "retained_wal_bytes": cdc.max_retained_wal_bytes}
    try:
        connector, config = _source_config(check)
        health = dict(connector.health(config))
    except LakegateError as exc:
        return CheckOutcome(passed=False, metadata={"error": str(exc)}, failures=(str(exc),))
    failures = tuple(
        f"{name} {value} > {limits[name]}"
        for name, value in health.items()
        if value > limits.get(name, value)
    )
    metadata = {**health, **{f"max_{name}": limit for name, limit in limits.items()}}
    return CheckOutcome(passed=not failures, metadata=metadata, failures=failures)


def _reconciled(check: CheckInput) -> CheckOutcome:
    """Curated holds as many rows as the source table (``count(*)`` when the check runs) and, when the
    connector can fetch rows by key, a seeded sample of curated rows equals the source's rows (a checksum
    of the data columns both hold, per key)."""
    table = open_zone(ZoneName.CURATED, check.config).delta_table(check.spec.domain, check.spec.name)
    key = list(check.spec.primary_key)
    rows, sample = 0, pl.DataFrame()
    if table is not None:
        curated = pl.scan_delta(table)
        rows = int(curated.select(pl.len()).collect().item())
        if key and rows:
            keys = curated.select(key).collect().sample(min(SAMPLE_ROWS, rows), seed=0)
            sample = curated.join(keys.lazy(), on=key, how="semi").collect()
    try:
        connector, config = _source_config(check)
        source = connector.source_rows(config)
        fetched = None
        if connector.source_sample is not None and sample.height:
            fetched = connector.source_sample(config, key, sample.select(key).rows())
    except LakegateError as exc:
        return CheckOutcome(passed=False, metadata={"error": str(exc)}, failures=(str(exc),))
    metadata: dict[str, Any] = {"source_rows": source, "curated_rows": rows}
    failures = [] if source == rows else [f"source {source} != curated {rows}"]
    if fetched is not None:
        differ = _checksum_mismatches(sample, fetched, key)
        metadata |= {"sampled_rows": sample.height, "sample_mismatches": differ}
        if differ:
            failures.append(f"{differ} of {sample.height} sampled rows differ from the source")
    return CheckOutcome(passed=not failures, metadata=metadata, failures=tuple(failures))


SAMPLE_ROWS = 100
"""Curated rows the reconciliation check compares with the source, by key."""


def _checksum_mismatches(sample: pl.DataFrame, fetched: list[dict[str, Any]], key: list[str]) -> int:
    """Sampled curated rows whose checksum (hash of the data columns the source also has, cast to curated's
    types) differs from the source row's, or whose key the source no longer holds."""
    if not fetched:
        return sample.height
    source = pl.DataFrame(fetched, infer_schema_length=None)
    columns = [c for c in sample.columns if c in source.columns and not c.startswith(PREFIX)]
    source = source.select(pl.col(c).cast(sample.schema[c], strict=False) for c in columns)
    checksum = pl.struct(columns).hash(seed=0)
    ours = sample.select(*key, checksum.alias("ours"))
    theirs = source.select(*key, checksum.alias("theirs"))
    joined = ours.join(theirs, on=key, how="left")
    return joined.filter(~pl.col("ours").eq_missing(pl.col("theirs"))).height


def _is_cdc(spec: PipelineSpec) -> bool:
    """A ``cdc:`` block on a connector that reports its source's health."""
    return spec.cdc is not None and get_connector(spec.connector.type).health is not None


CHECKS: tuple[CheckDef, ...] = (
    CheckDef(
        "quality",
        Step.INGEST,
        Target.DATA,
        "Great Expectations: schema, key, row count and declared expectations",
        _quality,
        blocking=lambda spec: spec.quality.blocking,
    ),
    CheckDef(
        "rows_accounted",
        Step.INGEST,
        Target.DATA,
        "input rows = committed rows + quarantined rows",
        _rows_accounted,
    ),
    CheckDef(
        "records_explained",
        Step.INGEST,
        Target.QUARANTINE,
        "every quarantined record has rule and reason",
        _records_explained,
        blocking=lambda spec: False,
    ),
    CheckDef(
        "vault_consistent",
        Step.INGEST,
        Target.PII,
        "one value per token and column; no empty values",
        _vault_consistent,
        applies=lambda spec: bool(spec.pii),
    ),
    CheckDef(
        "pii_undeclared",
        Step.INGEST,
        Target.DATA,
        "PII found by content outside the declared pii: columns (counts per column and recognizer); "
        "warns when pii_detection: report left it in plaintext",
        _pii_undeclared,
        blocking=lambda spec: False,
        applies=lambda spec: spec.pii_detection is not PiiDetection.OFF,
    ),
    CheckDef(
        "consumer_lag",
        Step.INGEST,
        Target.DATA,
        "messages waiting at the stream's source after the micro-batch <= trigger.max_lag",
        _consumer_lag,
        blocking=lambda spec: False,
        applies=lambda spec: spec.streaming and spec.trigger is not None and spec.trigger.max_lag is not None,
    ),
    CheckDef(
        "quality",
        Step.CURATE,
        Target.DATA,
        "Great Expectations on the rows this run merged; the table's row count from the Delta log",
        _quality,
        blocking=lambda spec: spec.quality.blocking,
    ),
    CheckDef(
        "cdc_slot_health",
        Step.INGEST,
        Target.DATA,
        "replication slot lag and retained WAL (bytes) within the cdc: thresholds",
        _source_health,
        blocking=lambda spec: False,
        applies=_is_cdc,
    ),
    CheckDef(
        "reconciliation",
        Step.CURATE,
        Target.DATA,
        "curated row count = the source table's count(*)",
        _reconciled,
        blocking=lambda spec: False,
        applies=lambda spec: _is_cdc(spec) and spec.cdc is not None and spec.cdc.reconcile,
    ),
)


class CheckRegistrationError(PipelineError, RegistrationError):
    """A check plug-in does not load a ``CheckDef`` named as its entry point, or reuses a built-in."""


def _validate(name: str, obj: object) -> CheckDef:
    if not isinstance(obj, CheckDef) or obj.key != name:
        raise CheckRegistrationError(
            f"check '{name}' must resolve to a pipelines.CheckDef whose key (<step>.<name>) is '{name}'"
        )
    return obj


REGISTRY: Registry[CheckDef] = Registry(
    "check", _validate, entry_point_group="lakegate.checks", broken_error=CheckRegistrationError
)
"""Every check by ``<step>.<name>``: the built-ins of :data:`CHECKS`, and those other distributions publish
under the ``lakegate.checks`` entry point (or register in-process) — the one registry design."""
for _builtin in CHECKS:
    REGISTRY.register(_builtin.key, _builtin)


def table_check(spec: PipelineSpec) -> CheckDef | None:
    """The whole-table check of ``spec``'s final table (curated, or raw for EL), run on
    ``quality.table_schedule`` rather than with each run; ``None`` when no expectation is ``scope: table``.
    Never blocking: it judges the table, not a run's rows."""
    if not spec.quality.scoped(Scope.TABLE):
        return None
    step = Step.CURATE if spec.pattern is Pattern.ELT else Step.INGEST
    return CheckDef(
        "table_quality",
        step,
        Target.DATA,
        "Great Expectations on the whole table (scope: table expectations, key, row count), on a schedule",
        table_quality,
        blocking=lambda spec: False,
    )


def checks_for(spec: PipelineSpec, step: Step) -> list[CheckDef]:
    """The checks ``spec``'s ``step`` carries: built-ins in declaration order, then plug-ins by name."""
    builtin = {c.key for c in CHECKS}
    plugged = [REGISTRY.get(name) for name in REGISTRY.names() if name not in builtin]
    return [c for c in (*CHECKS, *plugged) if c.step is step and c.applies(spec)]
