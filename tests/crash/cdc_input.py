"""The kill harness on ``postgres_cdc``: a PostgreSQL table whose few thousand mixed changes a killed
``lakegate run`` may have half-loaded; a clean run must then hold every change once and curated must
equal the table.

The pipeline is a ``defs.yaml`` written into ``dagster_project/defs`` for the test (removed afterwards);
its DSN is ``{env: KILL_CDC_DSN}``.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path

import polars as pl
import psycopg2
from harness import Expected, Scenario, audit_matches_history

from dagster_project.cli import DEFS_FOLDER
from lakegate.columns import POSITION
from pipelines import curate, ingest, load_spec
from tests.conftest import require_checkout_writes
from zones import ZoneName, open_zone

DSN_VARIABLE = "KILL_CDC_DSN"
FOLDER = "zz_kill_accounts"
COLUMNS = ["id", "owner", "balance"]
DEFS = """\
type: dagster_project.components.IngestionPipeline
attributes:
  name: kill_accounts
  domain: bank
  description: Accounts replicated from PostgreSQL by log-based CDC (kill -9 harness).
  connector:
    type: postgres_cdc
    config: {dsn: {env: KILL_CDC_DSN}, table: public.accounts, slot: kill_accounts}
  pattern: ELT
  primary_key: [id]
  transforms: [cdc_apply]
"""


@contextmanager
def cdc_pipeline() -> Iterator[Path]:
    """The ``kill_accounts`` pipeline folder in the shipped project for the duration of the block."""
    require_checkout_writes()
    folder = DEFS_FOLDER / FOLDER
    folder.mkdir()
    (folder / "defs.yaml").write_text(DEFS)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def _execute(dsn: str, statements: list[str]) -> int:
    """Run ``statements`` in one transaction; returns the rows they changed."""
    with closing(psycopg2.connect(dsn)) as conn, conn, conn.cursor() as cur:
        changed = 0
        for statement in statements:
            cur.execute(statement)
            changed += max(cur.rowcount, 0)
        return changed


def mixed_changes(dsn: str, count: int, seed: int) -> int:
    """``count`` random single-row inserts, updates and deletes in transactions of 1-20 statements;
    returns the rows changed (each one change in the WAL)."""
    rng = random.Random(seed)
    next_id = 1_000_000
    changed = 0
    statements: list[str] = []
    for _ in range(count):
        pick = rng.random()
        pick_one = f"(SELECT id FROM accounts ORDER BY md5(id::text || '{rng.random()}') LIMIT 1)"
        if pick < 0.4:
            next_id += 1
            statements.append(f"INSERT INTO accounts VALUES ({next_id}, 'o{next_id}', {rng.randint(0, 99)})")
        elif pick < 0.8:
            statements.append(
                f"UPDATE accounts SET balance = balance + {rng.randint(1, 99)} WHERE id = {pick_one}"
            )
        else:
            statements.append(f"DELETE FROM accounts WHERE id = {pick_one}")
        if len(statements) >= rng.randint(1, 20):
            changed += _execute(dsn, statements)
            statements = []
    return changed + (_execute(dsn, statements) if statements else 0)


def accounts_input(dsn: str, rows: int, changes: int, seed: int) -> Expected:
    """A table of ``rows`` accounts, replicated once by a clean in-process run (its snapshot), then
    ``changes`` mixed changes for the killed run to stream. Expected: one raw row per snapshot row and
    change."""
    _execute(dsn, ["CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance bigint)"])
    _execute(dsn, [f"INSERT INTO accounts SELECT g, 'owner ' || g, g FROM generate_series(1, {rows}) g"])
    spec = load_spec(DEFS_FOLDER / FOLDER / "defs.yaml")
    ingest(spec, run_id="snapshot")
    curate(spec, run_id="snapshot")
    return Expected(input_rows=rows + mixed_changes(dsn, changes, seed))


def cdc_ledger(scenario: Scenario, expected: Expected, dsn: str) -> list[str]:
    """Every change in raw exactly once (count and distinct positions), curated equal to the source table,
    and the audit log matching each table's Delta history."""
    problems = []
    raw = open_zone(ZoneName.RAW).read(scenario.domain, scenario.dataset)
    if raw.height != expected.input_rows:
        problems.append(f"raw holds {raw.height} changes, the source made {expected.input_rows}")
    if raw[POSITION].n_unique() != raw.height:
        problems.append(f"{raw.height - raw[POSITION].n_unique()} positions landed twice in raw")
    with closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(COLUMNS)} FROM accounts ORDER BY id")
        source = pl.DataFrame(cur.fetchall(), schema=COLUMNS, orient="row")
    curated = open_zone(ZoneName.CURATED).read(scenario.domain, scenario.dataset).select(COLUMNS).sort("id")
    if not curated.equals(source.cast(dict(curated.schema))):
        differ = curated.join(source.cast(dict(curated.schema)), on=COLUMNS, how="anti").height
        problems.append(
            f"curated ({curated.height} rows) differs from the source ({source.height}): {differ}"
        )
    return problems + audit_matches_history(scenario)


def cdc_scenario(dsn: str, seed: int, rows: int = 500, changes: int = 3_000) -> Scenario:
    """``kill_accounts`` over a fresh database named by ``dsn`` (set as ``KILL_CDC_DSN`` by the caller)."""
    return Scenario(
        pipeline="kill_accounts",
        domain="bank",
        dataset="kill_accounts",
        pattern="ELT",
        key=("id",),
        write_input=partial(accounts_input, dsn, rows, changes, seed),
        kill_window=(0.1, 1.0),
        ledger=partial(cdc_ledger, dsn=dsn),
    )
