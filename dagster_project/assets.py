"""Dagster assets of one pipeline: ingest (dlt via dagster-dlt into raw or curated, with pii and
quarantine), curate (ELT: raw -> curated), and the checks every asset carries."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl
from dagster_dlt import DagsterDltResource, DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from dagster_project import flow
from dagster_project.checks import data_quality, pii_vault_check, quarantine_check, rows_accounted
from dagster_project.spec import Pattern, PipelineSpec
from zones import LoadReport, ZoneName, load_config, open_zone


@dataclass(frozen=True)
class PipelineKeys:
    """Asset keys of a pipeline: ``[domain, name, zone]``.

    The zone comes last because Dagster labels lineage nodes with the key's last part: a pipeline's
    nodes then read ``landing → raw → curated`` inside its domain's group.
    """

    spec: PipelineSpec

    def of(self, zone: ZoneName | str) -> dg.AssetKey:
        return dg.AssetKey([self.spec.domain, self.spec.name, str(zone)])

    @property
    def group(self) -> str:
        """One asset group per pipeline, e.g. ``sales_orders``."""
        return f"{self.spec.domain}_{self.spec.name}"

    @property
    def landing(self) -> dg.AssetKey:
        return self.of(ZoneName.LANDING)

    @property
    def ingest_zone(self) -> ZoneName:
        return ZoneName.CURATED if self.spec.pattern is Pattern.ETL else ZoneName.RAW


class _Translator(DagsterDltTranslator):
    def __init__(self, key: dg.AssetKey) -> None:
        super().__init__()
        self._key = key

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        return dg.AssetSpec(key=self._key)


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


def _table_metadata(zone_name: ZoneName, spec: PipelineSpec) -> dict[str, Any]:
    zone = open_zone(zone_name, load_config())
    table = zone.delta_table(spec.domain, spec.name)
    rows = 0 if table is None else int(pl.scan_delta(table).select(pl.len()).collect().item())
    return {
        "zone": zone_name.value,
        "table_uri": dg.MetadataValue.path(zone.table_uri(spec.domain, spec.name)),
        "delta_version": -1 if table is None else table.version(),
        "dagster/row_count": rows,
    }


def ingest_asset(spec: PipelineSpec, keys: PipelineKeys) -> dg.AssetsDefinition:
    """The multi-asset that runs the connector through dlt into the zones."""
    data_key, q_key, pii_key = keys.of(keys.ingest_zone), keys.of(ZoneName.QUARANTINE), keys.of(ZoneName.PII)
    kinds = {"dlt", "delta", "polars"} if spec.pattern is Pattern.ETL else {"dlt", "delta"}
    specs = [
        dg.AssetSpec(
            data_key,
            deps=[keys.landing],
            description=_describe(spec, keys.ingest_zone),
            kinds=kinds,
            metadata={"dagster/column_schema": table_schema(spec), "pattern": spec.pattern.value},
            group_name=keys.group,
        ),
        dg.AssetSpec(
            q_key,
            deps=[keys.landing],
            description=f"Rejected records of {spec.domain}/{spec.name}: rule, reason, position, raw text",
            kinds={"delta"},
            group_name=keys.group,
        ),
    ]
    checks = [
        dg.AssetCheckSpec(
            "quality",
            asset=data_key,
            blocking=spec.quality.blocking,
            description="Great Expectations: schema, key, row count and declared expectations",
        ),
        dg.AssetCheckSpec(
            "rows_accounted",
            asset=data_key,
            blocking=True,
            description="input rows = committed rows + quarantined rows",
        ),
        dg.AssetCheckSpec(
            "records_explained", asset=q_key, description="every quarantined record has rule and reason"
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
        checks.append(
            dg.AssetCheckSpec(
                "vault_consistent",
                asset=pii_key,
                blocking=True,
                description="one value per token and column; no empty values",
            )
        )

    @dg.multi_asset(
        name=f"{spec.domain}__{spec.name}__ingest",
        specs=specs,
        check_specs=checks,
        pool=f"lakegate_{spec.domain}_{spec.name}",
    )
    def ingest(context: dg.AssetExecutionContext) -> Iterator[Any]:
        config = load_config()
        report = LoadReport()
        target = flow.ingest_target(spec, context.run_id, config)
        source = flow.ingest_source(spec, config)
        dlt_meta: dict[str, Any] = {}
        with flow.dlt_pipeline(spec, "ingest", target, report) as pipeline:
            for event in DagsterDltResource().run(
                context,
                dlt_source=source,
                dlt_pipeline=pipeline,
                dagster_dlt_translator=_Translator(data_key),
            ):
                dlt_meta = {
                    k: v for k, v in (event.metadata or {}).items() if k in {"started_at", "finished_at"}
                }
        counts = _counts(report)
        context.log.info(f"{spec.domain}/{spec.name}: {_summary(report)}")
        yield dg.MaterializeResult(
            asset_key=data_key, metadata={**dlt_meta, **counts, **_table_metadata(keys.ingest_zone, spec)}
        )
        yield dg.MaterializeResult(
            asset_key=q_key,
            metadata={
                "quarantined_rows": report.quarantined_rows,
                **_table_metadata(ZoneName.QUARANTINE, spec),
            },
        )
        if spec.pii:
            yield dg.MaterializeResult(
                asset_key=pii_key,
                metadata={"vaulted_values": report.vaulted_values, **_table_metadata(ZoneName.PII, spec)},
            )
            yield pii_vault_check(spec, pii_key)
        yield rows_accounted(report, data_key)
        yield quarantine_check(spec, q_key)
        if spec.pattern is Pattern.ETL:
            yield data_quality(spec, keys.ingest_zone, data_key, full=True)
        else:  # raw is append-only: check what this run added, with the declared expectations
            yield data_quality(spec, keys.ingest_zone, data_key, full=False, run_id=context.run_id)

    return ingest


def curate_asset(spec: PipelineSpec, keys: PipelineKeys) -> dg.AssetsDefinition:
    """ELT's second step: transform the raw rows not yet applied and merge them into curated by key."""
    key, raw_key = keys.of(ZoneName.CURATED), keys.of(ZoneName.RAW)

    @dg.asset(
        key=key,
        deps=[raw_key],
        description=_describe(spec, ZoneName.CURATED),
        kinds={"polars", "delta"},
        group_name=keys.group,
        metadata={"dagster/column_schema": table_schema(spec), "transforms": ", ".join(spec.transforms)},
        check_specs=[
            dg.AssetCheckSpec(
                "quality",
                asset=key,
                blocking=spec.quality.blocking,
                description="Great Expectations on the whole curated table",
            )
        ],
        pool=f"lakegate_{spec.domain}_{spec.name}",
    )
    def curate(context: dg.AssetExecutionContext) -> Iterator[Any]:
        config = load_config()
        report = LoadReport()
        # Opening the pipeline first loads any package an interrupted curate left behind (with the raw
        # version it covers), so the raw rows still pending are computed after it.
        with flow.dlt_pipeline(
            spec, "curate", flow.curate_target(spec, context.run_id, config), report
        ) as pipeline:
            pending = flow.pending_raw(spec, config)
            if pending is None or not pending.frame.height:
                context.log.info(f"{spec.domain}/{spec.name}: curated is up to date with raw")
            else:
                pipeline.run(flow.curate_source(spec, pending))
                context.log.info(
                    f"{spec.domain}/{spec.name}: {_summary(report)} (raw version {pending.raw_version})"
                )
        yield dg.MaterializeResult(metadata={**_counts(report), **_table_metadata(ZoneName.CURATED, spec)})
        yield data_quality(spec, ZoneName.CURATED, key, full=True)

    return curate


def _describe(spec: PipelineSpec, zone: ZoneName) -> str:
    what = {
        ZoneName.RAW: "as received, typed, PII tokenized, append-only",
        ZoneName.CURATED: f"cleaned ({', '.join(spec.transforms) or 'no transforms'}), one row per key",
    }[zone]
    head = f"{spec.domain}/{spec.name} {what} ({spec.pattern.value})."
    return f"{head} {spec.description}" if spec.description else head


def _summary(report: LoadReport) -> str:
    rules = ", ".join(f"{rule}: {n}" for rule, n in sorted(report.rules.items())) or "none"
    return (
        f"{report.input_rows} row(s) in, {report.committed_rows} committed, "
        f"{report.quarantined_rows} quarantined ({rules}), {report.replayed_jobs} replayed job(s) skipped"
    )


def _counts(report: LoadReport) -> dict[str, Any]:
    return {
        "input_rows": report.input_rows,
        "committed_rows": report.committed_rows,
        "quarantined_rows": report.quarantined_rows,
        "replayed_jobs": report.replayed_jobs,
        "quarantine_rules": dg.MetadataValue.json(dict(report.rules)),
    }
