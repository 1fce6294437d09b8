"""Turn each ``defs/<pipeline>/defs.yaml`` into Dagster definitions, one pipeline at a time.

A broken ``defs.yaml`` never takes the others down: it is reported once, in one line naming the file,
the field and the fix, and shows in the UI as a ``broken_definitions`` asset whose ``definition_valid``
check fails with that line — while every healthy pipeline loads, runs and shows as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from connectors import get_connector
from dagster_project._runs import PIPELINE_TAG
from dagster_project.assets import (
    PipelineKeys,
    curate_asset,
    history_asset,
    history_key,
    ingest_asset,
    table_quality_check,
)
from dagster_project.sensors import landing_sensor, stream_sensor
from pipelines import Pattern, PipelineSpec, Step, Target, expand, for_display, table_check, zone_of
from zones import ZoneName

BROKEN_GROUP = "broken_definitions"


def pipeline_definitions(read: Sequence[tuple[Path, PipelineSpec | None, list[str]]]) -> list[dg.Definitions]:
    """Definitions of every pipeline read by :func:`pipelines.read_defs_folder` (one per table of a table
    list); a broken one becomes a visible failing check."""
    built = []
    declared: dict[str, Path] = {}  # <domain>/<name> -> the defs.yaml declaring it
    for file, spec, read_problems in read:
        pipelines = expand(spec) if spec is not None and not read_problems else []
        problems = read_problems + [
            f"{file}: attributes.name: {one.path} is already declared by {declared[one.path]}; rename one "
            "(a table of a list: set its 'dataset')"
            for one in pipelines
            if one.path in declared
        ]
        if spec is None or problems:
            built.append(broken_pipeline(file, problems))
            continue
        declared.update({one.path: file for one in pipelines})
        built.extend(build_pipeline(one) for one in pipelines)
    return built


def build_pipeline(spec: PipelineSpec) -> dg.Definitions:
    """The landing source asset, ingest and (ELT) curate (and history) assets with their checks, the job
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
    # One definition per landing spec: Dagster folds bare AssetSpecs of a code location into one shared
    # definition that every job then subsets, which made loading quadratic in the number of pipelines.
    assets = [dg.AssetsDefinition(specs=[landing]), ingest_asset(spec, keys)]
    selected = [keys.target(Step.INGEST, Target.DATA), keys.of(ZoneName.QUARANTINE)]
    selected += [keys.of(ZoneName.PII)] if spec.pii else []
    if spec.pattern is Pattern.ELT:
        assets.append(curate_asset(spec, keys))
        selected.append(keys.of(zone_of(spec, Step.CURATE, Target.DATA)))
    if spec.pattern is Pattern.ELT and spec.history is not None:
        assets.append(history_asset(spec, keys))
        selected.append(history_key(spec))
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
