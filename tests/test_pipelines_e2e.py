"""The acceptance path as a user runs it: demo data, `lakegate run`, `lakegate table` — with every zone
on local disk, on S3 (moto server) and on GCS (fake-gcs-server + shim), same assertions."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import polars as pl
import pytest
import s3fs

from dagster_project.cli import main
from pipelines.demo import INVENTORY_DB, DemoManifest, write_demo
from tests.conftest import isolate
from zones import ZoneName, load_config, open_zone, read_audit

STORES = ["local", pytest.param("s3", marks=pytest.mark.s3), pytest.param("gcs", marks=pytest.mark.gcs)]


def table_json(capsys: pytest.CaptureFixture[str], zone: str, dataset: str) -> dict:
    capsys.readouterr()
    assert main(["table", zone, dataset, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module", params=STORES)
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoManifest]:
    """The demo drops ingested and curated, every zone (landing too) on the store of the parameter."""
    with pytest.MonkeyPatch.context() as mp:
        home = isolate(mp, tmp_path_factory.mktemp(f"lakegate-{request.param}"))
        if request.param != "local":
            _zones_in_a_bucket(request, mp, home)
        manifest = write_demo(load_config(), rows=300)
        for pipeline in ("orders", "customers", "events", "inventory"):
            assert main(["run", pipeline]) == 0, pipeline
        yield manifest


def _zones_in_a_bucket(request: pytest.FixtureRequest, mp: pytest.MonkeyPatch, home: Path) -> None:
    """A ``lakegate.yaml`` putting every zone in a fresh bucket, credentials by environment variable."""
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL_S3": server.url,
            "AWS_EC2_METADATA_DISABLED": "true",  # never fall back to a cloud metadata address
        }.items():
            mp.setenv(name, value)
        storage = (
            "{key: {env: AWS_ACCESS_KEY_ID}, secret: {env: AWS_SECRET_ACCESS_KEY}, "
            "endpoint_url: {env: AWS_ENDPOINT_URL_S3}}"
        )
        scheme = "s3"
        s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=server.url).mkdir(bucket)
    else:
        server = request.getfixturevalue("gcs_server")
        mp.setenv("GCS_ENDPOINT_URL", server.url)
        storage, scheme = "{endpoint_url: {env: GCS_ENDPOINT_URL}}", "gs"
        server.create_bucket(bucket)
    config = home.parent / "lakegate.yaml"
    config.write_text(
        "zones:\n"
        + "".join(
            f"  {z.value}: {{url: '{scheme}://{bucket}/{z.value}', storage: {storage}}}\n" for z in ZoneName
        )
    )
    mp.setenv("LAKEGATE_CONFIG", str(config))


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
