"""The wiring of one pipeline's steps: the dlt pipeline that loads a spec's connector through the lakegate
destination, the transforms (in flight or raw -> curated), and every row a transform removes kept as a
quarantine record. :mod:`pipelines.steps` runs them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import dlt
import fsspec
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from dlt.extract import DltResource, DltSource
from fsspec.implementations.local import LocalFileSystem

from connectors import Kind, get_connector, plain_strings
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
from pipelines._loadfile import imported, load_file_folder
from pipelines._values import resolve_env
from pipelines.errors import PipelineSpecError
from pipelines.spec import ZONE_URL_PREFIX, Pattern, PipelineSpec
from transforms import CAST_ERRORS, TransformContext, cast_schema, get_transform, reject_reason
from zones import (
    LakegateConfig,
    LoadReport,
    LoadTarget,
    TableHandles,
    ZoneName,
    appended_since,
    committed_position,
    committed_positions,
    lakegate_pipeline,
    lineage_stamp,
    open_zone,
    record_position,
)
from zones.retention import archive_url

log = logging.getLogger("lakegate.flow")


def connector_config(spec: PipelineSpec, config: LakegateConfig) -> dict[str, Any]:
    """The connector config with ``lakegate://<zone>/<path>`` URLs resolved to the zone's real URL.

    The zone's storage options are passed along, in the connector's dialect, when it takes them, and
    the connector's per-pipeline defaults fill the fields ``defs.yaml`` leaves out.
    """
    connector = get_connector(spec.connector.type)
    resolved: dict[str, Any] = (
        dict(connector.pipeline_defaults(spec.key)) if connector.pipeline_defaults else {}
    )
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
    archive = landing_archive(spec, config)
    if archive is not None:
        resolved.setdefault("archive", archive)
    if (
        spec.columns and "columns" in connector.config_model.model_fields
    ):  # a connector that types as it reads
        resolved.setdefault("columns", {name: column.type for name, column in spec.columns.items()})
    return resolved


def landing_archive(spec: PipelineSpec, config: LakegateConfig) -> str | None:
    """Where the connector moves what it committed (``<landing>/_archive/<domain>/<dataset>``), when it
    takes an ``archive`` (``files``) and reads from the landing zone; ``None`` otherwise."""
    if "archive" not in get_connector(spec.connector.type).config_model.model_fields:
        return None
    landing = config.zone(ZoneName.LANDING).url.rstrip("/")
    prefixes = (f"{ZONE_URL_PREFIX}{ZoneName.LANDING.value}/", f"{landing}/")
    if any(isinstance(v, str) and v.startswith(prefixes) for v in spec.connector.config.values()):
        return archive_url(config, spec.domain, spec.name)
    return None


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


def acknowledge(spec: PipelineSpec, config: LakegateConfig) -> None:
    """After a run's loads: the connector acknowledges at the source what the zones now hold (the
    ``files`` connector archives its committed landing files, including those a killed run committed)."""
    connector = get_connector(spec.connector.type)
    archives = "archive" in connector.config_model.model_fields
    if connector.acknowledge is None or (archives and landing_archive(spec, config) is None):
        return  # nothing to acknowledge: files outside the landing zone stay where they are
    connector.acknowledge(connector.parse_config(resumed_config(spec, config)))


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
    raw = resumed_config(spec, config)
    run_id = target.run_id if target is not None and not target.merge else None
    if "run_id" in connector.config_model.model_fields:  # lakegate's to fill, never the defs.yaml's
        # the rows' lineage, for load files the connector writes itself (not when transforms run in flight)
        raw["run_id"] = None if spec.transforms else run_id
    built = connector.build(raw)
    resource = built if isinstance(built, DltResource) else _single_resource(built, spec)
    resource = resource.with_name(spec.name)
    if spec.pattern is Pattern.ETL and spec.transforms:
        ctx = _context(spec)
        resource = resource.add_map(lambda table: transform_keeping_rejects(table, spec.transforms, ctx))
    if run_id is not None:
        resource = resource.add_map(lineage_stamp(run_id))
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
    connector = get_connector(spec.connector.type)
    return LoadTarget(
        dataset=spec.dataset(),
        zone=spec.ingest_zone,
        pipeline=spec.name,
        run_id=run_id,
        config=config,
        merge=etl,
        pii_key=pii_key,
        # Ordered sources commit their rows' positions; batch units travel with the load package.
        track_positions=connector.positions is not None and connector.kind is not Kind.BATCH,
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
    default = reject_reason(get_transform(transform)) or (
        f"removed by transform '{transform}' (e.g. superseded by a later record with the same key)"
    )
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


CURATE_BATCH_ROWS = 250_000
"""Raw rows a curate step transforms at a time: bounds its memory, whatever the backfill's size."""


@dataclass(frozen=True)
class CurateInput:
    """The raw data files a curate step has to apply, in commit order, and the raw version they reach."""

    files: tuple[str, ...]
    raw_version: int
    app_id: str
    fs_options: dict[str, Any]
    batch_rows: int = CURATE_BATCH_ROWS

    def batches(self) -> Iterator[pl.DataFrame]:
        """The pending raw rows, about ``batch_rows`` at a time, in raw order (by load, source and position
        within a batch; batches follow the commits), without the lineage columns raw stamped on them.

        Every batch has the same columns and types (all files' columns, aligned by name), so the
        transformed batches land in one load file: one job, merged in one commit, in order.
        """
        columns = pl.concat(
            [pl.DataFrame(schema=pl.Schema(s)) for s in self._schemas()], how="diagonal_relaxed"
        )
        chunks: list[pl.DataFrame] = []
        rows = 0
        for uri in self.files:
            fs, path = fsspec.core.url_to_fs(uri, **self.fs_options)
            for frame in _file_batches(fs, path, columns.columns, self.batch_rows):
                chunks.append(frame)
                rows += frame.height
                if rows >= self.batch_rows:
                    yield _raw_order(columns, chunks)
                    chunks, rows = [], 0
        if rows:
            yield _raw_order(columns, chunks)

    def _schemas(self) -> Iterator[pa.Schema]:
        """Each pending file's columns (from its footer), lineage columns but the load id left out."""
        for uri in self.files:
            fs, path = fsspec.core.url_to_fs(uri, **self.fs_options)
            with fs.open(path, "rb") as handle:
                schema = pq.read_schema(handle)
            yield pa.schema([f for f in schema if f.name == LOAD_ID or f.name not in LINEAGE_COLUMNS])


def _file_batches(
    fs: fsspec.AbstractFileSystem, path: str, columns: list[str], batch_rows: int
) -> Iterator[pl.DataFrame]:
    """The ``columns`` of one raw data file, ``batch_rows`` at a time (at most 100,000 from a store)."""
    if isinstance(fs, LocalFileSystem):
        # polars' own reader decodes only the rows of each slice, on every core: measured on 5M raw rows,
        # 0.7 CPU s against 1.7 through pyarrow batches over a Python file object.
        metadata = pq.read_metadata(path)
        names = metadata.schema.to_arrow_schema().names
        scan = pl.scan_parquet(path, hive_partitioning=False).select([c for c in names if c in columns])
        for offset in range(0, metadata.num_rows, batch_rows):
            yield scan.slice(offset, batch_rows).collect()
        return
    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle, pre_buffer=False)
        wanted = [c for c in parquet.schema_arrow.names if c in columns]
        for batch in parquet.iter_batches(batch_size=min(batch_rows, 100_000), columns=wanted):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            yield frame


def _raw_order(columns: pl.DataFrame, chunks: list[pl.DataFrame]) -> pl.DataFrame:
    frame = pl.concat([columns, *chunks], how="diagonal_relaxed").select(columns.columns)
    order = [c for c in (LOAD_ID, SOURCE, POSITION) if c in frame.columns]
    if order and not _in_order(frame, order):
        frame = frame.sort(order, nulls_last=True, maintain_order=True)
    return frame.drop(LOAD_ID, strict=False)


def _in_order(frame: pl.DataFrame, order: Sequence[str]) -> bool:
    """Whether ``frame`` is already sorted by ``order`` the common way: one load of one source, positions
    ascending (a batch within one raw file). Checking costs a pass over three columns; sorting 250k rows
    by two strings and an integer costs ~10x more."""
    *constant, last = order
    return (
        all(not frame[c].null_count() and frame[c].min() == frame[c].max() for c in constant)
        and not frame[last].null_count()
        and frame[last].is_sorted()
    )


def raw_app_id(spec: PipelineSpec) -> str:
    """The app id under which curated (and quarantine) record the raw version they applied."""
    return f"raw:{spec.domain}/{spec.name}"


_APPLIED_IN = (ZoneName.CURATED, ZoneName.QUARANTINE)
"""The zones whose tables record the raw version curate applied (a run of rejects commits to quarantine)."""


def open_curate_tables_ahead(spec: PipelineSpec, config: LakegateConfig, tables: TableHandles) -> None:
    """Start opening the tables :func:`raw_applied_version` reads (and the commit then uses) while the run
    sets up its dlt pipeline (see :meth:`TableHandles.open_ahead`)."""
    dataset = spec.dataset()
    domain, name = dataset.domain, dataset.name
    zones = [open_zone(zone, config) for zone in _APPLIED_IN]
    tables.open_ahead({z.table_uri(domain, name): partial(z.delta_table, domain, name) for z in zones})


def raw_applied_version(
    spec: PipelineSpec, config: LakegateConfig, tables: TableHandles | None = None
) -> int | None:
    """The raw version the curate step applied last (``None``: never); ``tables``: the run's handles,
    which keep the curated and quarantine tables open for the commit that follows."""
    dataset = spec.dataset()
    applied = [
        committed_position(open_zone(zone, config), dataset, raw_app_id(spec), tables) for zone in _APPLIED_IN
    ]
    return max((v for v in applied if v is not None), default=None)


def pending_raw(
    spec: PipelineSpec,
    config: LakegateConfig,
    batch_rows: int = CURATE_BATCH_ROWS,
    tables: TableHandles | None = None,
) -> CurateInput | None:
    """The raw files committed since the raw version curated last applied; ``None`` when up to date.

    Nothing is read yet: :meth:`CurateInput.batches` streams the rows. ``tables``: the run's handles
    (see :func:`raw_applied_version`).
    """
    return raw_since(spec, config, raw_applied_version(spec, config, tables), batch_rows)


def raw_since(
    spec: PipelineSpec, config: LakegateConfig, done: int | None, batch_rows: int = CURATE_BATCH_ROWS
) -> CurateInput | None:
    """The raw files committed after raw version ``done`` (``None``: all); ``None`` when there are none."""
    raw = open_zone(ZoneName.RAW, config)
    table = raw.delta_table(spec.domain, spec.name)
    if table is None:
        return None
    if done is not None and done >= table.version():
        return None
    # Raw is append-only: the files its appends added since the applied version hold exactly the new
    # rows (read from the commits, so compaction and retention deletes never look like new rows), in
    # the order they were committed — later batches must be the later rows.
    try:
        new_files = appended_since(table, -1 if done is None else done, raw.fsspec_options())
    except FileNotFoundError:  # never curated and the first commits' log entries expired: take them all
        new_files = table.file_uris()
    if not new_files:
        return None
    return CurateInput(
        files=tuple(new_files),
        raw_version=table.version(),
        app_id=raw_app_id(spec),
        fs_options=raw.fsspec_options(),
        batch_rows=batch_rows,
    )


def curate_source(spec: PipelineSpec, pending: CurateInput) -> DltSource:
    """A dlt source yielding the pending raw rows batch by batch, transformed (with the rows transforms
    removed as reject rows).

    One load package covers them all: the destination merges it by key in one commit, later rows
    winning across batches. Inside a pipeline the batches are encoded into the load file by lakegate and
    imported by dlt as it is (see ``pipelines._loadfile``). The raw version they reach travels with the
    package (``record_position``): whichever run finally loads it commits it, so the next curate starts
    right after it.
    """
    ctx = _context(spec)

    # No dlt key hints: reject rows carry no key, and the merge by key is the zone destination's job.
    @dlt.resource(name=spec.name)
    def curated() -> Any:
        record_position(pending.app_id, pending.raw_version)
        with load_file_folder() as folder:
            tables = _transformed(spec, pending, ctx)
            yield from tables if folder is None else imported(tables, folder / spec.name)

    return dlt.source(name=f"{spec.name}_curated")(lambda: curated)()


def _transformed(spec: PipelineSpec, pending: CurateInput, ctx: TransformContext) -> Iterator[pa.Table]:
    schema: pa.Schema | None = None
    for frame in pending.batches():
        table = transform_keeping_rejects(frame.to_arrow(), spec.transforms, ctx)
        schema = schema or _with_reject_columns(table).schema
        yield _conformed(table, schema)


def _with_reject_columns(table: pa.Table) -> pa.Table:
    for name in (REJECT_RULE, REJECT_REASON, RAW_TEXT):
        if name not in table.column_names:
            table = table.append_column(pa.field(name, pa.string()), pa.nulls(table.num_rows, pa.string()))
    return table


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in the columns and types of the first batch, so dlt keeps every batch in one load file
    (a schema change would open another file: another job). A column the first batch did not have (a
    transform that adds columns only sometimes) leaves the table as it is."""
    if not set(table.column_names) <= set(schema.names):
        return table
    arrays = [
        table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    try:
        return pa.Table.from_arrays(arrays, names=schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return table


def curate_target(
    spec: PipelineSpec, run_id: str, config: LakegateConfig, tables: TableHandles | None = None
) -> LoadTarget:
    """Curated, merged by key. Raw is already PII-protected, so tokens are not tokenized again.
    ``tables``: the run's handles, shared with :func:`pending_raw`."""
    return LoadTarget(
        dataset=replace(spec.dataset(), pii={}),
        zone=ZoneName.CURATED,
        pipeline=f"{spec.name}_curated",
        run_id=run_id,
        config=config,
        merge=True,
        tables=tables,
    )
