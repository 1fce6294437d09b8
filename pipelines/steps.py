"""Run a pipeline's steps from plain Python: ``ingest`` (source -> raw, or curated for ETL),
``curate`` (ELT: raw -> transforms -> curated, merged by key) and ``history`` (ELT with ``history: scd2``:
raw -> curated ``<name>_history``).

The Dagster assets, the ``lakegate`` CLI and the benchmarks all call these, so every entry point
runs the same code::

    from pipelines import load_spec, ingest, curate
    spec = load_spec("dagster_project/defs/orders/defs.yaml")
    report = ingest(spec, run_id="manual-1")
    print(report.summary())
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import dlt
from dlt.pipeline.exceptions import PipelineStepFailed

from lakegate.errors import LakegateError
from lakegate.vetting import CHUNK_VETTER
from pipelines import _flow as flow
from pipelines import _history
from pipelines.spec import PipelineSpec
from zones import LakegateConfig, LoadReport, TableHandles, load_config
from zones.prescan import PiiPrescan

log = logging.getLogger("lakegate.pipelines")


@dataclass(frozen=True)
class CurateResult:
    """What a curate step did: its counts, and the raw version curated now reaches (``None``: none yet)."""

    report: LoadReport
    raw_version: int | None


def ingest(
    spec: PipelineSpec,
    *,
    run_id: str,
    config: LakegateConfig | None = None,
    pii_key: str | None = None,
    pipelines_dir: Path | None = None,
) -> LoadReport:
    """Extract the spec's connector and commit it through the lakegate destination.

    Pending load packages of an interrupted run are loaded first; only one run of a pipeline at a time.

    Args:
        spec: The pipeline.
        run_id: Stamped on every committed row and audit record.
        config: Zone configuration (default: :func:`zones.load_config`).
        pii_key: Key of the PII tokens (default ``$LAKEGATE_PII_KEY``); needed when PII is declared.
        pipelines_dir: dlt's working folders (default ``$LAKEGATE_HOME/dlt``): a cache, not the record.

    Raises:
        zones.PipelineBusyError: another run of the pipeline is in progress.
        zones.PiiKeyError: PII is declared and the key is missing.
    """
    config = config or load_config()
    report = LoadReport()
    target = flow.ingest_target(spec, run_id, config, pii_key)
    with flow.dlt_pipeline(spec, "ingest", target, report, pipelines_dir) as pipeline:
        # Built once pending packages are loaded: an ordered source resumes after what they committed.
        prescan = PiiPrescan(target.dataset)  # PII scanned as load files are written
        vetting = CHUNK_VETTER.set(prescan)
        try:
            pipeline.run(flow.ingest_source(spec, config, target))
        except PipelineStepFailed as exc:
            raise (report.stopped_by or _explained(exc)) from exc
        finally:
            CHUNK_VETTER.reset(vetting)
            prescan.forget()
        _record_steps(pipeline, report)
        flow.acknowledge(spec, config)  # e.g. archive the landing files now committed
    log.info("%s ingest: %s", spec.path, report.summary())
    return report


def curate(
    spec: PipelineSpec,
    *,
    run_id: str,
    config: LakegateConfig | None = None,
    pipelines_dir: Path | None = None,
    batch_rows: int = flow.CURATE_BATCH_ROWS,
) -> CurateResult:
    """Transform the raw rows curated has not applied yet and merge them into curated by key.

    Raw rows are read and transformed ``batch_rows`` at a time and merged in one commit (see
    ``zones._merge``), so memory stays bounded by a batch plus the keys, whatever the backlog.
    Opening the pipeline first loads any package an interrupted curate left behind (with the raw
    version it covers), so the raw rows still pending are computed after it.
    """
    config = config or load_config()
    report = LoadReport()
    tables = TableHandles()  # curated and quarantine: opened once, for the positions and the commit
    target = flow.curate_target(spec, run_id, config, tables)
    flow.open_curate_tables_ahead(spec, config, tables)
    with flow.dlt_pipeline(spec, "curate", target, report, pipelines_dir) as pipeline:
        pending = flow.pending_raw(spec, config, batch_rows, tables)
        if pending is None:
            log.info("%s curate: curated is up to date with raw", spec.path)
            return CurateResult(report=report, raw_version=None)
        pipeline.run(flow.curate_source(spec, pending))
        _record_steps(pipeline, report)
    log.info("%s curate: %s (raw version %d)", spec.path, report.summary(), pending.raw_version)
    return CurateResult(report=report, raw_version=pending.raw_version)


def history(
    spec: PipelineSpec,
    *,
    run_id: str,
    config: LakegateConfig | None = None,
    pipelines_dir: Path | None = None,
) -> CurateResult:
    """Apply the raw change rows the history has not applied yet to curated ``<name>_history`` (SCD2).

    Like :func:`curate`: a pending package of an interrupted run is loaded first, and a run with nothing
    new commits nothing.
    """
    config = config or load_config()
    report = LoadReport()
    target = _history.history_target(spec, run_id, config)
    with flow.dlt_pipeline(spec, "history", target, report, pipelines_dir) as pipeline:
        pending = _history.pending_history(spec, config)
        changes = [] if pending is None else [f for f in pending.batches() if f.height]
        if pending is None or not changes:
            log.info("%s history: up to date with raw", spec.path)
            return CurateResult(report=report, raw_version=None)
        pipeline.run(_history.history_source(spec, pending, changes, config))
        _record_steps(pipeline, report)
    log.info("%s history: %s (raw version %d)", spec.path, report.summary(), pending.raw_version)
    return CurateResult(report=report, raw_version=pending.raw_version)


def _explained(exc: PipelineStepFailed) -> Exception:
    """The lakegate error a connector raised while extracting (one line for the CLI), else ``exc``."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, LakegateError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return exc


def _record_steps(pipeline: dlt.Pipeline, report: LoadReport) -> None:
    trace = pipeline.last_trace
    for step in trace.steps if trace else []:
        if step.started_at and step.finished_at:
            report.steps[step.step] = (step.started_at.timestamp(), step.finished_at.timestamp())
