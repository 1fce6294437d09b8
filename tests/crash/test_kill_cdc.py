"""Guarantee 7 for log-based CDC: a ``postgres_cdc`` run killed anywhere loses and repeats no change.

Three seeded kills 0.1-1 s after the run starts (on an idle machine: start-up, extract, the checks after
ingest)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cdc_input import DSN_VARIABLE, cdc_pipeline, cdc_scenario
from harness import kill_and_recover

from tests.services.postgres import PgServer

pytestmark = pytest.mark.postgres


@pytest.mark.checkout_writes
@pytest.mark.parametrize("seed", [1, 9, 2])
def test_a_killed_cdc_run_loses_and_repeats_no_change(
    pg_server: PgServer,
    pg_database: str,
    lakegate_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
) -> None:
    dsn = pg_server.dsn(pg_database)
    monkeypatch.setenv(DSN_VARIABLE, dsn)
    with cdc_pipeline():
        outcome = kill_and_recover(cdc_scenario(dsn, seed), seed, tmp_path)
    assert outcome.mismatches == [], f"killed in {outcome.phase} after {outcome.delay:.2f} s"
