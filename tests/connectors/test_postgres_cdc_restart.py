"""The source PostgreSQL stopped (immediate shutdown) while ``lakegate run`` streams its changes, and
started again: the run fails with one line or goes on, nothing is acknowledged that is not committed,
and the next run completes the ledger exactly (every change once in raw, curated equal to the table)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest

from tests.services.postgres import PASSWORD, ROLE, PgServer, _run_as_postgres, running_postgres

sys.path.insert(0, str(Path(__file__).parents[1] / "crash"))
from cdc_input import DSN_VARIABLE, cdc_ledger, cdc_pipeline, cdc_scenario
from harness import LAKEGATE, RUN_STARTED, Expected, wait_for_output

pytestmark = pytest.mark.postgres

BULK = 200_000  # changes in one transaction: a read of about a second, for the outage to land in
SLOT = "kill_accounts"


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of this test's own: it is stopped and started again under the run."""
    with running_postgres() as server:
        yield server


def _database(server: PgServer) -> str:
    with closing(server.admin()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE accounts OWNER {ROLE}")
    return "accounts"


def _slot_streaming(server: PgServer) -> bool:
    with closing(server.admin()) as conn, conn.cursor() as cur:
        cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (SLOT,))
        row = cur.fetchone()
        return bool(row and row[0])


def _outage(server: PgServer, seconds: float) -> None:
    """Stop the server at once (as a crash would), wait ``seconds``, start it with its own options."""
    with closing(server.admin()) as conn, conn.cursor() as cur:
        cur.execute("SHOW data_directory")
        row = cur.fetchone()
        assert row is not None
        data = Path(str(row[0]))
    options = shlex.split((data / "postmaster.opts").read_text())[1:]  # the command line it started with
    stopped = _run_as_postgres("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
    assert stopped.returncode == 0, stopped.stderr
    time.sleep(seconds)
    started = _run_as_postgres(
        "pg_ctl", "-D", str(data), "-l", str(data.parent / "log"), "-o", shlex.join(options), "-w", "start"
    )
    assert started.returncode == 0, started.stderr


@pytest.mark.checkout_writes
@pytest.mark.parametrize("down_seconds", [0.5, 6.0], ids=["back-at-once", "down-for-a-while"])
def test_a_source_restart_mid_read_loses_and_repeats_no_change(
    own_server: PgServer,
    lakegate_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    down_seconds: float,
) -> None:
    dsn = own_server.dsn(_database(own_server))
    monkeypatch.setenv(DSN_VARIABLE, dsn)
    scenario = cdc_scenario(dsn, seed=5, rows=500, changes=300)
    with cdc_pipeline():
        before = scenario.write_input()  # the snapshot, replicated; then a few hundred mixed changes
        with closing(psycopg2.connect(dsn)) as conn, conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO accounts SELECT g, 'bulk ' || g, g FROM generate_series(1, %s) g "
                "ON CONFLICT DO NOTHING",
                (BULK,),
            )
            added = cur.rowcount
        expected = Expected(input_rows=before.input_rows + added)

        log = tmp_path / "interrupted.log"
        with log.open("w") as out:
            run = subprocess.Popen([LAKEGATE, "run", scenario.pipeline], stdout=out, stderr=subprocess.STDOUT)
            assert wait_for_output(run, log, RUN_STARTED, 90), log.read_text()
            deadline = time.monotonic() + 60
            while not _slot_streaming(own_server) and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert run.poll() is None, "the run ended before it streamed: the outage missed the read"
            _outage(own_server, down_seconds)
            status = run.wait(timeout=180)
        output = log.read_text()
        assert "Traceback" not in output, output
        assert PASSWORD not in output and "s3cr%25t" not in output, "the DSN's password was echoed"
        if status != 0:  # failed cleanly: one line naming the pipeline and the cause
            assert "lakegate: error: pipeline 'kill_accounts' failed" in output, output[-3000:]
            assert "the server closed the connection while streaming" in output, output[-3000:]

        recovery = subprocess.run(
            [LAKEGATE, "run", scenario.pipeline], capture_output=True, text=True, timeout=180
        )
        assert recovery.returncode == 0, recovery.stdout[-2000:] + recovery.stderr[-2000:]
        assert cdc_ledger(scenario, expected, dsn) == []
