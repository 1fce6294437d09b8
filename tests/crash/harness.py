"""A kill -9 harness for any pipeline: start ``lakegate run``, SIGKILL it at a seeded random moment, run
again to completion, and check the ledger.

Everything specific to a connector kind is pluggable through :class:`Scenario`: the pipeline to run,
the input it is given (``write_input`` drops it into the sources and says what a complete run must hold)
and the ledger (``ledger`` returns the mismatches). The standard ledger fits batch pipelines of every
pattern; replication and streaming connectors bring their own inputs (a database, a topic) and can reuse
or extend it.

The harness runs against the zones and the Dagster instance named by ``LAKEGATE_HOME`` and
``DAGSTER_HOME`` in ``os.environ`` (the caller isolates them); the runs are subprocesses.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import polars as pl

from lakegate.columns import POSITION, RULE, SOURCE
from zones import ZoneName, load_config, open_zone, read_audit

LAKEGATE = str(Path(sys.executable).with_name("lakegate"))

# What a killed run had reached, in order; the harness reports the last one it saw.
RUN_STARTED = re.compile(r"running \S+ \(run ([0-9a-f-]{36})\)")
PHASES = ("startup", "extract", "load", "ingest checks", "curate", "curate checks", "finished")


@dataclass(frozen=True)
class Expected:
    """What a complete run over the input must leave in the zones.

    Attributes:
        input_rows: Records in the input (every one must end up committed or quarantined, once).
        latest: One row per key with the columns that identify its latest version, for pipelines that
            keep a curated table; ``None`` when there is none.
    """

    input_rows: int
    latest: pl.DataFrame | None = None


@dataclass(frozen=True)
class Scenario:
    """A pipeline under test, its input and its ledger.

    Attributes:
        pipeline: Argument of ``lakegate run``.
        domain: Dataset domain.
        dataset: Dataset name.
        pattern: ``EL``, ``ELT`` or ``ETL`` (decides where committed rows live).
        key: Primary key columns.
        write_input: Drops the input into the sources; returns what a complete run must hold.
        kill_window: Seconds after the run starts (after the CLI's start-up) between which the kill
            lands; spread it over every phase.
        timeout: Seconds a recovery run may take (its normal time plus a margin).
        ledger: Returns the ledger mismatches (default :func:`standard_ledger`).
    """

    pipeline: str
    domain: str
    dataset: str
    pattern: str
    key: tuple[str, ...]
    write_input: Callable[[], Expected]
    kill_window: tuple[float, float]
    timeout: float = 120.0
    ledger: Callable[[Scenario, Expected], list[str]] = field(default=lambda s, e: standard_ledger(s, e))

    @property
    def pool(self) -> str:
        return f"lakegate_{self.domain}_{self.dataset}"


@dataclass(frozen=True)
class Outcome:
    """One kill and its recovery."""

    seed: int
    delay: float
    phase: str
    killed_run: str | None
    recovery_seconds: float
    mismatches: list[str]


def kill_and_recover(scenario: Scenario, seed: int, logs: Path) -> Outcome:
    """Write the input, SIGKILL a run at a seeded moment, run again, and check the ledger."""
    expected = scenario.write_input()
    delay = random.Random(seed).uniform(*scenario.kill_window)
    killed_log = logs / f"{scenario.pipeline}-{seed}-killed.log"
    with killed_log.open("w") as out:
        victim = subprocess.Popen([LAKEGATE, "run", scenario.pipeline], stdout=out, stderr=subprocess.STDOUT)
        # The delay counts from the run's start: the CLI's start-up time varies with the machine's load,
        # and counting from the launch would put most kills into it.
        started = wait_for_output(victim, killed_log, RUN_STARTED, scenario.timeout)
        try:
            victim.wait(timeout=delay if started else 0)
        except subprocess.TimeoutExpired:
            victim.send_signal(signal.SIGKILL)
            victim.wait()
    killed_run, phase = phase_reached(killed_log.read_text())
    start = time.monotonic()
    recovery_log = logs / f"{scenario.pipeline}-{seed}-recovery.log"
    mismatches: list[str] = []
    with recovery_log.open("w") as out:
        try:
            status = subprocess.run(
                [LAKEGATE, "run", scenario.pipeline],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=scenario.timeout,
            ).returncode
        except subprocess.TimeoutExpired:  # subprocess.run has killed it
            status = None
    seconds = time.monotonic() - start
    if status != 0:
        tail = " | ".join(recovery_log.read_text().splitlines()[-3:])
        what = f"timed out after {scenario.timeout:.0f} s" if status is None else f"exit status {status}"
        mismatches.append(f"recovery run {what}: {tail}")
    else:
        mismatches += scenario.ledger(scenario, expected)
    mismatches += leftovers(scenario, killed_run, phase)
    return Outcome(seed, delay, phase, killed_run, seconds, mismatches)


def wait_for_output(
    process: subprocess.Popen[bytes], log: Path, pattern: re.Pattern[str], timeout: float
) -> bool:
    """Wait until ``pattern`` appears in ``log``; ``False`` when the process ended or time ran out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if pattern.search(log.read_text()):
            return True
        time.sleep(0.05)
    return False


def phase_reached(killed_output: str) -> tuple[str | None, str]:
    """The killed run's id and the last phase it reached, from its output and its Dagster event log."""
    found = RUN_STARTED.search(killed_output)
    if found is None:
        return None, PHASES[0]
    run_id = found.group(1)
    with dg.DagsterInstance.get() as instance:
        events = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event is not None]
    started = {e.step_key or "" for e in events if e.event_type == dg.DagsterEventType.STEP_START}
    materialized = {
        e.step_key or "" for e in events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }
    if any(e.event_type == dg.DagsterEventType.RUN_SUCCESS for e in events):
        return run_id, "finished"
    curate = {k for k in started if k.endswith("__curated")}
    if curate:
        return run_id, "curate checks" if curate & materialized else "curate"
    if any(k.endswith("__ingest") for k in materialized):
        return run_id, "ingest checks"
    if " committed to " in killed_output:
        return run_id, "load"
    return run_id, "extract" if started else "startup"


def leftovers(scenario: Scenario, killed_run: str | None, phase: str) -> list[str]:
    """Slots, pending claims or locks still held, and a killed run not marked failed."""
    problems: list[str] = []
    with dg.DagsterInstance.get() as instance:
        info = instance.event_log_storage.get_concurrency_info(scenario.pool)
        if info.claimed_slots or info.pending_steps:
            problems.append(f"pool {scenario.pool} still held: {info.claimed_slots} {info.pending_steps}")
        run = instance.get_run_by_id(killed_run) if killed_run else None
        if run is not None and phase != "finished" and run.status != dg.DagsterRunStatus.FAILURE:
            problems.append(f"killed run {killed_run} is {run.status.value}, not FAILURE")
    for lock in (Path(os.environ["LAKEGATE_HOME"]) / "dlt").glob("*.lock"):
        with lock.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                problems.append(f"lock {lock} still held")
    return problems


def standard_ledger(scenario: Scenario, expected: Expected) -> list[str]:
    """The ledger of a batch pipeline after a complete run.

    - input records = committed + ingest-quarantined, exactly (raw for EL/ELT, curated for ETL);
    - no source position twice in raw (nor twice among ETL's curated and quarantine rows);
    - curated holds one row per key, each the latest version;
    - each zone's audit log names every Delta version of the pipeline's tables once.
    """
    config = load_config()
    etl = scenario.pattern == "ETL"
    data = open_zone(ZoneName.CURATED if etl else ZoneName.RAW, config).read(
        scenario.domain, scenario.dataset
    )
    quarantine = open_zone(ZoneName.QUARANTINE, config).read(scenario.domain, scenario.dataset)
    if scenario.pattern == "ELT" and quarantine.height:  # the curate step's rejects come from raw rows
        quarantine = quarantine.filter(~pl.col(RULE).str.starts_with("transform:"))
    problems = []
    if data.height + quarantine.height != expected.input_rows:
        problems.append(
            f"input {expected.input_rows} != committed {data.height} + quarantined {quarantine.height}"
        )
    # Raw is append-only, so a replayed load would show as a position committed twice. ETL merges by key:
    # a replay there would quarantine a row whose twin was committed, so both tables are checked together.
    holders = (data, quarantine) if etl else (data,)
    frames = [f.select(SOURCE, POSITION) for f in holders if f.height]
    positions = pl.concat(frames) if frames else pl.DataFrame()
    repeated = positions.filter(positions.is_duplicated()) if positions.height else positions
    if repeated.height:
        problems.append(f"{repeated.height} rows share a (source, position), e.g. {repeated.row(0)}")
    if expected.latest is not None:
        problems += _latest_per_key(scenario, expected.latest)
    problems += audit_matches_history(scenario)
    return problems


def _latest_per_key(scenario: Scenario, latest: pl.DataFrame) -> list[str]:
    curated = open_zone(ZoneName.CURATED).read(scenario.domain, scenario.dataset)
    if not curated.height:
        return ["curated is empty"]
    keys = list(scenario.key)
    if curated.select(keys).is_duplicated().any():
        return ["curated holds a key more than once"]
    got = curated.select(latest.columns).sort(keys)
    if not got.equals(latest.sort(keys)):
        wrong = got.join(latest, on=latest.columns, how="anti")
        return [f"curated differs from the latest version per key in {max(wrong.height, 1)} row(s)"]
    return []


def audit_matches_history(scenario: Scenario) -> list[str]:
    """Every Delta version of the pipeline's tables has exactly one audit record, and vice versa."""
    problems = []
    for name in ZoneName:
        if name is ZoneName.LANDING:
            continue
        zone = open_zone(name)
        table = zone.delta_table(scenario.domain, scenario.dataset)
        if table is None:
            continue
        versions = sorted(int(h["version"]) for h in table.history())
        audit = read_audit(zone)
        uri = zone.table_uri(scenario.domain, scenario.dataset)
        audited = sorted(audit.filter(pl.col("table") == uri)["version"].to_list()) if audit.height else []
        if audited != versions:
            problems.append(f"{name.value}: Delta versions {versions} but audited versions {audited}")
    return problems
