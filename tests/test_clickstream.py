"""The ``clickstream`` demo pipeline (ETL from Kafka): IPs masked in flight, e-mails only in the pii zone,
invalid addresses quarantined, and a sensor that skips (never crashes) while no broker answers."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dagster_project.pipeline_defs import build_pipeline
from dagster_project.resources import default_resources
from lakegate.columns import POSITION, RULE
from pipelines import PipelineSpec, ingest
from pipelines.demo import click_event
from pipelines.validation import load_spec
from tests.conftest import free_port
from tests.services.kafka import TansuBroker, create_topic, new_topic, produce
from zones import ZoneName, load_config, open_zone

DEFS = Path(__file__).resolve().parents[1] / "dagster_project" / "defs" / "clickstream" / "defs.yaml"
CANARIES = ["canary.click@leak-test.example", "canary.badip@leak-test.example"]
EVENTS = 300


def _shipped(topic: str) -> PipelineSpec:
    """The shipped pipeline, reading ``topic`` (tests share one broker and isolate by topic)."""
    raw = load_spec(DEFS).model_dump(mode="json", exclude_none=True)
    raw["connector"]["config"]["topics"] = [topic]
    return PipelineSpec.model_validate(raw)


def _events() -> list[dict[str, str]]:
    events = [click_event(n) for n in range(EVENTS)]
    events[3]["email"] = CANARIES[0]
    events[4] |= {"email": CANARIES[1], "ip": "10.0.0.999"}  # quarantined whole, its raw text vaulted
    return events


def _network(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False))


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


@pytest.mark.kafka
def test_clickstream_masks_ips_and_keeps_emails_in_the_pii_zone(
    kafka_broker: TansuBroker, lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_broker.bootstrap)
    topic = new_topic("clicks")
    create_topic(kafka_broker.bootstrap, topic, partitions=3)
    events = _events()
    produce(
        kafka_broker.bootstrap, topic, ((n % 3, None, json.dumps(e).encode()) for n, e in enumerate(events))
    )
    spec = _shipped(topic)

    report = ingest(spec, run_id="clicks-1")

    good = [e for e in events if _valid(e["ip"])]
    bad = [e for e in events if not _valid(e["ip"])]
    assert bad and len(bad) < len(events) // 10
    curated = open_zone(ZoneName.CURATED).read("web", "clickstream").sort("event_id")
    assert report.committed_rows == curated.height == len(good)
    expected = pl.DataFrame(
        {
            "event_id": [e["event_id"] for e in good],
            "ip": [_network(e["ip"]) for e in good],
            "url_host": ["shop.example"] * len(good),
            "url_path": [e["url"].split("?")[0].removeprefix("https://shop.example") for e in good],
        }
    ).sort("event_id")
    assert curated.select(expected.columns).equals(expected)
    assert curated["at_date"].drop_nulls().len() == len(good)
    assert not curated["email"].str.contains("@").any(), "curated holds tokens, never e-mail addresses"

    quarantine = open_zone(ZoneName.QUARANTINE).read("web", "clickstream")
    assert quarantine.height == len(bad)
    assert set(quarantine[RULE]) == {"transform:mask_ip"}
    assert sorted(quarantine[POSITION]) == sorted(n // 3 for n, e in enumerate(events) if not _valid(e["ip"]))

    vault = open_zone(ZoneName.PII, load_config()).read("web", "clickstream")["value"].to_list()
    assert CANARIES[0] in vault and {e["email"] for e in good} <= set(vault)
    assert any(CANARIES[1] in v for v in vault), "the quarantined event's raw text is vaulted whole"

    scanned = 0
    for zone in ("raw", "curated", "quarantine"):
        for path in (lakegate_home / "zones" / zone).rglob("*"):
            if path.suffix == ".parquet":
                table = pq.read_table(path)
                text = " ".join(str(v) for c in table.columns for v in c.cast(pa.string()).to_pylist())
                scanned += 1
            elif path.is_file():
                text = path.read_text(errors="replace")
            else:
                continue
            for canary in [*CANARIES, *(e["ip"] for e in events[:20])]:
                assert canary not in text, f"{canary} leaked into {path}"
    assert scanned >= 2

    assert ingest(spec, run_id="clicks-2").committed_rows == 0, "nothing new: a second run adds nothing"


def test_sensor_skips_with_a_reason_while_no_broker_answers(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")  # nothing listens there
    spec = load_spec(DEFS)
    defs = dg.Definitions.merge(build_pipeline(spec), dg.Definitions(resources=default_resources()))
    sensor = defs.get_sensor_def("web_clickstream_stream_sensor")
    with dg.instance_for_test() as instance:
        result = sensor(dg.build_sensor_context(instance=instance, resources=default_resources()))
    assert isinstance(result, dg.SkipReason)
    assert str(result.skip_message).startswith("cannot probe web/clickstream: kafka at 127.0.0.1:")
