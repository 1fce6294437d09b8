"""The wiring of one pipeline's steps: the dlt pipeline that loads a spec's connector through the lakegate
destination, the transforms (in flight or raw -> curated), and every row a transform removes kept as a
quarantine record. :mod:`pipelines.steps` runs them.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dlt
import polars as pl
import pyarrow as pa
from dlt.extract import DltResource, DltSource

from connectors import get_connector, plain_strings
from lakegate.columns import (
    LINEAGE_COLUMNS,
    LOAD_ID,
    POSITION,
    PREFIX,
    RAW_TEXT,
    REJECT_REASON,
    REJECT_RULE,
    ROW_ID,
    SOURCE,
)
from pipelines._values import resolve_env
from pipelines.errors import PipelineSpecError
from pipelines.spec import ZONE_URL_PREFIX, Pattern, PipelineSpec
from transforms import CAST_ERRORS, TransformContext, cast_schema, get_transform
from zones import (
    LakegateConfig,
    LoadReport,
    LoadTarget,
    ZoneName,
    appended_since,
    committed_position,
    committed_positions,
    lakegate_pipeline,
    lineage_stamp,
    open_zone,
    record_position,
)

log = logging.getLogger("lakegate.flow")


def connector_config(spec: PipelineSpec, config: LakegateConfig) -> dict[str, Any]:
    """The connector config with ``lakegate://<zone>/<path>`` URLs resolved to the zone's real URL.

    The zone's storage options are passed along, in the connector's dialect, when it takes them.
    """
    connector = get_connector(spec.connector.type)
    resolved: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in resolve_env(spec.connector.config, "connector.config").items():
        if isinstance(value, str) and value.startswith(ZONE_URL_PREFIX):
            zone_name, _, path = value.removeprefix(ZONE_URL_PREFIX).partition("/")
            zone = open_zone(zone_name, config)
            value = f"{zone.config.url}/{path}"
            options = zone.fsspec_options() if connector.storage_options == "fsspec" else zone.delta_options()
        resolved[key] = value
    if options and connector.storage_options:
        resolved.setdefault("storage_options", options)
    if (
        spec.columns and "columns" in connector.config_model.model_fields
    ):  # a connector that types as it reads
        resolved.setdefault("columns", {name: column.type for name, column in spec.columns.items()})
    return resolved


def resumed_config(spec: PipelineSpec, config: LakegateConfig) -> dict[str, Any]:
    """:func:`connector_config` with, for an ordered connector, the positions committed in the zones as
    ``resume``: it resumes right after what the zones hold, whatever dlt's local folder says."""
    connector = get_connector(spec.connector.type)
    raw = connector_config(spec, config)
    if connector.positions is not None:
        sources = list(connector.positions(connector.parse_config(raw)))
        zones = [open_zone(spec.ingest_zone, config), open_zone(ZoneName.QUARANTINE, config)]
        raw = connector.resumed(raw, committed_positions(zones, spec.dataset(), sources))
    return raw


def dlt_pipeline(
    spec: PipelineSpec, step: str, target: LoadTarget, report: LoadReport, pipelines_dir: Path | None = None
) -> AbstractContextManager[dlt.Pipeline]:
    """The write-path dlt pipeline of one step (``ingest`` or ``curate``), locked for one run."""
    return lakegate_pipeline(f"lakegate_{spec.key}_{step}", target, report, pipelines_dir)


def ingest_source(spec: PipelineSpec, config: LakegateConfig, target: LoadTarget | None = None) -> DltSource:
    """The spec's connector as a one-resource dlt source named after the dataset.

    For ETL the declared transforms run in flight, before the destination. Appends to ``target`` get their
    lineage stamped as they are extracted, so a clean load file can be committed as it is.
    """
    connector = get_connector(spec.connector.type)
    built = connector.build(resumed_config(spec, config))
    resource = built if isinstance(built, DltResource) else _single_resource(built, spec)
    resource = resource.with_name(spec.name)
    if spec.pattern is Pattern.ETL and spec.transforms:
        ctx = _context(spec)
        resource = resource.add_map(lambda table: transform_keeping_rejects(table, spec.transforms, ctx))
    if target is not None and not target.merge:
        resource = resource.add_map(lineage_stamp(target.run_id))
    return dlt.source(name=spec.name)(lambda: resource)()


def _single_resource(source: DltSource, spec: PipelineSpec) -> DltResource:
    resources = list(source.selected_resources.values())
    if len(resources) != 1:
        raise PipelineSpecError(
            f"connector '{spec.connector.type}' yields {len(resources)} resources; select one"
        )
    return resources[0]


def ingest_target(
    spec: PipelineSpec, run_id: str, config: LakegateConfig, pii_key: str | None = None
) -> LoadTarget:
    """Where the ingest step commits: raw (EL, ELT) or curated by key (ETL)."""
    etl = spec.pattern is Pattern.ETL
    return LoadTarget(
        dataset=spec.dataset(),
        zone=spec.ingest_zone,
        pipeline=spec.name,
        run_id=run_id,
        config=config,
        merge=etl,
        pii_key=pii_key,
        track_positions=get_connector(spec.connector.type).positions is not None,
    )


def _context(spec: PipelineSpec) -> TransformContext:
    return TransformContext(
        primary_key=tuple(spec.primary_key),
        schema={name: column.type for name, column in spec.columns.items()},
        order_by=tuple(spec.order_by),
    )


def transform_keeping_rejects(table: pa.Table, names: list[str], ctx: TransformContext) -> pa.Table:
    """Apply ``names`` to the parsed rows of ``table``; rows a transform removes become reject rows.

    Rows already marked as rejected pass through untouched. Each removed row keeps its source position
    and its values (as JSON raw text) and names the transform that removed it.
    """
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    passthrough = pl.DataFrame()
    if REJECT_REASON in frame.columns:
        marked = pl.col(REJECT_REASON).is_not_null()
        passthrough, frame = (
            frame.filter(marked),
            frame.filter(~marked).drop(REJECT_REASON, REJECT_RULE, RAW_TEXT),
        )
    if not frame.height:  # a batch of rejects only: nothing to transform
        return table
    removed: list[pl.DataFrame] = []
    if ctx.schema:  # transforms compare typed values ("10" < "9" as text), so type first
        typed = cast_schema(frame.lazy(), ctx).collect()
        failed = typed[CAST_ERRORS].is_not_null()
        if failed.any():
            removed.append(
                _as_rejects(frame.filter(failed), "cast_schema", typed.filter(failed)[CAST_ERRORS])
            )
        frame = typed.filter(~failed).drop(CAST_ERRORS)
    row_id = f"_{ROW_ID}"  # not the dedupe transform's own scratch column
    frame = frame.with_row_index(row_id)
    for name in names:
        before = frame
        frame = get_transform(name)(frame.lazy(), ctx).collect()
        gone = before.join(frame.select(row_id), on=row_id, how="anti")
        if gone.height:
            removed.append(_as_rejects(gone.drop(row_id), name))
    parts = [frame.drop(row_id), *removed, passthrough]
    return plain_strings(pl.concat([p for p in parts if p.width], how="diagonal_relaxed").to_arrow())


def _as_rejects(frame: pl.DataFrame, transform: str, reasons: pl.Series | None = None) -> pl.DataFrame:
    data = [c for c in frame.columns if not c.startswith(PREFIX)]
    default = f"removed by transform '{transform}' (e.g. superseded by a later record with the same key)"
    why = pl.lit(reasons) if reasons is not None else pl.lit(default)
    if SOURCE in frame.columns and POSITION in frame.columns:  # name the file and row it came from
        where = pl.concat_str(pl.col(SOURCE), pl.lit(" row "), pl.col(POSITION).cast(pl.String), pl.lit(": "))
        why = pl.concat_str(where.fill_null(pl.lit("")), why)
    return frame.select(
        *[pl.col(c) for c in (SOURCE, POSITION) if c in frame.columns],
        pl.lit(f"transform:{transform}").alias(REJECT_RULE),
        why.alias(REJECT_REASON),
        pl.struct(data).struct.json_encode().alias(RAW_TEXT),
    )


@dataclass(frozen=True)
class CurateInput:
    """The raw rows a curate step has to apply and the raw version they reach."""

    frame: pl.DataFrame
    raw_version: int
    app_id: str


def raw_app_id(spec: PipelineSpec) -> str:
    """The app id under which curated (and quarantine) record the raw version they applied."""
    return f"raw:{spec.domain}/{spec.name}"


def raw_applied_version(spec: PipelineSpec, config: LakegateConfig) -> int | None:
    """The raw version the curate step applied last (``None``: never)."""
    dataset = spec.dataset()
    applied = [
        committed_position(open_zone(zone, config), dataset, raw_app_id(spec))
        for zone in (ZoneName.CURATED, ZoneName.QUARANTINE)
    ]
    return max((v for v in applied if v is not None), default=None)


def pending_raw(spec: PipelineSpec, config: LakegateConfig) -> CurateInput | None:
    """Raw rows committed since the raw version curated last applied; ``None`` when up to date."""
    raw = open_zone(ZoneName.RAW, config)
    table = raw.delta_table(spec.domain, spec.name)
    if table is None:
        return None
    app_id = raw_app_id(spec)
    done = raw_applied_version(spec, config)
    if done is not None and done >= table.version():
        return None
    # Raw is append-only: the files its appends added since the applied version hold exactly the new
    # rows (read from the commits, so compaction and retention deletes never look like new rows).
    new_files = table.file_uris() if done is None else appended_since(table, done, raw.fsspec_options())
    if not new_files:
        return None
    options = raw.delta_options() or None
    # Files from before and after a schema change differ in columns: align them by name.
    parts = [pl.read_parquet(uri, storage_options=options) for uri in new_files]
    frame = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    order = [c for c in (LOAD_ID, SOURCE, POSITION) if c in frame.columns]
    frame = (
        frame.drop([c for c in LINEAGE_COLUMNS if c != LOAD_ID], strict=False)
        .sort(order, nulls_last=True, maintain_order=True)
        .drop(LOAD_ID, strict=False)
    )
    return CurateInput(frame=frame, raw_version=table.version(), app_id=app_id)


def curate_source(spec: PipelineSpec, pending: CurateInput) -> DltSource:
    """A dlt source yielding the transformed pending raw rows (and the rows transforms removed).

    The raw version they reach travels with the load package (``record_position``): whichever run
    finally loads the package commits it, so the next curate starts right after it.
    """
    table = transform_keeping_rejects(pending.frame.to_arrow(), spec.transforms, _context(spec))

    # No dlt key hints: reject rows carry no key, and the merge by key is the zone destination's job.
    @dlt.resource(name=spec.name)
    def curated() -> Any:
        record_position(pending.app_id, pending.raw_version)
        yield table

    return dlt.source(name=f"{spec.name}_curated")(lambda: curated)()


def curate_target(spec: PipelineSpec, run_id: str, config: LakegateConfig) -> LoadTarget:
    """Curated, merged by key. Raw is already PII-protected, so tokens are not tokenized again."""
    return LoadTarget(
        dataset=replace(spec.dataset(), pii={}),
        zone=ZoneName.CURATED,
        pipeline=f"{spec.name}_curated",
        run_id=run_id,
        config=config,
        merge=True,
    )
