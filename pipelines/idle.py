"""Whether a run of a pipeline would have nothing to do, decided cheaply and without Dagster.

``lakegate run`` asks this before it starts a Dagster run (~5-8 s of imports, instance, events and
checks): a run that would commit nothing and check only an unchanged table is not started. The answer
is conservative: any doubt (a first run, a connector that cannot tell, pending load packages, raw rows
curated has not applied, state that cannot be read, an error) means "run it".
"""

from __future__ import annotations

import logging
from pathlib import Path

import dlt

from connectors import get_connector
from pipelines import _flow as flow
from pipelines.spec import Pattern, PipelineSpec
from zones import LakegateConfig, LoadReport, ZoneName, lakegate_destination, open_zone, pipeline_lock

log = logging.getLogger("lakegate.pipelines")


def nothing_to_do(
    spec: PipelineSpec, config: LakegateConfig, pipelines_dir: Path | None = None
) -> str | None:
    """Why a run of ``spec`` now would find nothing new, or ``None`` when it might find something.

    Nothing new means: the ingest step's dlt pipeline has no pending package and the connector's probe,
    resumed from the positions committed in the zones (offsets, LSNs, ingested file identities), finds
    nothing waiting; and for ELT, the curate step has no pending package and has applied the latest raw
    version.
    """
    try:
        return _why_idle(spec, config, pipelines_dir or Path(config.home) / "dlt")
    except Exception as exc:  # deciding is an optimisation: any failure is the real run's to report
        log.debug("%s: could not tell whether anything is new (%s); running", spec.path, exc)
        return None


def _why_idle(spec: PipelineSpec, config: LakegateConfig, folder: Path) -> str | None:
    connector = get_connector(spec.connector.type)
    if connector.probe is None or connector.positions is None:
        return None
    if not _settled(spec, "ingest", config, folder):
        return None
    if connector.probe(connector.parse_config(flow.resumed_config(spec, config))):
        return None
    source = "nothing new at the source beyond the positions committed in the zones"
    if spec.pattern is not Pattern.ELT:
        return source
    if not _settled(spec, "curate", config, folder):
        return None
    raw = open_zone(ZoneName.RAW, config).delta_table(spec.domain, spec.name)
    applied = flow.raw_applied_version(spec, config)
    if raw is not None and (applied is None or applied < raw.version()):
        return None
    return f"{source}; curated is up to date with raw"


def _settled(spec: PipelineSpec, step: str, config: LakegateConfig, folder: Path) -> bool:
    """Whether the step's dlt pipeline has run before and holds no pending package."""
    name = f"lakegate_{spec.key}_{step}"
    if not (folder / name / "state.json").is_file():
        return False
    target = flow.ingest_target(spec, "idle-probe", config)  # never loads: only opens the working folder
    with pipeline_lock(name, folder):
        pipeline = dlt.pipeline(
            pipeline_name=name,
            pipelines_dir=str(folder),
            destination=lakegate_destination(target, LoadReport()),
            dataset_name=spec.domain,
        )
        return not pipeline.has_pending_data
