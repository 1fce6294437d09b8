"""Retention sensors (one per zone) and the maintenance job: Dagster's view of :mod:`pipelines.retention`.

The job has one op per pipeline, in the pipeline's concurrency pool (``lakegate_<domain>_<name>``), so a
maintenance step never runs beside an ingest or curate step of the same dataset; inside, the pipeline's
run locks are held too. Each dataset's deletions, vacuum and compaction show as materialization
metadata of its asset ``[domain, dataset, zone]``.
"""

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import dagster as dg

from dagster_project.assets import PipelineKeys, history_key
from dagster_project.resources import ZONES, ZonesResource
from pipelines import PipelineSpec
from pipelines.retention import Declared, apply, plan
from zones import ZoneName

MAINTENANCE_JOB = "lakegate_maintenance_job"
DAY = 24 * 3600
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class MaintenanceConfig(dg.Config):  # type: ignore[misc]
    """The zones one maintenance run covers (the requesting sensor's zone)."""

    zones: list[str] = [z.value for z in ZoneName]


def maintenance_job(declared: list[Declared], clock: Clock = _now) -> dg.JobDefinition:
    """``lakegate_maintenance_job``: retention and upkeep of every pipeline's datasets."""
    ops = [_maintain_op(item, clock) for item in declared]

    @dg.job(name=MAINTENANCE_JOB, description="Retention (delete, vacuum) and upkeep of every dataset")
    def maintenance() -> None:
        for op in ops:
            op()

    return maintenance


def _op_name(spec: PipelineSpec) -> str:
    return f"maintain_{spec.key}"


def _maintain_op(item: Declared, clock: Clock) -> dg.OpDefinition:
    spec = item.spec
    keys = PipelineKeys(spec)

    @dg.op(name=_op_name(spec), out={}, pool=keys.pool, required_resource_keys={ZONES})
    def maintain(
        context: dg.OpExecutionContext, config: MaintenanceConfig
    ) -> Iterator[dg.AssetMaterialization]:
        zones = getattr(context.resources, ZONES).load()
        planned = plan([item], zones, clock(), [ZoneName(z) for z in config.zones])
        for done in apply([item], zones, planned, context.run_id):
            context.log.info(f"{done.plan.policy.zone.value}/{spec.path}: {done.metadata()}")
            policy = done.plan.policy
            key = keys.of(policy.zone) if policy.dataset == spec.name else history_key(spec)
            yield dg.AssetMaterialization(asset_key=key, metadata=done.metadata())

    return maintain


def retention_sensor(zone: ZoneName, declared: list[Declared], clock: Clock = _now) -> dg.SensorDefinition:
    """Evaluate the zone's policies (daily; a manual tick evaluates on demand) and request a maintenance
    run exactly when some dataset of the zone has expired rows or files outside the time-travel window.

    The run key is the zone, the day and the expired datasets' versions: re-evaluating an unchanged
    table the same day never asks twice.
    """

    @dg.sensor(
        name=f"retention_{zone.value}_sensor",
        job_name=MAINTENANCE_JOB,
        minimum_interval_seconds=DAY,
        description=f"Request a maintenance run when data in the {zone.value} zone has expired",
    )
    def sensor(
        context: dg.SensorEvaluationContext, lakegate_zones: ZonesResource
    ) -> dg.SensorResult | dg.SkipReason:
        now = clock()
        planned = plan(declared, lakegate_zones.load(), now, [zone])
        expired = planned.expired
        if not expired:
            return dg.SkipReason(f"nothing expired in {zone.value} ({len(planned.datasets)} dataset(s))")
        versions = ",".join(f"{p.policy.path}@{p.version}" for p in expired)
        config = {"config": {"zones": [zone.value]}}
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{zone.value}:{now.date()}:{versions}",
                    run_config={"ops": {_op_name(d.spec): config for d in declared}},
                    tags={"lakegate/retention": f"{zone.value}: {versions}"[:200]},
                )
            ]
        )

    return sensor


def maintenance_definitions(declared: Sequence[Declared]) -> dg.Definitions:
    """The maintenance job and one retention sensor per zone holding the ``declared`` pipelines' data."""
    if not declared:
        return dg.Definitions()
    zones = [ZoneName.LANDING, ZoneName.RAW, ZoneName.CURATED, ZoneName.PII, ZoneName.QUARANTINE]
    return dg.Definitions(
        jobs=[maintenance_job(declared)], sensors=[retention_sensor(z, declared) for z in zones]
    )
