"""The sql connector's table list: one pipeline, dataset and set of assets per table, per-table cursor and
key overrides, definitions built without touching the database, and ``lakegate discover``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
import pytest
import yaml

from dagster_project.cli import main
from dagster_project.pipeline_defs import pipeline_definitions
from dagster_project.resources import default_resources
from pipelines import PipelineSpec, check_spec, curate, expand, ingest, read_defs_file, read_defs_folder
from tests.services.postgres import PASSWORD, PgServer
from zones import ZoneName, load_config, open_zone

_SCHEMA = [
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER, updated_at INTEGER)",
    "CREATE TABLE customers (cid INTEGER PRIMARY KEY, name TEXT, modified INTEGER)",
    "INSERT INTO orders VALUES (1, 10, 1), (2, 20, 2)",
    "INSERT INTO customers VALUES (7, 'ann', 5), (8, 'bob', 6), (9, 'cy', 7)",
]


def _spec(url: str, **config: Any) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "shop",
            "domain": "sales",
            "pattern": "ELT",
            "primary_key": ["id"],
            "transforms": ["dedupe_latest"],
            "connector": {
                "type": "sql",
                "config": {
                    "url": url,
                    "cursor": "updated_at",
                    "tables": [
                        "orders",
                        {"table": "customers", "cursor": "modified", "primary_key": ["cid"]},
                    ],
                    **config,
                },
            },
        }
    )


def _replicate_two_tables(spec: PipelineSpec, change: Callable[[str], Any]) -> None:
    """Each table lands in its own dataset; the second run reads only each table's new or changed rows."""
    assert check_spec(spec) == []
    orders, customers = expand(spec)
    assert (orders.path, customers.path) == ("sales/orders", "sales/customers")
    assert (orders.primary_key, customers.primary_key) == (["id"], ["cid"])
    assert [ingest(one, run_id="r1").input_rows for one in (orders, customers)] == [2, 3]
    change("UPDATE orders SET amount = 21, updated_at = 3 WHERE id = 2")
    change("UPDATE customers SET name = 'cyd', modified = 9 WHERE cid = 9")
    change("INSERT INTO customers VALUES (10, 'dee', 10)")
    assert [ingest(one, run_id="r2").input_rows for one in (orders, customers)] == [1, 2]
    curated = open_zone(ZoneName.CURATED, load_config())
    for one in (orders, customers):
        curate(one, run_id="c")
    assert curated.read("sales", "orders").sort("id").select("id", "amount").rows() == [(1, 10), (2, 21)]
    assert curated.read("sales", "customers").sort("cid").select("cid", "name").rows() == [
        (7, "ann"),
        (8, "bob"),
        (9, "cyd"),
        (10, "dee"),
    ]


@pytest.mark.parametrize("backend", ["pyarrow", "connectorx"])
def test_table_list_on_sqlite(tmp_path: Path, lakegate_home: Path, backend: str) -> None:
    db = tmp_path / "shop.db"

    def run(sql: str) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute(sql)

    for sql in _SCHEMA:
        run(sql)
    _replicate_two_tables(_spec(f"sqlite:///{db}", backend=backend), run)


@pytest.mark.postgres
def test_table_list_of_a_schema_on_postgres(
    pg_server: PgServer, pg_database: str, pg_exec: Callable[..., Any], lakegate_home: Path
) -> None:
    pg_exec("CREATE SCHEMA shop")
    pg_exec("SET search_path TO shop")

    def run(sql: str) -> None:
        pg_exec(f"SET search_path TO shop; {sql}")

    for sql in _SCHEMA:
        run(sql)
    url = f"postgresql+psycopg2://lakegate:{quote(PASSWORD, safe='')}@{pg_server.host}:{pg_server.port}/"
    _replicate_two_tables(_spec(url + pg_database, schema_name="shop"), run)


def _defs_file(folder: Path, config: dict[str, Any], **attributes: Any) -> Path:
    file = folder / "shop" / "defs.yaml"
    file.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "type": "dagster_project.components.IngestionPipeline",
        "attributes": {
            "name": "shop",
            "domain": "sales",
            "primary_key": ["id"],
            "connector": {"type": "sql", "config": config},
            "trigger": {"cron": "0 * * * *"},
            **attributes,
        },
    }
    file.write_text(yaml.safe_dump(document))
    return file


def test_each_table_gets_its_assets_and_job_without_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1: building the definitions must not connect.
    monkeypatch.setenv("SHOP_DB_URL", "postgresql+psycopg2://u:topsecret@127.0.0.1:1/db")
    url = {"env": "SHOP_DB_URL"}
    _defs_file(tmp_path, {"url": url, "cursor": "v", "tables": ["orders", {"table": "Items", "cursor": "w"}]})
    built = dg.Definitions.merge(
        *pipeline_definitions(read_defs_folder(tmp_path)), dg.Definitions(resources=default_resources())
    )
    keys = {key.to_user_string() for key in built.resolve_all_asset_keys()}
    for dataset in ("orders", "items"):
        assert {f"sales/{dataset}/{zone}" for zone in ("landing", "raw", "curated", "quarantine")} <= keys
    jobs = {job.name for job in built.resolve_all_job_defs() if not job.name.startswith("__")}
    assert jobs == {"sales_orders_job", "sales_items_job"}
    assert {s.name for s in built.schedules or []} == {"sales_orders_schedule", "sales_items_schedule"}
    landing = built.resolve_asset_graph().get(dg.AssetKey(["sales", "items", "landing"]))
    assert "sql connector: Items at ${SHOP_DB_URL}" in str(landing.description)
    assert "topsecret" not in str(landing.description)


def test_table_list_mistakes_are_named(tmp_path: Path) -> None:
    cases = {
        "set either 'table' or 'tables'": ({"url": "sqlite:///x.db", "cursor": "v"}, {}),
        "dataset(s) orders named twice": (
            {
                "url": "sqlite:///x.db",
                "cursor": "v",
                "tables": ["orders", {"table": "o", "dataset": "orders"}],
            },
            {},
        ),
        "columns: declared for all 2 tables": (
            {"url": "sqlite:///x.db", "cursor": "v", "tables": ["a", "b"]},
            {"columns": {"id": {"type": "int64"}}},
        ),
        "'_x' is not a valid pipeline name": ({"url": "sqlite:///x.db", "cursor": "v", "tables": ["_x"]}, {}),
        "table b: set 'cursor'": ({"url": "sqlite:///x.db", "tables": [{"table": "b"}]}, {}),
    }
    for message, (config, attributes) in cases.items():
        _, problems = read_defs_file(_defs_file(tmp_path, config, **attributes))
        assert any(message in p for p in problems), (message, problems)


def test_discover_writes_every_table_of_the_schema(
    tmp_path: Path, lakegate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, updated_at INTEGER);"
            "CREATE TABLE lines (order_id INTEGER, line INTEGER, updated_at INTEGER,"
            " PRIMARY KEY (order_id, line));"
            "CREATE TABLE rates (code TEXT PRIMARY KEY, rate REAL);"
            "INSERT INTO rates VALUES ('EUR', 1.0), ('USD', 1.1);"
        )
    file = _defs_file(tmp_path, {"url": f"sqlite:///{db}", "cursor": "updated_at"})
    assert main(["discover", "shop", "--defs", str(tmp_path)]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)["tables"]
    assert main(["discover", "shop", "--defs", str(tmp_path), "--check"]) == 1
    assert "tables not listed: lines, orders, rates" in capsys.readouterr().err
    assert main(["discover", "shop", "--defs", str(tmp_path), "--write"]) == 0
    assert main(["discover", "shop", "--defs", str(tmp_path), "--check"]) == 0
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE added (id INTEGER PRIMARY KEY, updated_at INTEGER)")
    assert main(["discover", "shop", "--defs", str(tmp_path), "--check"]) == 1
    assert "tables not listed: added; listed but gone: none" in capsys.readouterr().err
    spec, problems = read_defs_file(file)
    assert spec is not None and problems == []
    assert (
        spec.connector.config["tables"]
        == printed
        == [
            {"table": "lines", "primary_key": ["order_id", "line"]},
            {"table": "orders", "primary_key": ["id"]},
            {"table": "rates", "primary_key": ["code"], "full_refresh": True},
        ]
    )
    assert [(one.name, one.primary_key) for one in expand(spec)] == [
        ("lines", ["order_id", "line"]),
        ("orders", ["id"]),
        ("rates", ["code"]),
    ]
    rates = expand(spec)[2]  # no cursor column: read whole every run
    assert [ingest(rates, run_id=run).input_rows for run in ("r1", "r2")] == [2, 2]


def test_discover_unreachable_database_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _defs_file(tmp_path, {"url": "postgresql+psycopg2://u:topsecret@127.0.0.1:1/db", "cursor": "v"})
    assert main(["discover", "shop", "--defs", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot read the database" in err and "topsecret" not in err and "\n" not in err


def test_a_table_named_like_another_pipeline_breaks_only_its_file(tmp_path: Path) -> None:
    url = "sqlite:///x.db"
    single = tmp_path / "orders" / "defs.yaml"
    single.parent.mkdir()
    single.write_text(
        _defs_file(tmp_path, {"url": url, "cursor": "v", "table": "orders"})
        .read_text()
        .replace("shop", "orders")
    )
    _defs_file(tmp_path, {"url": url, "cursor": "v", "tables": ["orders", "items"]})
    built = dg.Definitions.merge(
        *pipeline_definitions(read_defs_folder(tmp_path)), dg.Definitions(resources=default_resources())
    )
    keys = {key.to_user_string() for key in built.resolve_all_asset_keys()}
    assert "sales/orders/raw" in keys and "sales/items/raw" not in keys
    broken = built.resolve_asset_graph().get(dg.AssetKey(["broken_definitions", "shop"]))
    assert "sales/orders is already declared by" in str(broken.metadata["problems"].value)
