"""The ``IngestionPipeline`` component: one ``defs.yaml`` declares one pipeline."""

from __future__ import annotations

import dagster as dg

from dagster_project.assets import PipelineKeys, curate_asset, ingest_asset
from dagster_project.sensors import landing_sensor
from dagster_project.spec import Pattern, PipelineSpec, check_spec
from zones import ZoneName


class PipelineSpecError(ValueError):
    """A defs.yaml that passed schema validation but contradicts itself or the registries."""


class IngestionPipeline(dg.Component, dg.Resolvable, PipelineSpec):
    """Ingest one source into the lakegate zones with the EL, ELT or ETL pattern.

    Builds: the landing source asset, the ingest multi-asset (raw or, for ETL, curated; quarantine;
    pii when PII is declared) through dagster-dlt, the curated asset for ELT, data-quality checks on
    every asset, a job, and its schedule or landing sensor.
    """

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        problems = check_spec(self)
        if problems:
            where = context.path / "defs.yaml"
            raise PipelineSpecError("\n".join(f"{where}: attributes.{p}" for p in problems))
        spec = PipelineSpec.model_validate(self.model_dump())
        keys = PipelineKeys(spec)
        landing = dg.AssetSpec(
            keys.landing,
            description=_landing_description(spec),
            kinds={"fsspec"} if spec.connector.type == "files" else {spec.connector.type},
            group_name=keys.group,
        )
        assets: list[dg.AssetsDefinition | dg.AssetSpec] = [landing, ingest_asset(spec, keys)]
        if spec.pattern is Pattern.ELT:
            assets.append(curate_asset(spec, keys))
        selected = [keys.of(keys.ingest_zone), keys.of(ZoneName.QUARANTINE)]
        selected += [keys.of(ZoneName.PII)] if spec.pii else []
        selected += [keys.of(ZoneName.CURATED)] if spec.pattern is Pattern.ELT else []
        job = dg.define_asset_job(
            f"{spec.name}_job",
            selection=dg.AssetSelection.assets(*selected),
            description=f"Ingest {spec.domain}/{spec.name} ({spec.pattern.value})",
        )
        schedules, sensors = [], []
        if spec.trigger and spec.trigger.cron:
            schedules.append(
                dg.ScheduleDefinition(name=f"{spec.name}_schedule", job=job, cron_schedule=spec.trigger.cron)
            )
        elif spec.trigger and spec.trigger.sensor == "landing":
            sensors.append(landing_sensor(spec, job))
        return dg.Definitions(assets=assets, jobs=[job], schedules=schedules, sensors=sensors)


def _landing_description(spec: PipelineSpec) -> str:
    where = spec.connector.config.get("url") or spec.connector.config.get("topic") or ""
    source = f" at {where}" if isinstance(where, str) and where else ""
    return (
        f"What the source delivers for {spec.domain}/{spec.name} ({spec.connector.type} connector{source})."
    )
