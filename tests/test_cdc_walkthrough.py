"""docs/cdc-walkthrough.md is true: its names agree with docker-compose.yml, and its pipeline and SQL, run
against a real PostgreSQL 15 (the compose source cannot run here), give the results it describes."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import curate, history, ingest, read_defs_file
from tests.services.postgres import PgServer
from tests.test_docker_compose import ROOT, environment
from zones import ZoneName, load_config, open_zone

DOC = ROOT / "docs" / "cdc-walkthrough.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def _psql(index: int) -> str:
    """The SQL of the ``index``-th ``psql -c`` command of the walkthrough."""
    return re.findall(r'psql -U lakegate -d shop -c \\?\s*"(.*?)"', DOC.read_text(), flags=re.S)[index]


def test_walkthrough_names_what_compose_declares() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    source = compose["services"]["source-postgres"]
    env = environment(source)
    text = DOC.read_text()
    assert f"-U {env['POSTGRES_USER']} -d {env['POSTGRES_DB']}" in text
    published = [p.split(":")[0] for p in source["ports"] if str(p).endswith(":5432")]
    assert published == ["5433"] and "localhost:5433" in text
    password = env["POSTGRES_PASSWORD"]
    assert f"password `{password}`" in text
    default = password.split(":-")[1].rstrip("}")
    assert f"postgresql://lakegate:{default}@localhost:5433/shop" in text
    for service in ("dagster-webserver", "dagster-daemon"):
        dsn = environment(compose["services"][service])["SOURCE_POSTGRES_DSN"]
        assert "@source-postgres:5432/shop" in dsn and "{env: SOURCE_POSTGRES_DSN}" in text


@pytest.mark.postgres
def test_walkthrough_runs_as_described(
    pg_server: PgServer,
    pg_database: str,
    pg_exec: Callable[..., Any],
    lakegate_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCE_POSTGRES_DSN", pg_server.dsn(pg_database))
    (pipeline,) = [b for b in _blocks("yaml") if "IngestionPipeline" in b]
    file = tmp_path / "accounts" / "defs.yaml"
    file.parent.mkdir()
    file.write_text(pipeline)
    spec, problems = read_defs_file(file)
    assert spec is not None and problems == []

    def run() -> None:
        ingest(spec, run_id="r")
        curate(spec, run_id="r")
        history(spec, run_id="r")

    pg_exec(_psql(0))
    run()
    curated = open_zone(ZoneName.CURATED, load_config())
    assert curated.read("bank", "accounts").height == 1000
    assert curated.read("bank", "accounts_history").height == 1000
    pg_exec(_psql(1))
    run()
    assert sorted(curated.read("bank", "accounts").select("id", "balance", "branch").rows()) == sorted(
        pg_exec("SELECT id, balance, branch FROM accounts")
    )
    assert curated.read("bank", "accounts").height == 996
    versions = curated.read("bank", "accounts_history")
    per_key = dict(versions.group_by("id").len().rows())
    assert all(per_key[i] == 2 for i in range(1, 11))
    assert versions.filter(versions["id"].is_between(11, 15))["is_current"].to_list() == [False] * 5
    assert versions.filter(versions["id"] == 1001)["is_current"].to_list() == [True]
    slot = pg_exec("SELECT slot_name FROM pg_replication_slots")
    assert slot == [("lakegate_accounts",)]
