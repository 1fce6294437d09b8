"""Guarantee 7: a run killed anywhere (SIGKILL, OOM, lost node) never blocks the next one, and the next run
completes the ledger exactly. SIGTERM/SIGINT stop a run within a bound and release what it holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the harness is shared with benchmarks/kill_campaign.py
from harness import LAKEGATE, Expected, kill_and_recover, standard_ledger
from kill_inputs import orders_input, scenarios

from dagster_project import instance as local_instance
from dagster_project.liveness import RunProcess
from zones import PipelineBusyError, load_config

POOL = "lakegate_sales_orders"
# Kills per pipeline in `make test`, at 0.4 x the campaign's input size (a few seconds per recovery).
KILLS = {"orders": (3, 17), "customers": (5, 23), "events": (2, 41)}
SMALL = scenarios(scale=0.4)


@pytest.mark.parametrize(
    ("pipeline", "seed"), [(p, s) for p, seeds in KILLS.items() for s in seeds], ids=lambda v: str(v)
)
def test_a_killed_run_never_blocks_the_next_and_the_ledger_holds(
    lakegate_home: Path, tmp_path: Path, pipeline: str, seed: int
) -> None:
    outcome = kill_and_recover(SMALL[pipeline], seed, tmp_path)
    assert outcome.mismatches == [], f"killed in {outcome.phase} after {outcome.delay:.2f} s"


@dataclass(frozen=True)
class OrdersDemo:
    instance: dg.DagsterInstance
    expected: Expected


def _orders_demo(rows: int) -> Iterator[OrdersDemo]:
    expected = orders_input(rows)
    local_instance.prepare()
    with dg.DagsterInstance.get() as instance:
        yield OrdersDemo(instance, expected)


@pytest.fixture
def orders_demo(lakegate_home: Path) -> Iterator[OrdersDemo]:
    """Demo orders in the landing zone (a run long enough to be signalled mid-load) and the CLI's Dagster
    instance, open in the test."""
    yield from _orders_demo(200_000)


@pytest.fixture
def small_orders_demo(lakegate_home: Path) -> Iterator[OrdersDemo]:
    """As ``orders_demo`` with 2,000 orders, for tests about the pool slot rather than a run's length."""
    yield from _orders_demo(2_000)


def _run_holding_the_pool(instance: dg.DagsterInstance, process: RunProcess) -> str:
    """A started orders run executed by ``process``, holding the orders pool's only slot."""
    run_id = str(uuid.uuid4())
    run = dg.DagsterRun(job_name="sales_orders_job", run_id=run_id, status=dg.DagsterRunStatus.STARTED)
    instance.add_run(run.with_tags(process.tags()))
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(POOL)
    assert storage.claim_concurrency_slot(POOL, run_id, "sales__orders__ingest").is_claimed
    return run_id


def _dead_process() -> RunProcess:
    """A process of this host that has exited (its pid is free or belongs to someone else now)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    child.wait()
    me = RunProcess.current()
    return RunProcess(me.host, me.boot_id, child.pid, start)


def _pool_holders(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return {s.run_id for s in info.claimed_slots} | {p.run_id for p in info.pending_steps}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for(process: subprocess.Popen[str], log: Path, text: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text():
        assert process.poll() is None, f"exited before '{text}': {log.read_text()}"
        assert time.monotonic() < deadline, f"no '{text}' after {seconds} s: {log.read_text()}"
        time.sleep(0.05)


def test_a_dead_runs_slot_is_reclaimed_and_the_run_shows_failed(small_orders_demo: OrdersDemo) -> None:
    orders_demo = small_orders_demo
    dead = _run_holding_the_pool(orders_demo.instance, _dead_process())
    # Without reclaiming, this run waits on the slot forever (the timeout fails the test).
    done = subprocess.run([LAKEGATE, "run", "orders"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"reclaimed run {dead}" in done.stderr
    run = orders_demo.instance.get_run_by_id(dead)
    assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
    assert _pool_holders(orders_demo.instance) == set()


def test_a_run_this_host_cannot_judge_is_waited_for_quietly_and_sigterm_ends_the_wait(
    small_orders_demo: OrdersDemo, tmp_path: Path
) -> None:
    orders_demo = small_orders_demo
    me = RunProcess.current()
    elsewhere = _run_holding_the_pool(
        orders_demo.instance, RunProcess("another-host", me.boot_id, me.pid, me.start)
    )
    log = tmp_path / "waiting.log"
    with log.open("w") as out:
        waiting = subprocess.Popen(
            [LAKEGATE, "run", "orders"], stdout=out, stderr=subprocess.STDOUT, text=True
        )
        _wait_for(waiting, log, f"waiting: pool {POOL} held by run(s) {elsewhere}")
        cpu, since = _cpu_seconds(waiting.pid), time.monotonic()
        time.sleep(6)
        assert _cpu_seconds(waiting.pid) - cpu < 0.5, "a waiting run must sleep, not spin"
        said = log.read_text().count("waiting: pool")
        assert 1 <= said <= 1 + (time.monotonic() - since) // 5 + 1  # at most once every 5 s
        sent = time.monotonic()
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(timeout=10) == 128 + signal.SIGTERM
    assert time.monotonic() - sent < 10
    assert _pool_holders(orders_demo.instance) == {
        elsewhere
    }  # only the run it waited for: it claimed nothing
    run = orders_demo.instance.get_run_by_id(elsewhere)
    assert run is not None and run.status == dg.DagsterRunStatus.STARTED  # not provably dead: left alone


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_a_running_run_within_a_bound_and_releases_it(
    orders_demo: OrdersDemo, tmp_path: Path, signum: int
) -> None:
    log = tmp_path / "stopped.log"
    with log.open("w") as out:
        running = subprocess.Popen(
            [LAKEGATE, "run", "orders"], stdout=out, stderr=subprocess.STDOUT, text=True
        )
        _wait_for(running, log, " committed to raw")  # loading
        sent = time.monotonic()
        running.send_signal(signum)
        assert running.wait(timeout=30) != 0
    assert time.monotonic() - sent < 30
    run_id = log.read_text().split("(run ", 1)[1][:36]
    run = orders_demo.instance.get_run_by_id(run_id)
    assert run is not None and run.status in {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    assert _pool_holders(orders_demo.instance) == set()
    # Slot and lock are free: the next run starts at once and completes the ledger.
    done = subprocess.run([LAKEGATE, "run", "orders"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert standard_ledger(SMALL["orders"], orders_demo.expected) == []


def test_a_second_live_run_fails_at_once(orders_demo: OrdersDemo, tmp_path: Path) -> None:
    log = tmp_path / "first.log"
    with log.open("w") as out:
        first = subprocess.Popen([LAKEGATE, "run", "orders"], stdout=out, stderr=subprocess.STDOUT, text=True)
        _wait_for(first, log, " committed to raw")  # mid-run, in its load step
        first.send_signal(signal.SIGSTOP)  # held there, so it is live however fast it would have ended
        try:
            started = time.monotonic()
            second = subprocess.run([LAKEGATE, "run", "orders"], capture_output=True, text=True, timeout=60)
        finally:
            first.send_signal(signal.SIGCONT)
        assert second.returncode == 2, second.stderr
        assert "lakegate: error: pipeline 'orders' is already running (run " in second.stderr
        assert time.monotonic() - started < 30  # start-up only: it did not wait for the first run
        assert first.wait(timeout=120) == 0


def test_the_kernel_releases_the_pipeline_lock_of_a_killed_process(lakegate_home: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import time
                from zones import DatasetSpec, LoadReport, LoadTarget, ZoneName, load_config
                from zones import lakegate_pipeline
                target = LoadTarget(DatasetSpec(domain="d", name="t"), ZoneName.RAW, "t", "r1", load_config())
                with lakegate_pipeline("lakegate_d_t_ingest", target, LoadReport()):
                    print("locked", flush=True)
                    time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    from zones import DatasetSpec, LoadReport, LoadTarget, ZoneName, lakegate_pipeline

    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    target = LoadTarget(DatasetSpec(domain="d", name="t"), ZoneName.RAW, "t", "r2", load_config())
    with (
        pytest.raises(PipelineBusyError, match="already running"),
        lakegate_pipeline("lakegate_d_t_ingest", target, LoadReport()),
    ):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    with lakegate_pipeline("lakegate_d_t_ingest", target, LoadReport()):
        pass  # no stale lock: flock dies with its process
