"""Sensors: start a pipeline's job when its source has something new."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg

from connectors import ConnectorError, get_connector
from dagster_project.resources import ZonesResource
from pipelines import PipelineSpec, PipelineSpecError, connector_config, resumed_config

_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def landing_sensor(spec: PipelineSpec, job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    """Request a run when the set of units waiting at the source (e.g. files in landing) changes.

    The cursor is a digest of what the connector's probe saw; the run key is the same digest, so a
    sensor restart never requests the same drop twice. The connector itself skips what it already
    ingested, so a run over an unchanged drop commits nothing.
    """

    @dg.sensor(
        name=f"{spec.key}_landing_sensor",
        job=job,
        minimum_interval_seconds=30,
        description=f"New input for {spec.path} in the landing zone",
    )
    def sensor(
        context: dg.SensorEvaluationContext, lakegate_zones: ZonesResource
    ) -> dg.SensorResult | dg.SkipReason:
        waiting = _probe(spec, lambda: connector_config(spec, lakegate_zones.load()))
        if isinstance(waiting, dg.SkipReason):
            return waiting
        if not waiting:
            return dg.SkipReason("nothing waiting at the source")
        digest = hashlib.sha256("\n".join(sorted(waiting)).encode()).hexdigest()[:16]
        if digest == context.cursor:
            return dg.SkipReason(f"{len(waiting)} unit(s) waiting, none new since the last run request")
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=digest)], cursor=digest)

    return sensor


def stream_sensor(spec: PipelineSpec, job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    """Request a micro-batch run when the stream's partitions have lag, at most every
    ``trigger.interval_seconds``.

    Lag is measured from the positions committed in the zones (the truth), not from consumer-group
    offsets. No run key: a partition still lagging after a failed run is asked for again at the next
    tick; while a run of the job is in flight no other is requested (it would only wait for the lock).
    """
    interval = spec.trigger.interval_seconds if spec.trigger else 30

    @dg.sensor(
        name=f"{spec.key}_stream_sensor",
        job=job,
        minimum_interval_seconds=interval,
        description=f"Micro-batch {spec.path} when its stream has lag (every {interval} s at most)",
    )
    def sensor(
        context: dg.SensorEvaluationContext, lakegate_zones: ZonesResource
    ) -> dg.SensorResult | dg.SkipReason:
        waiting = _probe(spec, lambda: resumed_config(spec, lakegate_zones.load()))
        if isinstance(waiting, dg.SkipReason):
            return waiting
        if not waiting:
            return dg.SkipReason("no lag: every partition is committed up to its end")
        running = context.instance.get_runs(
            filters=dg.RunsFilter(job_name=job.name, statuses=_IN_FLIGHT), limit=1
        )
        if running:
            return dg.SkipReason(f"{len(waiting)} partition(s) lagging; run {running[0].run_id} in flight")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(tags={"lakegate/lag": "; ".join(sorted(waiting))[:200]})]
        )

    return sensor


def _probe(spec: PipelineSpec, raw: Callable[[], dict[str, Any]]) -> Sequence[str] | dg.SkipReason:
    """What the connector's probe sees waiting at the source, or why the source cannot be probed (e.g.
    the broker is down: the tick is skipped with that reason, the next tick tries again)."""
    connector = get_connector(spec.connector.type)
    if connector.probe is None:
        return dg.SkipReason(f"connector '{connector.name}' cannot be probed; use a cron trigger")
    try:
        return connector.probe(connector.parse_config(raw()))
    except (ConnectorError, PipelineSpecError) as exc:  # messages name the source, never a secret
        return dg.SkipReason(f"cannot probe {spec.path}: {exc}")
