"""The acceptance path as a user runs it: demo data, `lakegate run`, `lakegate table` — with every zone
on local disk, on S3 (moto server) and on GCS (fake-gcs-server + shim), same assertions: files and sql
pipelines, a Kafka stream (Tansu) into raw and curated, the PII split scanned file by file on the store,
and retention with a legal hold (last: it deletes what the others read)."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import fsspec
import polars as pl
import pytest

from dagster_project.cli import main
from dagster_project.definitions import DEFS_FOLDER
from lakegate.columns import POSITION, SOURCE
from pipelines import PipelineSpec, curate, ingest
from pipelines.demo import INVENTORY_DB, DemoManifest, write_demo
from pipelines.retention import apply, load_declared, plan
from tests.conftest import isolate
from tests.services.kafka import TansuBroker, create_topic, new_topic, produce
from tests.store_params import STORES, zone_text, zones_on_store
from zones import ZoneName, load_config, open_zone, read_audit, read_retention_audit


def table_json(capsys: pytest.CaptureFixture[str], zone: str, dataset: str) -> dict:
    capsys.readouterr()
    assert main(["table", zone, dataset, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# Raw expires after 30 days; a legal hold keeps sales/orders whatever the policy says.
RETENTION = {"raw": "retention: 30d"}
HOLD = (
    f"holds:\n  - {{dataset: sales/orders, zone: raw, reason: case 17, who: legal, when: {date.today()}}}\n"
)


@pytest.fixture(scope="module", params=STORES)
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoManifest]:
    """The demo drops ingested and curated, every zone (landing too) on the store of the parameter."""
    with pytest.MonkeyPatch.context() as mp:
        home = isolate(mp, tmp_path_factory.mktemp(f"lakegate-{request.param}"))
        zones_on_store(request, mp, home, request.param, RETENTION, HOLD)
        manifest = write_demo(load_config(), rows=300)
        for pipeline in ("orders", "customers", "events", "inventory"):
            assert main(["run", pipeline]) == 0, pipeline
        yield manifest


def test_orders_input_rows_are_curated_or_quarantined(
    demo: DemoManifest, capsys: pytest.CaptureFixture[str]
) -> None:
    curated = table_json(capsys, "curated", "sales/orders")
    quarantined = table_json(capsys, "quarantine", "sales/orders")
    assert {"zone", "dataset", "uri", "version", "rows", "schema", "history"} <= curated.keys()
    assert curated["rows"] == demo.distinct_keys["sales/orders"]
    assert curated["rows"] + quarantined["rows"] == demo.input_rows["sales/orders"]
    assert curated["schema"]["amount"] == "decimal(12,2)"
    assert curated["schema"]["order_id"] == "int64"


def test_curated_orders_hold_the_latest_version_of_each_order(demo: DemoManifest) -> None:
    curated = open_zone("curated", load_config()).read("sales", "orders")
    assert curated["order_id"].n_unique() == curated.height
    resent = curated.filter(pl.col("order_id") <= 50)
    assert resent["status"].unique().to_list() == ["shipped"]  # the second drop's later updated_at won


def test_quarantine_names_rule_reason_and_position(demo: DemoManifest) -> None:
    rejected = open_zone("quarantine", load_config()).read("sales", "orders")
    rules = rejected.group_by("_lakegate_rule").len().sort("_lakegate_rule")
    assert dict(rules.iter_rows()) == {"cast_schema": 2, "csv_field_count": 2, "transform:dedupe_latest": 50}
    field_count = rejected.filter(pl.col("_lakegate_rule") == "csv_field_count")
    assert (
        field_count["_lakegate_reason"]
        .str.contains(r"orders_2026-11-01\.csv line \d+: expected 6 fields")
        .all()
    )
    assert field_count["_lakegate_raw"].to_list() == [
        "301,17,12.50,paid",
        "302,oops,too,many,fields,here,2026-11-01",
    ]
    cast = rejected.filter(pl.col("_lakegate_rule") == "cast_schema")
    assert sorted(cast["_lakegate_reason"].str.extract(r"column '(\w+)'").to_list()) == [
        "amount",
        "ordered_at",
    ]
    assert cast["_lakegate_position"].is_not_null().all()


def test_second_run_adds_nothing_anywhere(demo: DemoManifest, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config()
    zones = ("raw", "curated", "quarantine")
    before = {z: table_json(capsys, z, "sales/orders")["version"] for z in zones}
    audit_before = {z: read_audit(open_zone(z, config)).height for z in zones}
    assert main(["run", "orders"]) == 0
    assert {z: table_json(capsys, z, "sales/orders")["version"] for z in zones} == before
    assert {z: read_audit(open_zone(z, config)).height for z in zones} == audit_before


def test_etl_customers_land_cleaned_in_curated_only(demo: DemoManifest) -> None:
    config = load_config()
    curated = open_zone("curated", config).read("crm", "customers")
    assert curated.height == demo.distinct_keys["crm/customers"]
    assert open_zone("raw", config).delta_table("crm", "customers") is None
    assert curated.filter(pl.col("name").str.starts_with(" ")).height == 0  # normalize_strings ran in flight
    assert curated["email"].str.starts_with("tok_").all()
    assert curated["phone"].str.starts_with("****").all()
    quarantined = open_zone("quarantine", config).read("crm", "customers")
    assert curated.height + quarantined.height == demo.input_rows["crm/customers"]


def test_pii_vault_resolves_tokens(demo: DemoManifest) -> None:
    config = load_config()
    curated = open_zone("curated", config).read("crm", "customers").filter(pl.col("customer_id") == 1)
    vault = open_zone("pii", config).read("crm", "customers")
    value = vault.filter(pl.col("token") == curated["email"][0])["value"].to_list()
    assert value == ["customer1@example.com"]


def test_el_events_loaded_as_received(demo: DemoManifest) -> None:
    raw = open_zone("raw", load_config()).read("web", "events")
    assert raw.height == demo.input_rows["web/events"]
    assert raw.schema["at"] == pl.Datetime("us", "UTC")
    lineage = {
        "_lakegate_source",
        "_lakegate_position",
        "_lakegate_load_id",
        "_lakegate_run_id",
        "_lakegate_ingested_at",
        "_lakegate_ingest_date",
    }
    assert lineage <= set(raw.columns)
    assert raw["_lakegate_run_id"].n_unique() == 1


def test_sql_inventory_replicates_the_sqlite_table_incrementally(demo: DemoManifest) -> None:
    config = load_config()
    curated = open_zone("curated", config).read("warehouse", "inventory")
    assert curated.height == demo.input_rows["warehouse/inventory"]
    landing = open_zone("landing", config)
    fs, path = fsspec.core.url_to_fs(f"{landing.config.url}/{INVENTORY_DB}", **landing.fsspec_options())
    with tempfile.TemporaryDirectory() as folder:  # the stock system changes 30 items
        local = f"{folder}/inventory.db"
        fs.get(path, local)
        with sqlite3.connect(local) as conn:
            conn.execute("UPDATE stock SET quantity = 0, version = version + 1000 WHERE item_id <= 30")
        conn.close()
        fs.put(local, path)
    assert main(["run", "inventory"]) == 0
    raw = open_zone("raw", config).read("warehouse", "inventory")
    assert raw.height == demo.input_rows["warehouse/inventory"] + 30  # only the changed rows were read
    curated = open_zone("curated", config).read("warehouse", "inventory").sort("item_id")
    assert curated.height == demo.distinct_keys["warehouse/inventory"]
    assert curated["quantity"].head(30).to_list() == [0] * 30
    assert curated["version"].head(30).to_list() == list(range(1001, 1031))


def test_every_commit_is_audited(demo: DemoManifest) -> None:
    config = load_config()
    for zone_name in ("raw", "curated", "quarantine", "pii"):
        zone = open_zone(zone_name, config)
        audit = read_audit(zone)
        for dataset in ("sales/orders", "crm/customers", "web/events", "warehouse/inventory"):
            table = zone.delta_table(*dataset.split("/"))
            if table is None:
                continue
            commits = len(table.history())
            assert audit.filter(pl.col("table") == zone.table_uri(*dataset.split("/"))).height == commits, (
                zone_name,
                dataset,
            )


def test_table_shows_rows_filtered_and_projected(
    demo: DemoManifest, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (
        main(
            [
                "table",
                "curated",
                "sales/orders",
                "--head",
                "3",
                "--where",
                "amount > 100",
                "--json",
                "--columns",
                "order_id,amount",
            ]
        )
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert len(shown) == 3 and all(set(r) == {"order_id", "amount"} for r in shown)
    assert all(float(r["amount"]) > 100 for r in shown)
    assert main(["table", "curated", "sales/orders", "--head", "2"]) == 0
    text = capsys.readouterr().out
    assert "order_id" in text and "decimal[12,2]" in text
    assert main(["table", "curated", "sales/orders", "--where", "amout > 1"]) == 2
    assert "columns: " in capsys.readouterr().err


def test_table_history_has_iso_times_and_partitions(
    demo: DemoManifest, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = table_json(capsys, "raw", "sales/orders")
    assert raw["partition_columns"] == ["_lakegate_ingest_date"]
    assert raw["history"][0]["timestamp"].startswith("20") and "T" in raw["history"][0]["timestamp"]


def test_quarantine_view_groups_by_rule_without_plaintext_pii(
    demo: DemoManifest, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["quarantine", "sales/orders", "--json"]) == 0
    groups = {g["rule"]: g for g in json.loads(capsys.readouterr().out)}
    assert groups["transform:dedupe_latest"]["records"] == 50
    assert {"csv_field_count", "cast_schema"} <= groups.keys()
    sample = groups["transform:dedupe_latest"]["samples"][0]
    assert "orders_2026-11-01.csv row" in sample["reason"]  # the file and row it came from
    assert main(["quarantine", "crm/customers"]) == 0
    text = capsys.readouterr().out
    assert "json_syntax" in text
    assert not any(value in text for value in demo.pii_values)


def test_pii_plaintext_only_in_the_pii_zone_of_the_store(demo: DemoManifest) -> None:
    config = load_config()
    curated = open_zone("curated", config).read("crm", "customers")
    assert curated["email"].str.starts_with("tok_").all() and curated["phone"].str.starts_with("****").all()
    vault = open_zone("pii", config).read("crm", "customers")
    resolved = curated.join(vault, left_on="email", right_on="token", how="inner")
    assert resolved.height == curated.height and resolved["value"].str.contains("@").all()
    assert any("broken-line@example.com" in v for v in vault["value"])  # an unreadable line, vaulted whole
    scanned = 0
    for name in ("raw", "curated", "quarantine"):
        zone = open_zone(name, config)
        for path, text in zone_text(zone.config.url, zone.fsspec_options()).items():
            scanned += path.endswith(".parquet")
            leaked = [value for value in demo.pii_values if value in text]
            assert not leaked, f"{leaked[:3]} leaked into {path}"
    assert scanned >= 6


@pytest.mark.kafka
def test_kafka_stream_lands_exactly_the_produced_records(
    demo: DemoManifest, kafka_broker: TansuBroker
) -> None:
    topic = new_topic("e2e")
    create_topic(kafka_broker.bootstrap, topic, partitions=2)
    produced = [(n % 2, None, json.dumps({"tick_id": f"t{n}", "n": n}).encode()) for n in range(200)]
    produce(kafka_broker.bootstrap, topic, produced)
    spec = PipelineSpec.model_validate(
        {
            "name": "ticks",
            "domain": "stream",
            "pattern": "ELT",
            "primary_key": ["tick_id"],
            "connector": {
                "type": "kafka",
                "config": {"bootstrap_servers": kafka_broker.bootstrap, "topics": [topic]},
            },
        }
    )
    config = load_config()

    report = ingest(spec, run_id="stream-1")
    curate(spec, run_id="stream-1", config=config)

    assert (report.input_rows, report.committed_rows, report.quarantined_rows) == (200, 200, 0)
    raw = open_zone("raw", config).read("stream", "ticks")
    assert sorted(raw.select(SOURCE, POSITION).rows()) == sorted(
        (f"{topic}/{p}", offset) for p in range(2) for offset in range(100)
    )
    curated = open_zone("curated", config).read("stream", "ticks")
    assert sorted(curated.select("tick_id", "n").rows()) == sorted((f"t{n}", str(n)) for n in range(200))
    versions = {z: open_zone(z, config).delta_table("stream", "ticks").version() for z in ("raw", "curated")}
    assert ingest(spec, run_id="stream-2").input_rows == 0
    assert curate(spec, run_id="stream-2", config=config).raw_version is None
    assert {z: open_zone(z, config).delta_table("stream", "ticks").version() for z in versions} == versions


def test_retention_expires_raw_by_policy_the_hold_wins_and_it_is_audited(demo: DemoManifest) -> None:
    """Last in the module: it deletes what the other tests read."""
    config = load_config()
    raw, curated = open_zone(ZoneName.RAW, config), open_zone(ZoneName.CURATED, config)
    orders = {z.name: z.read("sales", "orders").height for z in (raw, curated)}
    assert raw.read("web", "events").height == demo.input_rows["web/events"]
    declared = [d for d in load_declared(DEFS_FOLDER) if d.spec.name in ("orders", "events")]
    later = datetime.now(UTC) + timedelta(days=31)

    planned = plan(declared, config, later, zones=[ZoneName.RAW])
    summaries = {s["dataset"]: s for s in (p.summary() for p in planned.datasets)}
    assert summaries["web/events"]["delete"]["rows"] == demo.input_rows["web/events"]
    assert summaries["sales/orders"]["delete"]["rows"] == 0
    assert summaries["sales/orders"]["held"] and "hold by legal" in summaries["sales/orders"]["held"][0]
    done = {
        d.plan.policy.path: d.deleted_rows for d in apply(declared, config, planned, run_id="retention-1")
    }
    assert done == {"web/events": demo.input_rows["web/events"], "sales/orders": 0}

    assert raw.read("web", "events").height == 0
    assert {z.name: z.read("sales", "orders").height for z in (raw, curated)} == orders
    audit = read_retention_audit(raw).filter(pl.col("operation") == "delete")
    assert audit.select("dataset", "rows", "run_id").rows() == [
        ("web/events", demo.input_rows["web/events"], "retention-1")
    ]
