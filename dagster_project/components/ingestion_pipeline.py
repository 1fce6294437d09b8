"""The ``IngestionPipeline`` component: one ``defs.yaml`` declares one pipeline."""

from __future__ import annotations

import dagster as dg

from connectors import get_connector
from dagster_project._runs import PIPELINE_TAG
from dagster_project.assets import PipelineKeys, curate_asset, ingest_asset
from dagster_project.sensors import landing_sensor
from pipelines import Pattern, PipelineSpec, PipelineSpecError, Step, Target, check_spec, zone_of
from zones import ZoneName


class IngestionPipeline(dg.Component, dg.Resolvable, PipelineSpec):
    """Ingest one source into the lakegate zones with the EL, ELT or ETL pattern.

    Builds: the landing source asset, the ingest multi-asset (raw or, for ETL, curated; quarantine;
    pii when PII is declared), the curated asset for ELT, data-quality checks on every asset, a job
    ``<domain>_<name>_job``, and its schedule or landing sensor.
    """

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        problems = check_spec(self)
        if problems:
            where = context.path / "defs.yaml"
            raise PipelineSpecError("\n".join(f"{where}: attributes.{p}" for p in problems))
        spec = PipelineSpec.model_validate(self.model_dump())
        keys = PipelineKeys(spec)
        connector = get_connector(spec.connector.type)
        source = connector.source_line(spec.connector.config)
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
        job = dg.define_asset_job(
            f"{spec.key}_job",
            selection=dg.AssetSelection.assets(*selected),
            description=f"Ingest {spec.path} ({spec.pattern.value})",
            tags={PIPELINE_TAG: spec.path},
        )
        schedules, sensors = [], []
        if spec.trigger and spec.trigger.cron:
            schedules.append(
                dg.ScheduleDefinition(name=f"{spec.key}_schedule", job=job, cron_schedule=spec.trigger.cron)
            )
        elif spec.trigger and spec.trigger.sensor == "landing":
            sensors.append(landing_sensor(spec, job))
        return dg.Definitions(assets=assets, jobs=[job], schedules=schedules, sensors=sensors)
