"""A Tansu broker on S3 storage (moto) stopped in the middle of ``lakegate run`` and started again on the
same port: the run fails with one line or goes on, and the next run completes the ledger exactly."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3fs

from dagster_project.cli import DEFS_FOLDER
from tests.conftest import service_unavailable
from tests.services.kafka import TansuBroker, new_topic

sys.path.insert(0, str(Path(__file__).parents[1] / "crash"))
from harness import LAKEGATE, RUN_STARTED, wait_for_output
from kafka_inputs import BOOTSTRAP_ENV, kafka_pipeline, stream_scenario

pytestmark = [pytest.mark.kafka, pytest.mark.s3]

BUCKET = "tansu"
MESSAGES = 600_000  # a read of 4-5 s at ~130k messages/s (benchmarks/stream.py), for the outage to land in


@pytest.fixture
def s3_broker(s3_endpoint: str, tmp_path: Path) -> Iterator[TansuBroker]:
    """A Tansu broker keeping topics, data and offsets in a moto S3 bucket, so they survive a restart."""
    s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=s3_endpoint).mkdir(BUCKET)
    env = {
        "AWS_ENDPOINT": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    broker = TansuBroker(tmp_path / "tansu.log", storage=f"s3://{BUCKET}/", env=env)
    try:
        broker.start()
    except (OSError, RuntimeError) as exc:
        service_unavailable("Tansu Kafka broker on S3", str(exc))
    yield broker
    broker.stop()


@pytest.mark.checkout_writes
@pytest.mark.parametrize("down_seconds", [2.0, 12.0], ids=["back-within-connect-seconds", "down-longer"])
def test_a_broker_restart_mid_run_loses_and_repeats_nothing(
    s3_broker: TansuBroker,
    lakegate_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    down_seconds: float,
) -> None:
    monkeypatch.setenv(BOOTSTRAP_ENV, s3_broker.bootstrap)
    name, topic = f"zz_restart_{uuid.uuid4().hex[:8]}", new_topic("restart")
    scenario = stream_scenario(s3_broker.bootstrap, name, topic, MESSAGES)
    with kafka_pipeline(DEFS_FOLDER, name, topic, connect_seconds=6):
        expected = scenario.write_input()
        log = tmp_path / "interrupted.log"
        with log.open("w") as out:
            run = subprocess.Popen([LAKEGATE, "run", name], stdout=out, stderr=subprocess.STDOUT)
            assert wait_for_output(run, log, RUN_STARTED, 60), log.read_text()
            time.sleep(2.5)  # past the bootstrap, into the fetches
            s3_broker.kill()
            # The read logs its count when it ends: the broker must have gone before that.
            assert "message(s) read" not in log.read_text(), "the outage missed the read"
            time.sleep(down_seconds)
            s3_broker.start()
            status = run.wait(timeout=90)
        output = log.read_text()
        if status != 0:  # failed cleanly: one line naming the outage (KafkaUnavailableError), no traceback
            assert "Traceback" not in output, output
            assert re.search(r"^lakegate: error: pipeline '\S+' failed \(run \S+\): kafka[: ]", output, re.M)
        next_run = subprocess.run([LAKEGATE, "run", name], capture_output=True, text=True, timeout=90)
        assert next_run.returncode == 0, next_run.stderr
        assert scenario.ledger(scenario, expected) == []
