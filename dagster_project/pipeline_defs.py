"""Turn each ``defs/<pipeline>/defs.yaml`` into Dagster definitions, one pipeline at a time.

A broken ``defs.yaml`` never takes the others down: it is reported once, in one line naming the file,
the field and the fix, and shows in the UI as a ``broken_definitions`` asset whose ``definition_valid``
check fails with that line — while every healthy pipeline loads, runs and shows as usual.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from connectors import get_connector
from dagster_project._runs import PIPELINE_TAG
from dagster_project.assets import PipelineKeys, curate_asset, ingest_asset, table_quality_check
from dagster_project.sensors import landing_sensor, stream_sensor
from pipelines import (
    Pattern,
    PipelineSpec,
    Step,
    Target,
    for_display,
    read_defs_file,
    table_check,
    zone_of,
)
from zones import ZoneName

BROKEN_GROUP = "broken_definitions"


def pipeline_definitions(folder: Path) -> list[dg.Definitions]:
    """Definitions of every pipeline under ``folder``; a broken one becomes a visible failing check."""
    built = []
    for file in sorted(folder.glob("*/defs.yaml")):
        spec, problems = read_defs_file(file)
        if spec is None or problems:
            built.append(broken_pipeline(file, problems))
        else:
            built.append(build_pipeline(spec))
    return built


def build_pipeline(spec: PipelineSpec) -> dg.Definitions:
    """The landing source asset, ingest and (ELT) curate assets with their checks, the job
    ``<domain>_<name>_job`` and its schedule, landing or stream sensor — and, when expectations are
    declared ``scope: table``, the ``table_quality`` check with its job and schedule."""
    keys = PipelineKeys(spec)
    connector = get_connector(spec.connector.type)
    source = connector.source_line(for_display(spec.connector.config))
    landing = dg.AssetSpec(
        keys.landing,
        description=f"What the source delivers for {spec.path} ({source}).",
        kinds=connector.ui_kinds,
        group_name=keys.group,
    )
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = [landing, ingest_asset(spec, keys)]
    selected = [keys.target(Step.INGEST, Target.DATA), keys.of(ZoneName.QUARANTINE)]
    selected += [keys.of(ZoneName.PII)] if spec.pii else []
    if spec.pattern is Pattern.ELT:
        assets.append(curate_asset(spec, keys))
        selected.append(keys.of(zone_of(spec, Step.CURATE, Target.DATA)))
    selection = dg.AssetSelection.assets(*selected)
    jobs, checks, schedules, sensors = [], [], [], []
    table = table_check(spec)
    if table is not None:  # whole-table expectations: their own job on their own schedule, not per run
        check = table_quality_check(spec, keys, table)
        selection = selection - dg.AssetSelection.checks(check)
        checks.append(check)
        table_job = dg.define_asset_job(
            f"{spec.key}_table_quality_job",
            selection=dg.AssetSelection.checks(check),
            description=f"Whole-table expectations of {spec.path} (scope: table)",
        )
        jobs.append(table_job)
        schedules.append(
            dg.ScheduleDefinition(
                name=f"{spec.key}_table_quality_schedule",
                job=table_job,
                cron_schedule=spec.quality.table_schedule,
            )
        )
    job = dg.define_asset_job(
        f"{spec.key}_job",
        selection=selection,
        description=f"Ingest {spec.path} ({spec.pattern.value})",
        tags={PIPELINE_TAG: spec.path},
    )
    jobs.append(job)
    if spec.trigger and spec.trigger.cron:
        schedules.append(
            dg.ScheduleDefinition(name=f"{spec.key}_schedule", job=job, cron_schedule=spec.trigger.cron)
        )
    elif spec.trigger and spec.trigger.sensor == "landing":
        sensors.append(landing_sensor(spec, job))
    elif spec.streaming:
        sensors.append(stream_sensor(spec, job))
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=jobs, schedules=schedules, sensors=sensors)


def broken_pipeline(file: Path, problems: list[str]) -> dg.Definitions:
    """A placeholder for a ``defs.yaml`` that does not validate: visible, explained, never run."""
    folder = file.parent.name
    key = dg.AssetKey([BROKEN_GROUP, folder])
    explained = " | ".join(problems)
    placeholder = dg.AssetSpec(
        key,
        description=f"BROKEN pipeline definition {file}: {explained}",
        group_name=BROKEN_GROUP,
        metadata={"defs_yaml": dg.MetadataValue.path(str(file)), "problems": dg.MetadataValue.json(problems)},
        tags={"lakegate/status": "broken"},
    )

    @dg.asset_check(
        asset=key,
        name="definition_valid",
        description=f"{file} validates (lakegate check); fix the fields it names",
        blocking=True,
    )
    def definition_valid() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, metadata={"problems": dg.MetadataValue.json(problems)})

    return dg.Definitions(assets=[placeholder], asset_checks=[definition_valid])
