"""Sensors: start a pipeline's job when its source has something new."""

from __future__ import annotations

import hashlib

import dagster as dg

from connectors import get_connector
from dagster_project.resources import ZonesResource
from pipelines import PipelineSpec, connector_config


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
        connector = get_connector(spec.connector.type)
        if connector.probe is None:
            return dg.SkipReason(f"connector '{connector.name}' cannot be probed; use a cron trigger")
        config = lakegate_zones.load()
        waiting = connector.probe(connector.parse_config(connector_config(spec, config)))
        if not waiting:
            return dg.SkipReason("nothing waiting at the source")
        digest = hashlib.sha256("\n".join(sorted(waiting)).encode()).hexdigest()[:16]
        if digest == context.cursor:
            return dg.SkipReason(f"{len(waiting)} unit(s) waiting, none new since the last run request")
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=digest)], cursor=digest)

    return sensor
