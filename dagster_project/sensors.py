"""Sensors: start a pipeline's job when its source has something new."""

from __future__ import annotations

import hashlib

import dagster as dg

from connectors import get_connector
from dagster_project.flow import connector_config
from dagster_project.spec import PipelineSpec
from zones import load_config


def landing_sensor(spec: PipelineSpec, job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    """Request a run when the set of files waiting in the landing zone changes.

    The cursor is a digest of what the connector's probe saw; the run key is the same digest, so a
    sensor restart never requests the same drop twice. The connector itself skips files it already
    ingested, so a run over an unchanged drop commits nothing.
    """

    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        job=job,
        minimum_interval_seconds=30,
        description=f"New files for {spec.domain}/{spec.name} in the landing zone",
    )
    def sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        connector = get_connector(spec.connector.type)
        if connector.probe is None:
            return dg.SkipReason(f"connector '{connector.name}' cannot be probed; use a cron trigger")
        waiting = connector.probe(connector.parse_config(connector_config(spec, load_config())))
        if not waiting:
            return dg.SkipReason("no files waiting in the landing zone")
        digest = hashlib.sha256("\n".join(sorted(waiting)).encode()).hexdigest()[:16]
        if digest == context.cursor:
            return dg.SkipReason(f"{len(waiting)} file(s) waiting, none new since the last run request")
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=digest)], cursor=digest)

    return sensor
