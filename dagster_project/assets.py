"""Dagster assets of one pipeline: ingest (source -> raw or curated, with pii and quarantine) and curate
(ELT: raw -> curated), each step run by the pipeline core, and the checks :data:`pipelines.CHECKS`
declares for them."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl

import pipelines
from dagster_project.resources import PII_KEY, ZONES
from pipelines import (
    CheckDef,
    CheckInput,
    CheckOutcome,
    Pattern,
    PipelineSpec,
    Step,
    Target,
    checks_for,
    zone_of,
)
from zones import LakegateConfig, LoadReport, ZoneName, open_zone


@dataclass(frozen=True)
class PipelineKeys:
    """Asset keys of a pipeline: ``[domain, name, zone]``.

    The zone comes last because Dagster labels lineage nodes with the key's last part: a pipeline's
    nodes then read ``landing → raw → curated`` inside its own group.
    """

    spec: PipelineSpec

    def of(self, zone: ZoneName | str) -> dg.AssetKey:
        return dg.AssetKey([self.spec.domain, self.spec.name, str(zone)])

    def target(self, step: Step, target: Target) -> dg.AssetKey:
        """The asset of ``target`` in ``step`` (e.g. ingest's data table is raw, or curated for ETL)."""
        return self.of(zone_of(self.spec, step, target))

    @property
    def group(self) -> str:
        """One asset group per pipeline, e.g. ``sales_orders``."""
        return self.spec.key

    @property
    def landing(self) -> dg.AssetKey:
        return self.of(ZoneName.LANDING)

    @property
    def pool(self) -> str:
        """The concurrency pool of the pipeline's steps: one step of a pipeline at a time."""
        return f"lakegate_{self.spec.key}"


def table_schema(spec: PipelineSpec) -> dg.TableSchema:
    """Declared columns with descriptions and PII tags, for the catalog."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=column.type,
                description=column.description or None,
                tags={"pii": spec.pii[name].value} if name in spec.pii else {},
            )
            for name, column in spec.columns.items()
        ]
    )


def _check_specs(keys: PipelineKeys, step: Step) -> list[dg.AssetCheckSpec]:
    spec = keys.spec
    return [
        dg.AssetCheckSpec(
            c.name, asset=keys.target(step, c.target), blocking=c.blocking(spec), description=c.description
        )
        for c in checks_for(spec, step)
    ]


def _check_results(
    keys: PipelineKeys, step: Step, given: CheckInput, log: Any
) -> Iterator[dg.AssetCheckResult]:
    for check in checks_for(keys.spec, step):
        outcome = check.evaluate(given)
        key = keys.target(step, check.target)
        if not outcome.passed:
            why = "; ".join(outcome.failures) or _counts_line(outcome)
            log.warning(f"check {key.to_user_string()}:{check.name} FAILED: {why}")
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=check.name,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.WARN if outcome.warn else dg.AssetCheckSeverity.ERROR,
            metadata=_metadata(outcome),
            description="; ".join(outcome.failures) or None,  # names expectations and counts, never values
        )


def _counts_line(outcome: CheckOutcome) -> str:
    return ", ".join(f"{k}={v}" for k, v in outcome.metadata.items() if isinstance(v, int))


def _metadata(outcome: CheckOutcome) -> dict[str, Any]:
    return {
        k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v for k, v in outcome.metadata.items()
    }


def _table_metadata(zone_name: ZoneName, spec: PipelineSpec, config: LakegateConfig) -> dict[str, Any]:
    zone = open_zone(zone_name, config)
    table = zone.delta_table(spec.domain, spec.name)
    rows = 0 if table is None else int(pl.scan_delta(table).select(pl.len()).collect().item())
    return {
        "zone": zone_name.value,
        "table_uri": dg.MetadataValue.path(zone.table_uri(spec.domain, spec.name)),
        "delta_version": -1 if table is None else table.version(),
        "dagster/row_count": rows,
    }


def _counts(report: LoadReport) -> dict[str, Any]:
    return {
        "input_rows": report.input_rows,
        "committed_rows": report.committed_rows,
        "quarantined_rows": report.quarantined_rows,
        "replayed_jobs": report.replayed_jobs,
        "quarantine_rules": dg.MetadataValue.json(dict(report.rules)),
        # PII found by content per column.recognizer: counts only, never a value.
        "pii_found": dg.MetadataValue.json(dict(sorted(report.pii_found.items()))),
    }


def ingest_asset(spec: PipelineSpec, keys: PipelineKeys) -> dg.AssetsDefinition:
    """The multi-asset that runs the connector through dlt into the zones."""
    data_key = keys.target(Step.INGEST, Target.DATA)
    q_key, pii_key = keys.of(ZoneName.QUARANTINE), keys.of(ZoneName.PII)
    kinds = {"dlt", "delta", "polars"} if spec.pattern is Pattern.ETL else {"dlt", "delta"}
    specs = [
        dg.AssetSpec(
            data_key,
            deps=[keys.landing],
            description=_describe(spec, spec.ingest_zone),
            kinds=kinds,
            metadata={"dagster/column_schema": table_schema(spec), "pattern": spec.pattern.value},
            group_name=keys.group,
        ),
        dg.AssetSpec(
            q_key,
            deps=[keys.landing],
            description=f"Rejected records of {spec.path}: rule, reason, position, raw text",
            kinds={"delta"},
            group_name=keys.group,
        ),
    ]
    if spec.pii:
        specs.append(
            dg.AssetSpec(
                pii_key,
                deps=[keys.landing],
                description=f"Plaintext of {', '.join(spec.pii)} by token (restricted to PII holders)",
                kinds={"delta"},
                group_name=keys.group,
                tags={"classification": "restricted"},
            )
        )

    @dg.multi_asset(
        name=f"{spec.domain}__{spec.name}__ingest",
        specs=specs,
        check_specs=_check_specs(keys, Step.INGEST),
        pool=keys.pool,
        required_resource_keys={ZONES, PII_KEY} if _needs_key(spec) else {ZONES},
    )
    def ingest(context: dg.AssetExecutionContext) -> Iterator[Any]:
        config = getattr(context.resources, ZONES).load()
        key = getattr(context.resources, PII_KEY).key if _needs_key(spec) else None
        report = pipelines.ingest(spec, run_id=context.run_id, config=config, pii_key=key)
        context.log.info(f"{spec.path}: {report.summary()}")
        yield dg.MaterializeResult(
            asset_key=data_key,
            metadata={**_counts(report), **_table_metadata(spec.ingest_zone, spec, config)},
        )
        yield dg.MaterializeResult(
            asset_key=q_key,
            metadata={
                "quarantined_rows": report.quarantined_rows,
                **_table_metadata(ZoneName.QUARANTINE, spec, config),
            },
        )
        if spec.pii:
            yield dg.MaterializeResult(
                asset_key=pii_key,
                metadata={
                    "vaulted_values": report.vaulted_values,
                    **_table_metadata(ZoneName.PII, spec, config),
                },
            )
        given = CheckInput(spec=spec, config=config, run_id=context.run_id, report=report, step=Step.INGEST)
        yield from _check_results(keys, Step.INGEST, given, context.log)

    return ingest


def curate_asset(spec: PipelineSpec, keys: PipelineKeys) -> dg.AssetsDefinition:
    """ELT's second step: transform the raw rows not yet applied and merge them into curated by key."""

    @dg.asset(
        key=keys.of(ZoneName.CURATED),
        deps=[keys.of(ZoneName.RAW)],
        description=_describe(spec, ZoneName.CURATED),
        kinds={"polars", "delta"},
        group_name=keys.group,
        metadata={"dagster/column_schema": table_schema(spec), "transforms": ", ".join(spec.transforms)},
        check_specs=_check_specs(keys, Step.CURATE),
        pool=keys.pool,
        required_resource_keys={ZONES},
    )
    def curate(context: dg.AssetExecutionContext) -> Iterator[Any]:
        config = getattr(context.resources, ZONES).load()
        result = pipelines.curate(spec, run_id=context.run_id, config=config)
        if result.raw_version is None:
            context.log.info(f"{spec.path}: curated is up to date with raw")
        else:
            context.log.info(f"{spec.path}: {result.report.summary()} (raw version {result.raw_version})")
        yield dg.MaterializeResult(
            metadata={**_counts(result.report), **_table_metadata(ZoneName.CURATED, spec, config)}
        )
        given = CheckInput(
            spec=spec, config=config, run_id=context.run_id, report=result.report, step=Step.CURATE
        )
        yield from _check_results(keys, Step.CURATE, given, context.log)

    return curate


def history_key(spec: PipelineSpec) -> dg.AssetKey:
    """``[domain, <name>_history, curated]``: the SCD2 history dataset in curated."""
    return dg.AssetKey([spec.domain, pipelines.history_dataset(spec).name, ZoneName.CURATED.value])


def history_asset(spec: PipelineSpec, keys: PipelineKeys) -> dg.AssetsDefinition:
    """ELT with ``history: scd2``: raw's change rows kept as one row per version of each key, with the
    ``history_consistent`` check (one open version per key, no version ending before it starts)."""
    dataset = pipelines.history_dataset(spec)
    key = history_key(spec)

    @dg.asset(
        key=key,
        deps=[keys.of(ZoneName.RAW)],
        description=f"{spec.domain}/{dataset.name}: SCD2 history of {spec.path}, one row per version of "
        f"each key ({', '.join(spec.primary_key)}) with valid_from, valid_to and is_current.",
        kinds={"polars", "delta"},
        group_name=keys.group,
        check_specs=[
            dg.AssetCheckSpec(
                "history_consistent",
                asset=key,
                blocking=True,
                description="At most one open version per key; no version ends before it starts",
            )
        ],
        pool=keys.pool,
        required_resource_keys={ZONES},
    )
    def history(context: dg.AssetExecutionContext) -> Iterator[Any]:
        config = getattr(context.resources, ZONES).load()
        result = pipelines.history(spec, run_id=context.run_id, config=config)
        if result.raw_version is None:
            context.log.info(f"{spec.path}: history is up to date with raw")
        zone = open_zone(ZoneName.CURATED, config)
        table = zone.delta_table(dataset.domain, dataset.name)
        counts = pipelines.history_counts(spec, config)
        yield dg.MaterializeResult(
            metadata={
                **_counts(result.report),
                "table_uri": dg.MetadataValue.path(zone.table_uri(dataset.domain, dataset.name)),
                "delta_version": -1 if table is None else table.version(),
                "dagster/row_count": counts["versions"],
            }
        )
        yield dg.AssetCheckResult(
            check_name="history_consistent",
            passed=not any(v for k, v in counts.items() if k != "versions"),
            metadata=counts,
        )

    return history


def table_quality_check(spec: PipelineSpec, keys: PipelineKeys, check: CheckDef) -> dg.AssetChecksDefinition:
    """The whole-table check (``scope: table`` expectations) as an asset check of its own: the pipeline's
    job leaves it out and its schedule runs it (see ``pipeline_defs``)."""

    @dg.asset_check(
        asset=keys.target(check.step, check.target),
        name=check.name,
        description=check.description,
        blocking=check.blocking(spec),
        required_resource_keys={ZONES},
    )
    def table_quality(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        config = getattr(context.resources, ZONES).load()
        given = CheckInput(
            spec=spec, config=config, run_id=context.run_id, report=LoadReport(), step=check.step
        )
        outcome = check.evaluate(given)
        if not outcome.passed:
            context.log.warning(f"check {spec.path}:{check.name} FAILED: {'; '.join(outcome.failures)}")
        return dg.AssetCheckResult(
            passed=outcome.passed,
            metadata=_metadata(outcome),
            description="; ".join(outcome.failures) or None,
        )

    return table_quality


def _needs_key(spec: PipelineSpec) -> bool:
    """Declared PII: the step needs the token key to start. PII found by content needs it only once
    found; the write path then reads ``$LAKEGATE_PII_KEY`` itself (see ``zones.lakegate_destination``)."""
    return bool(spec.pii)


def _describe(spec: PipelineSpec, zone: ZoneName) -> str:
    what = {
        ZoneName.RAW: "as received, typed, PII tokenized, append-only",
        ZoneName.CURATED: f"cleaned ({', '.join(spec.transforms) or 'no transforms'}), one row per key",
    }[zone]
    head = f"{spec.path} {what} ({spec.pattern.value})."
    return f"{head} {spec.description}" if spec.description else head
