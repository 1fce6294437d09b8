"""``history: scd2`` on a PostgreSQL CDC pipeline: curated keeps ``<name>_history`` beside the current state;
an update and a delete close the old version (and the update opens a new one); a replay changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from dagster_project.pipeline_defs import build_pipeline
from dagster_project.resources import default_resources
from lakegate.columns import POSITION
from pipelines import PipelineSpec, check_spec, curate, history, history_counts, ingest
from pipelines.retention import Declared, apply, plan, policies
from tests.services.postgres import PgServer
from zones import ZoneName, load_config, open_zone

pytestmark = pytest.mark.postgres

Sql = Callable[..., list[tuple[Any, ...]]]


def _spec(dsn: str, **attributes: Any) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "accounts",
            "domain": "bank",
            "pattern": "ELT",
            "primary_key": ["id"],
            "transforms": ["cdc_apply"],
            "history": "scd2",
            "connector": {
                "type": "postgres_cdc",
                "config": {"dsn": dsn, "table": "public.accounts", "slot": "history"},
            },
            **attributes,
        }
    )


def _run(spec: PipelineSpec, run_id: str) -> int | None:
    ingest(spec, run_id=run_id)
    curate(spec, run_id=run_id)
    return history(spec, run_id=run_id).raw_version


def _versions() -> list[tuple[Any, ...]]:
    frame = open_zone(ZoneName.CURATED, load_config()).read("bank", "accounts_history")
    columns = ["id", "balance", "valid_from", "valid_to", "is_current"]
    return [tuple(r) for r in frame.sort("id", POSITION).select(columns).iter_rows()]


def test_update_and_delete_close_versions_and_a_replay_changes_nothing(
    pg_server: PgServer, pg_database: str, pg_exec: Sql, lakegate_home: Path
) -> None:
    pg_exec("CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance bigint)")
    pg_exec("INSERT INTO accounts VALUES (1, 'ann', 10), (2, 'bob', 20), (3, 'cy', 30)")
    spec = _spec(pg_server.dsn(pg_database))
    assert check_spec(spec) == []
    assert _run(spec, "r1") is not None
    assert _versions() == [(i, i * 10, None, None, True) for i in (1, 2, 3)]  # snapshot: valid since ever

    pg_exec("UPDATE accounts SET balance = 11 WHERE id = 1")
    pg_exec("DELETE FROM accounts WHERE id = 2")
    _run(spec, "r2")
    (one_old, one_new, two, three) = _versions()
    assert one_old[:2] == (1, 10) and one_old[3] is not None and one_old[4] is False
    assert one_new[:2] == (1, 11) and one_new[2] == one_old[3] and one_new[3] is None and one_new[4]
    assert two[:2] == (2, 20) and two[3] is not None and two[3] > one_new[2] and two[4] is False
    assert three == (3, 30, None, None, True)

    # Current versions of the history are the current-state table.
    curated = open_zone(ZoneName.CURATED, load_config())
    current = {(r[0], r[1]) for r in _versions() if r[4]}
    assert (
        current
        == set(curated.read("bank", "accounts").select("id", "balance").iter_rows())
        == {
            (1, 11),
            (3, 30),
        }
    )

    # A replay (nothing new in raw) commits nothing; a later change opens one more version.
    table = curated.delta_table("bank", "accounts_history")
    assert table is not None
    before, rows = table.version(), _versions()
    assert history(spec, run_id="again").raw_version is None
    table.update_incremental()
    assert (table.version(), _versions()) == (before, rows)
    pg_exec("UPDATE accounts SET balance = 12 WHERE id = 1")
    _run(spec, "r3")
    ones = [r for r in _versions() if r[0] == 1]
    assert [(r[1], r[4]) for r in ones] == [(10, False), (11, False), (12, True)]
    assert ones[1][3] == ones[2][2]


def test_history_needs_elt() -> None:
    spec = _spec("postgresql://x@127.0.0.1:1/db", pattern="ETL")
    assert any(
        p.startswith("history: built from raw's change rows, so it needs pattern ELT")
        for p in check_spec(spec)
    )


def test_history_is_an_asset_of_the_pipeline_job(
    pg_server: PgServer, pg_database: str, pg_exec: Sql, lakegate_home: Path
) -> None:
    pg_exec("CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance bigint)")
    pg_exec("INSERT INTO accounts VALUES (1, 'ann', 10)")
    built = dg.Definitions.merge(
        build_pipeline(_spec(pg_server.dsn(pg_database))), dg.Definitions(resources=default_resources())
    )
    job = built.resolve_job_def("bank_accounts_job")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key}
    assert "bank/accounts_history/curated" in done
    assert _versions() == [(1, 10, None, None, True)]
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "history_consistent"]
    assert check.passed

    # The check can fail: a second open version of key 1 written behind lakegate's back.
    spec = _spec(pg_server.dsn(pg_database))
    assert history_counts(spec, load_config())["keys_with_several_open_versions"] == 0
    uri = open_zone(ZoneName.CURATED, load_config()).table_uri("bank", "accounts_history")
    stored = pl.read_delta(uri)
    stored.with_columns(pl.col(POSITION) + 1).write_delta(uri, mode="append")
    assert history_counts(spec, load_config())["keys_with_several_open_versions"] == 1


def test_raw_upkeep_waits_for_the_history(
    pg_server: PgServer, pg_database: str, pg_exec: Sql, lakegate_home: Path
) -> None:
    pg_exec("CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance bigint)")
    pg_exec("INSERT INTO accounts VALUES (1, 'ann', 10)")
    spec = _spec(pg_server.dsn(pg_database))
    config = load_config()

    def raw_waits() -> str | None:
        declared = [Declared(Path("defs.yaml"), spec)]
        [raw] = [p for p in policies(declared, config) if p.zone is ZoneName.RAW]
        return raw.upkeep_waits

    ingest(spec, run_id="r1")
    curate(spec, run_id="r1")
    assert (raw_waits() or "").startswith("history has not applied every raw append yet")
    history(spec, run_id="r1")
    assert raw_waits() is None


def test_history_is_upkept_and_never_expired(
    pg_server: PgServer, pg_database: str, pg_exec: Sql, lakegate_home: Path
) -> None:
    pg_exec("CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance bigint)")
    pg_exec("INSERT INTO accounts VALUES (1, 'ann', 10), (2, 'bob', 20)")
    spec = _spec(pg_server.dsn(pg_database))
    for run in range(3):  # each merge replaces files: something to vacuum
        pg_exec(f"UPDATE accounts SET balance = balance + 1 WHERE id = {run % 2 + 1}")
        _run(spec, f"r{run}")
    config = load_config()
    declared = [Declared(Path("defs.yaml"), spec)]
    [policy] = [p for p in policies(declared, config) if p.dataset == "accounts_history"]
    assert policy.zone is ZoneName.CURATED and policy.retention is None
    rows = _versions()
    far = datetime.now(UTC) + timedelta(days=3650)  # every ingest date is long past any retention
    planned = plan(declared, config, far, [ZoneName.CURATED])
    [item] = [p for p in planned.datasets if p.policy.dataset == "accounts_history"]
    assert item.delete_rows == 0 and item.vacuum_files  # merges left replaced files behind
    apply(declared, config, planned, run_id="upkeep")
    assert _versions() == rows
