"""postgres_cdc end to end: PostgreSQL 15 -> raw -> curated (cdc_apply), acknowledgement, failures."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
import pytest

from connectors.postgres_cdc import (
    CdcError,
    CredentialsError,
    SetupError,
    SlotInUseError,
    SourceUnreachableError,
)
from lakegate.columns import OP, POSITION
from pipelines import PipelineSpec, curate, ingest
from pipelines.checks import CheckInput, CheckOutcome, Step, checks_for
from pipelines.spec import CdcSpec
from tests.conftest import free_port
from tests.services.postgres import PASSWORD, PgServer
from zones import LoadReport, ZoneName, load_config, open_zone

pytestmark = pytest.mark.postgres

Sql = Callable[..., list[tuple[Any, ...]]]


def _spec(dsn: str, **config: Any) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "accounts",
            "domain": "bank",
            "pattern": "ELT",
            "primary_key": ["id"],
            "transforms": ["cdc_apply"],
            "connector": {
                "type": "postgres_cdc",
                "config": {"dsn": dsn, "table": "public.accounts", "slot": "accounts", **config},
            },
        }
    )


def _run(spec: PipelineSpec, run_id: str) -> int:
    """Ingest then curate; returns the rows the ingest extracted."""
    report = ingest(spec, run_id=run_id)
    curate(spec, run_id=run_id)
    return report.input_rows


def _curated(columns: list[str]) -> list[tuple[Any, ...]]:
    frame = open_zone(ZoneName.CURATED, load_config()).read("bank", "accounts")
    return [tuple(r) for r in frame.select(columns).sort("id").iter_rows()]


def _confirmed(sql: Sql) -> str:
    return str(
        sql("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'accounts'")[0][0]
    )


@pytest.fixture
def accounts(pg_exec: Sql) -> Sql:
    pg_exec("CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance bigint)")
    pg_exec("INSERT INTO accounts SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 200) g")
    return pg_exec


def _mixed_changes(sql: Sql, count: int, seed: int) -> None:
    """``count`` random inserts, updates and deletes, some in multi-statement transactions."""
    rng = random.Random(seed)
    statements: list[str] = []
    next_id = 10_000 + seed * 10_000
    for _ in range(count):
        pick = rng.random()
        if pick < 0.4:
            next_id += 1
            statements.append(
                f"INSERT INTO accounts (id, owner, balance) VALUES ({next_id}, 'o{next_id}', 1)"
            )
        elif pick < 0.8:
            statements.append(
                f"UPDATE accounts SET balance = balance + {rng.randint(1, 99)} "
                f"WHERE id = (SELECT id FROM accounts ORDER BY md5(id::text || '{rng.random()}') LIMIT 1)"
            )
        else:
            statements.append(
                f"DELETE FROM accounts WHERE id = (SELECT id FROM accounts ORDER BY md5(id::text || "
                f"'{rng.random()}') LIMIT 1)"
            )
        if rng.random() < 0.3 or len(statements) > 5:
            sql("; ".join(statements))
            statements = []
    if statements:
        sql("; ".join(statements))


def test_snapshot_changes_and_added_column_curate_to_the_source(
    pg_server: PgServer, pg_database: str, accounts: Sql, lakegate_home: Path
) -> None:
    spec = _spec(pg_server.dsn(pg_database))
    assert _run(spec, "r1") == 200  # the snapshot
    _mixed_changes(accounts, 500, seed=1)
    accounts("ALTER TABLE accounts ADD COLUMN note text")
    accounts("UPDATE accounts SET note = 'vip ' || id WHERE id % 7 = 0")
    _mixed_changes(accounts, 500, seed=2)
    accounts("INSERT INTO accounts VALUES (99999, 'late', 5, 'with note')")
    _run(spec, "r2")
    source = accounts("SELECT id, owner, balance, note FROM accounts ORDER BY id")
    assert _curated(["id", "owner", "balance", "note"]) == source
    raw = open_zone(ZoneName.RAW, load_config()).read("bank", "accounts")
    assert raw[POSITION].n_unique() == raw.height, "a position landed twice in raw"
    assert set(raw[OP].unique()) == {"r", "c", "u", "d"}


def test_a_failing_zone_commit_acknowledges_nothing(
    pg_server: PgServer, pg_database: str, accounts: Sql, lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(pg_server.dsn(pg_database))
    _run(spec, "r1")
    accounts("UPDATE accounts SET balance = 0 WHERE id <= 50")
    _run(spec, "r2")
    before = _confirmed(accounts)
    accounts("DELETE FROM accounts WHERE id > 150")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    with monkeypatch.context() as mp:
        mp.setattr("zones._delta.append_stream", broken)
        with pytest.raises(Exception, match="disk full"):
            ingest(spec, run_id="r3")
    after_failure = _confirmed(accounts)
    # r3 may only acknowledge what r2 committed; the deletes it read never reached the zone.
    committed_lsn = open_zone(ZoneName.RAW, load_config()).read("bank", "accounts")[POSITION].max()
    assert isinstance(committed_lsn, int)
    assert _lsn(after_failure) <= committed_lsn >> 16
    assert _lsn(after_failure) >= _lsn(before)
    shutil.rmtree(lakegate_home / "dlt")  # the failed run's package is gone too: the slot still has it all
    _run(spec, "r4")
    assert _curated(["id", "owner", "balance"]) == accounts(
        "SELECT id, owner, balance FROM accounts ORDER BY id"
    )


def _lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def test_a_lost_dlt_folder_resumes_from_the_zone(
    pg_server: PgServer, pg_database: str, accounts: Sql, lakegate_home: Path
) -> None:
    spec = _spec(pg_server.dsn(pg_database))
    assert _run(spec, "r1") == 200
    accounts("INSERT INTO accounts SELECT g, 'x', 1 FROM generate_series(1000, 1029) g")
    assert _run(spec, "r2") == 30
    shutil.rmtree(lakegate_home / "dlt")  # another machine
    accounts("UPDATE accounts SET balance = 2 WHERE id BETWEEN 1000 AND 1009")
    assert _run(spec, "r3") == 10, "only the changes after the zone's position were read"
    assert _run(spec, "r4") == 0
    raw = open_zone(ZoneName.RAW, load_config()).read("bank", "accounts")
    assert raw.height == 240 and raw[POSITION].n_unique() == 240
    assert _curated(["id", "balance"]) == accounts("SELECT id, balance FROM accounts ORDER BY id")


def test_unchanged_toast_values_are_kept_and_truncate_empties_curated(
    pg_server: PgServer, pg_database: str, accounts: Sql, lakegate_home: Path
) -> None:
    accounts("ALTER TABLE accounts ADD COLUMN doc text")
    accounts("ALTER TABLE accounts ALTER COLUMN doc SET STORAGE EXTERNAL")  # stored out of line, unchanged
    big = "".join(random.Random(3).choice("abcdef") for _ in range(20_000))
    accounts("UPDATE accounts SET doc = %s WHERE id <= 3", (big,))
    spec = _spec(pg_server.dsn(pg_database))
    _run(spec, "r1")
    accounts("UPDATE accounts SET balance = -1 WHERE id <= 3")  # doc is not resent
    _run(spec, "r2")
    rows = _curated(["id", "balance", "doc"])[:3]
    assert rows == [(i, -1, big) for i in (1, 2, 3)]
    accounts("TRUNCATE accounts")
    accounts("INSERT INTO accounts (id, owner, balance) VALUES (7, 'again', 7)")
    _run(spec, "r3")
    assert _curated(["id", "owner", "balance"]) == [(7, "again", 7)]


def _slot_exists(server: PgServer, database: str) -> bool:
    with server.admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_replication_slots WHERE database = %s", (database,))
        return bool(cur.fetchone()[0])  # type: ignore[index]


def _fails(spec: PipelineSpec, error: type[CdcError], match: str) -> str:
    with pytest.raises(error, match=match) as caught:
        ingest(spec, run_id="bad")
    line = str(caught.value)
    assert "\n" not in line and PASSWORD not in line and "s3cr%25t" not in line and "s3cr" not in line
    return line


def test_source_problems_are_one_line_and_acknowledge_nothing(
    pg_server: PgServer, pg_database: str, accounts: Sql, lakegate_home: Path
) -> None:
    good = pg_server.dsn(pg_database)
    _fails(
        _spec(f"host=127.0.0.1 port={free_port()} dbname=x user=u password=s3cr3t"),
        SourceUnreachableError,
        "unreachable",
    )
    _fails(
        _spec(pg_server.dsn(pg_database, password="s3cr%wrong")), CredentialsError, "refused the credentials"
    )
    uri = f"postgresql://lakegate:s3cr%25t%2Fwrong@127.0.0.1:{pg_server.port}/{pg_database}"
    _fails(_spec(uri), CredentialsError, "refused the credentials")
    missing = _spec(good).model_copy(deep=True)
    missing.connector.config["table"] = "public.nowhere"
    _fails(missing, SetupError, "does not exist")
    accounts("CREATE TABLE nokey (a int)")
    nokey = _spec(good).model_copy(deep=True)
    nokey.connector.config["table"] = "nokey"
    _fails(nokey, SetupError, "no primary key")
    assert not _slot_exists(pg_server, pg_database), "a failed preflight created a slot"

    _run(_spec(good), "r1")
    confirmed = _confirmed(accounts)
    other = psycopg2.connect(good, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    cur = other.cursor()
    cur.start_replication(
        slot_name="accounts", decode=False, options={"proto_version": "1", "publication_names": "lakegate"}
    )
    try:
        _fails(_spec(good), SlotInUseError, "in use by another consumer")
    finally:
        other.close()
    assert _confirmed(accounts) == confirmed


def test_wal_level_not_logical_is_refused(pg_replica_server: PgServer, lakegate_home: Path) -> None:
    line = _fails(_spec(pg_replica_server.dsn("postgres")), SetupError, "wal_level is 'replica'")
    assert "ALTER SYSTEM SET wal_level = logical" in line


def _check(spec: PipelineSpec, name: str) -> CheckOutcome:
    step = Step.CURATE if name == "reconciliation" else Step.INGEST
    (check,) = [c for c in checks_for(spec, step) if c.name == name]
    return check.evaluate(CheckInput(spec, load_config(), "r", LoadReport(), step))


def test_cdc_health_and_reconciliation_checks(
    pg_server: PgServer, pg_database: str, accounts: Sql, lakegate_home: Path
) -> None:
    spec = _spec(pg_server.dsn(pg_database)).model_copy(
        update={"cdc": CdcSpec(max_slot_lag_bytes=1 << 20, max_retained_wal_bytes=1 << 30)}
    )
    assert not [c for c in checks_for(_spec("x"), Step.INGEST) if c.name == "cdc_slot_health"]
    _run(spec, "r1")
    assert _check(spec, "reconciliation").passed
    _run(spec, "r2")  # acknowledges what r1 committed
    healthy = _check(spec, "cdc_slot_health")
    assert healthy.passed and 0 <= healthy.metadata["slot_lag_bytes"] < 1 << 20, healthy
    accounts("UPDATE accounts SET owner = repeat('x', 200)")  # ~100 kB of WAL nobody acknowledged
    strict = spec.model_copy(update={"cdc": CdcSpec(max_slot_lag_bytes=10_000)})
    lagging = _check(strict, "cdc_slot_health")
    assert not lagging.passed and lagging.failures[0].startswith("slot_lag_bytes")
    accounts("INSERT INTO accounts VALUES (5000, 'new', 1)")
    off = _check(spec, "reconciliation")
    assert not off.passed
    assert off.metadata == {
        "source_rows": 201,
        "curated_rows": 200,
        "sampled_rows": 100,
        "sample_mismatches": 100,
    }
    _run(spec, "r3")
    assert _check(spec, "reconciliation").passed  # counts and the sampled checksums agree again
    accounts("UPDATE accounts SET balance = -balance WHERE id % 2 = 0")  # same count, other values
    changed = _check(spec, "reconciliation")
    assert not changed.passed and changed.metadata["source_rows"] == changed.metadata["curated_rows"]
    expected = accounts("SELECT count(*) FROM accounts WHERE id % 2 = 0")[0][0]
    assert 0 < changed.metadata["sample_mismatches"] <= expected
    assert changed.failures[-1].endswith("sampled rows differ from the source")


def test_two_pipelines_without_named_slots_each_get_their_own(
    pg_server: PgServer, pg_database: str, accounts: Sql, lakegate_home: Path
) -> None:
    """A shared slot would acknowledge one pipeline's changes for the other: the default is per pipeline."""
    accounts("CREATE TABLE ledger (id int PRIMARY KEY, amount bigint)")
    accounts("INSERT INTO ledger SELECT g, g FROM generate_series(1, 50) g")
    dsn = pg_server.dsn(pg_database)

    def spec(name: str, table: str) -> PipelineSpec:
        return PipelineSpec.model_validate(
            {
                "name": name,
                "domain": "bank",
                "pattern": "ELT",
                "primary_key": ["id"],
                "transforms": ["cdc_apply"],
                "connector": {"type": "postgres_cdc", "config": {"dsn": dsn, "table": table}},
            }
        )

    first, second = spec("accounts", "public.accounts"), spec("ledger", "public.ledger")
    for round_ in range(2):
        # Each pipeline's changes land while the other one runs (its first run sets its slot up).
        assert _run(first, f"a{round_}") > 0
        accounts("UPDATE accounts SET balance = balance + 1 WHERE id <= 20")
        assert _run(second, f"l{round_}") > 0
        accounts("UPDATE ledger SET amount = amount * 2 WHERE id <= 10")
    _run(first, "a-last")
    _run(second, "l-last")
    curated = open_zone(ZoneName.CURATED, load_config())
    for name, table, columns in (
        ("accounts", "accounts", "id, owner, balance"),
        ("ledger", "ledger", "id, amount"),
    ):
        source = sorted(accounts(f"SELECT {columns} FROM {table}"))
        frame = curated.read("bank", name).select([c.strip() for c in columns.split(",")]).sort("id")
        assert [tuple(r) for r in frame.iter_rows()] == source, name
    slots = {row[0] for row in accounts("SELECT slot_name FROM pg_replication_slots")}
    assert {"lakegate_bank_accounts", "lakegate_bank_ledger"} <= slots


def test_pipeline_slot_names_are_valid_and_distinct() -> None:
    from connectors.postgres_cdc.config import pipeline_identifier

    long_a, long_b = "d_" + "x" * 80 + "_a", "d_" + "x" * 80 + "_b"
    names = {pipeline_identifier(k) for k in ("sales_orders", "Sales-Orders.v2", long_a, long_b)}
    assert len(names) == 4
    assert all(len(n) <= 63 and n.replace("_", "a").isalnum() and n == n.lower() for n in names)
    assert pipeline_identifier("sales_orders") == "lakegate_sales_orders"
