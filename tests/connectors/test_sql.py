"""The sql connector: conformance on SQLite, incremental reads on SQLite and PostgreSQL, one-line errors."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from connectors.sql import SqlSourceError
from connectors.testing import ReplicationTests
from pipelines import PipelineSpec, curate, ingest
from tests.services.postgres import PASSWORD, PgServer
from zones import ZoneName, load_config, open_zone


def _sqlite(path: Path, sql: str, params: Any = ()) -> None:
    with sqlite3.connect(path) as db:
        db.executemany(sql, params) if params else db.executescript(sql)


class TestSqlConformance(ReplicationTests):
    connector_name = "sql"

    def make_config(self, tmp_path: Path) -> dict[str, Any]:
        db = tmp_path / "shop.db"
        _sqlite(db, "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, version INTEGER)")
        _sqlite(db, "INSERT OR IGNORE INTO items VALUES (?, ?, ?)", [(i, f"n{i}", i) for i in range(1, 6)])
        return {"url": f"sqlite:///{db}", "table": "items", "cursor": "version", "primary_key": ["id"]}

    def change_source(self, raw_config: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], int]:
        db = tmp_path / "shop.db"
        _sqlite(db, "UPDATE items SET name = 'changed', version = 6 WHERE id = 1")
        _sqlite(db, "INSERT INTO items VALUES (?, ?, ?)", [(7, "new", 7), (8, "newer", 8)])
        return raw_config, 3


def _encoded() -> str:
    return quote(PASSWORD, safe="")


def _spec(url: str, **config: Any) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "items",
            "domain": "shop",
            "pattern": "ELT",
            "primary_key": ["id"],
            "transforms": ["dedupe_latest"],
            "connector": {
                "type": "sql",
                "config": {"url": url, "table": "items", "cursor": "updated_at", **config},
            },
        }
    )


def _incremental(spec: PipelineSpec, home: Path, change: Callable[[str], None]) -> None:
    """Three runs: all rows, only the changed and new ones, then (local dlt folder gone) only newer ones."""
    assert ingest(spec, run_id="r1").input_rows == 3
    change("UPDATE items SET name = 'b2', updated_at = 20 WHERE id = 2")
    change("INSERT INTO items VALUES (4, 'd', 21)")
    assert ingest(spec, run_id="r2").input_rows == 2, "only the new and changed rows are read"
    shutil.rmtree(home / "dlt")
    change("INSERT INTO items VALUES (5, 'e', 30)")
    assert ingest(spec, run_id="r3").input_rows == 1, "resumed from the zone's cursor"
    curate(spec, run_id="c")
    frame = open_zone(ZoneName.CURATED, load_config()).read("shop", "items").sort("id")
    assert frame.select("id", "name").rows() == [(1, "a"), (2, "b2"), (3, "c"), (4, "d"), (5, "e")]


def test_incremental_on_sqlite(tmp_path: Path, lakegate_home: Path) -> None:
    db = tmp_path / "shop.db"
    _sqlite(db, "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, updated_at INTEGER)")
    _sqlite(db, "INSERT INTO items VALUES (?, ?, ?)", [(1, "a", 1), (2, "b", 2), (3, "c", 3)])
    _incremental(_spec(f"sqlite:///{db}"), lakegate_home, lambda sql: _sqlite(db, sql))


@pytest.mark.postgres
def test_incremental_on_postgres(
    pg_server: PgServer, pg_database: str, pg_exec: Callable[..., Any], lakegate_home: Path
) -> None:
    pg_exec("CREATE TABLE items (id int PRIMARY KEY, name text, updated_at bigint)")
    pg_exec("INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)")
    url = f"postgresql+psycopg2://lakegate:{_encoded()}@{pg_server.host}:{pg_server.port}/{pg_database}"
    _incremental(_spec(url), lakegate_home, pg_exec)


@pytest.mark.postgres
def test_errors_are_one_line_without_the_password(
    pg_server: PgServer, pg_database: str, pg_exec: Callable[..., Any], lakegate_home: Path, tmp_path: Path
) -> None:
    pg_exec("CREATE TABLE items (id int PRIMARY KEY, updated_at bigint)")
    base = f"{pg_server.host}:{pg_server.port}/{pg_database}"
    cases = {
        f"postgresql+psycopg2://lakegate:s3cr%25t%2Fbad@{base}": "cannot read the database",
        f"postgresql+psycopg2://lakegate:x@127.0.0.1:1/{pg_database}": "cannot read the database",
    }
    for url, message in cases.items():
        with pytest.raises(SqlSourceError, match=message) as caught:
            ingest(_spec(url), run_id="bad")
        assert "\n" not in str(caught.value) and "s3cr" not in str(caught.value)
    good = f"postgresql+psycopg2://lakegate:{_encoded()}@{base}"
    with pytest.raises(SqlSourceError, match="table nowhere does not exist"):
        ingest(_spec(good, table="nowhere"), run_id="bad")
    with pytest.raises(SqlSourceError, match="no column"):
        ingest(_spec(good, cursor="changed"), run_id="bad")
