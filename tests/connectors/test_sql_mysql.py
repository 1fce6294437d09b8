"""The sql connector on MariaDB (MySQL dialect, pymysql): incremental reads, a table list, one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.sql import SqlSourceError
from pipelines import ingest
from tests.connectors.test_sql import _incremental
from tests.connectors.test_sql import _spec as _items_spec
from tests.connectors.test_sql_tables import _SCHEMA, _replicate_two_tables
from tests.connectors.test_sql_tables import _spec as _shop_spec
from tests.services.mysql import MysqlServer


@pytest.mark.mysql
def test_incremental_on_mariadb(
    mysql_server: MysqlServer, mysql_database: str, mysql_exec: Callable[[str], None], lakegate_home: Path
) -> None:
    mysql_exec("CREATE TABLE items (id int PRIMARY KEY, name text, updated_at bigint)")
    mysql_exec("INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)")
    _incremental(_items_spec(mysql_server.url(mysql_database)), lakegate_home, mysql_exec)


@pytest.mark.mysql
def test_table_list_on_mariadb(
    mysql_server: MysqlServer, mysql_database: str, mysql_exec: Callable[[str], None], lakegate_home: Path
) -> None:
    for sql in _SCHEMA:
        mysql_exec(sql)
    _replicate_two_tables(_shop_spec(mysql_server.url(mysql_database), backend="connectorx"), mysql_exec)


@pytest.mark.mysql
def test_mariadb_errors_are_one_line_without_the_password(
    mysql_server: MysqlServer, mysql_database: str, mysql_exec: Callable[[str], None], lakegate_home: Path
) -> None:
    mysql_exec("CREATE TABLE items (id int PRIMARY KEY, updated_at bigint)")
    cases = {
        mysql_server.url(mysql_database, password="s3cr%t/bad"): "Access denied",
        mysql_server.url(mysql_database).replace(str(mysql_server.port), "1"): "Can't connect",
    }
    for url, message in cases.items():
        with pytest.raises(SqlSourceError, match=f"cannot read the database .*{message}") as caught:
            ingest(_items_spec(url), run_id="bad")
        text = str(caught.value)
        assert "\n" not in text and "s3cr" not in text and "s3cr%25t" not in text
    with pytest.raises(SqlSourceError, match="table nowhere does not exist"):
        ingest(_items_spec(mysql_server.url(mysql_database), table="nowhere"), run_id="bad")


def test_a_dialect_without_its_driver_is_one_line(lakegate_home: Path) -> None:
    with pytest.raises(SqlSourceError, match=r"cannot use this URL \(No module named 'MySQLdb'\)") as caught:
        ingest(_items_spec("mysql+mysqldb://u:topsecret@127.0.0.1:1/db"), run_id="bad")
    assert "topsecret" not in str(caught.value)
