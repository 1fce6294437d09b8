"""The stream sensor asks for a micro-batch run when the stream has lag and for none when it has not;
the micro-batch's consumer-lag check compares the lag left with ``trigger.max_lag``."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.pipeline_defs import build_pipeline
from dagster_project.resources import default_resources
from pipelines import PipelineSpec, check_spec
from tests.services.kafka import TansuBroker, create_topic, new_topic, produce

pytestmark = pytest.mark.kafka


def _spec(broker: TansuBroker, topic: str, max_lag: int) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "clicks",
            "domain": "web",
            "pattern": "EL",
            "connector": {
                "type": "kafka",
                "config": {"bootstrap_servers": broker.bootstrap, "topics": [topic]},
            },
            "trigger": {"sensor": "stream", "interval_seconds": 5, "max_lag": max_lag},
        }
    )


def _produce(broker: TansuBroker, topic: str, first: int, count: int) -> None:
    produce(
        broker.bootstrap,
        topic,
        ((n % 2, None, json.dumps({"n": n}).encode()) for n in range(first, first + count)),
    )


def test_stream_sensor_requests_a_run_only_with_lag(kafka_broker: TansuBroker, lakegate_home: Path) -> None:
    topic = new_topic("sensor")
    create_topic(kafka_broker.bootstrap, topic, partitions=2)
    spec = _spec(kafka_broker, topic, max_lag=0)
    assert check_spec(spec) == []
    defs = dg.Definitions.merge(build_pipeline(spec), dg.Definitions(resources=default_resources()))
    sensor = defs.get_sensor_def("web_clicks_stream_sensor")
    assert sensor.minimum_interval_seconds == 5
    job = defs.resolve_job_def("web_clicks_job")

    with dg.instance_for_test() as instance:

        def tick() -> dg.SensorResult | dg.SkipReason:
            result = sensor(dg.build_sensor_context(instance=instance, resources=default_resources()))
            assert isinstance(result, dg.SensorResult | dg.SkipReason)
            return result

        assert isinstance(tick(), dg.SkipReason), "an empty topic has no lag"
        _produce(kafka_broker, topic, 0, 40)
        asked = tick()
        assert isinstance(asked, dg.SensorResult) and len(asked.run_requests or []) == 1

        run = job.execute_in_process(instance=instance, raise_on_error=False)
        assert run.success
        lag_checks = [e for e in run.get_asset_check_evaluations() if e.check_name == "consumer_lag"]
        assert [(c.passed, c.metadata["lag"].value) for c in lag_checks] == [(True, 0)]
        skipped = tick()
        assert isinstance(skipped, dg.SkipReason) and "no lag" in str(skipped.skip_message)

        _produce(kafka_broker, topic, 40, 5)
        assert isinstance(tick(), dg.SensorResult), "new messages: lag again"


def test_lag_check_fails_above_max_lag(kafka_broker: TansuBroker, lakegate_home: Path) -> None:
    topic = new_topic("lagging")
    create_topic(kafka_broker.bootstrap, topic, partitions=2)
    _produce(kafka_broker, topic, 0, 30)
    raw = _spec(kafka_broker, topic, max_lag=10).model_dump()
    raw["connector"]["config"]["max_records"] = 10  # a micro-batch that leaves 20 behind
    spec = PipelineSpec.model_validate(raw)
    defs = dg.Definitions.merge(build_pipeline(spec), dg.Definitions(resources=default_resources()))
    with dg.instance_for_test() as instance:
        run = defs.resolve_job_def("web_clicks_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
    lag_checks = [e for e in run.get_asset_check_evaluations() if e.check_name == "consumer_lag"]
    assert [(c.passed, c.metadata["lag"].value) for c in lag_checks] == [(False, 20)]


def test_max_lag_needs_the_stream_sensor() -> None:
    with pytest.raises(ValueError, match="'max_lag' needs sensor: stream"):
        PipelineSpec.model_validate(
            {
                "name": "x",
                "domain": "d",
                "connector": {"type": "files"},
                "trigger": {"cron": "* * * * *", "max_lag": 1},
            }
        )
