"""postgres_cdc through the replication conformance kit, against a real PostgreSQL 15."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.testing import ReplicationTests
from tests.services.postgres import PgServer

pytestmark = pytest.mark.postgres


class TestPostgresCdcConformance(ReplicationTests):
    connector_name = "postgres_cdc"

    @pytest.fixture(autouse=True)
    def _source(self, pg_server: PgServer, pg_database: str, pg_exec: Callable[..., Any]) -> None:
        self.dsn = pg_server.dsn(pg_database)
        self.sql = pg_exec

    def make_config(self, tmp_path: Path) -> dict[str, Any]:
        self.sql("CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text)")
        self.sql("INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 5) g ON CONFLICT DO NOTHING")
        return {"dsn": self.dsn, "table": "items", "slot": "conformance", "publication": "conformance"}

    def change_source(self, raw_config: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], int]:
        self.sql("INSERT INTO items VALUES (100, 'new'), (101, 'newer')")
        self.sql("UPDATE items SET name = 'changed' WHERE id = 1")
        self.sql("DELETE FROM items WHERE id = 2")
        return raw_config, 4
