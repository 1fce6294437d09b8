"""Curate benchmark: raw -> curated (dedupe by key, merged) with lakegate versus bare polars.

Usage::

    .venv/bin/python benchmarks/curate.py                # 5M raw rows (10% updates of existing keys)
    .venv/bin/python benchmarks/curate.py --rows 500000  # quick run

The raw zone table is written once under ``--dir`` (default ``$LAKEGATE_HOME/bench``): the 12 columns of
``benchmarks/batch_files.py`` plus raw's lineage columns, in 5 loads; 90% of the rows are new ids, the last
10% update ids committed earlier (random, across loads). Each path runs in its own child process, so its
peak RSS (``ru_maxrss``, imports included) is its own:

- ``lakegate``: ``pipelines.curate`` of an ELT spec with ``transforms: [dedupe_latest]`` (raw read in
  batches, transformed, merged into curated by key in bounded memory, superseded rows quarantined). It
  checks that curated holds one row per id, the latest. Then it times the curate step's checks on the
  result (the default quality suite), and the checks of a 1,000-row run onto the 5M-row curated table and
  onto an empty one.
- ``bare``: ``pl.read_delta(raw)`` sorted by load and position, ``unique(keep="last")`` by id,
  ``write_delta``.

Prints both times (and CPU seconds, all threads), lakegate's peak RSS, the check figures, the load average
at start and end, and last ``ratio: X.XX`` (bare s / lakegate s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from batch_files import SCHEMA, _chunk  # the same 12 columns as the batch benchmark

DEFAULT_ROWS = 5_000_000
LOADS = 5
UPDATE_SHARE = 0.10
SMALL_RUN_ROWS = 1_000
SEED = 20_241_130


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _RssSampler(threading.Thread):
    """This process's RSS every 20 ms, to attribute the peak to a dlt step."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self._done = threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._done.wait(0.02):
            with open("/proc/self/statm") as statm:
                self.samples.append((time.time(), int(statm.read().split()[1]) * page))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def peak(self, start: float, end: float) -> int:
        return max((rss for at, rss in self.samples if start <= at <= end), default=0)


def _isolated_env(home: Path) -> None:
    os.environ["LAKEGATE_HOME"] = str(home)
    for name in list(os.environ):
        if name == "LAKEGATE_CONFIG" or (name.startswith("LAKEGATE_ZONE_") and name.endswith("_URL")):
            del os.environ[name]
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.chdir(home.parent)


def _spec() -> Any:
    from pipelines import PipelineSpec

    return PipelineSpec.model_validate(
        {
            "name": "orders",
            "domain": "bench",
            "pattern": "ELT",
            "connector": {"type": "files", "config": {"url": "file:///nowhere/*.csv"}},
            "primary_key": ["id"],
            "transforms": ["dedupe_latest"],
            "columns": {name: {"type": type_name} for name, type_name in SCHEMA.items()},
        }
    )


def append_raw(home: Path, frame: pl.DataFrame, load: int, first_position: int) -> None:
    """Commit ``frame`` to the bench raw table as one load, stamped and committed as the zone destination
    commits a load (so the table is configured as lakegate's raw tables are: a checkpoint every 10
    commits)."""
    from lakegate import columns as col
    from zones import ZoneName, load_config, open_zone
    from zones._delta import append

    _isolated_env(home)
    now = datetime.now(UTC)
    stamped = frame.with_columns(
        pl.col("created_at").dt.replace_time_zone("UTC"),  # as the declared type "datetime" commits it
        pl.lit("bench.csv").alias(col.SOURCE),
        pl.int_range(first_position, first_position + frame.height, dtype=pl.Int64).alias(col.POSITION),
        pl.lit(f"{1_700_000_000 + load}.000001").alias(col.LOAD_ID),
        pl.lit("bench-raw").alias(col.RUN_ID),
        pl.lit(now, pl.Datetime("us", "UTC")).alias(col.INGESTED_AT),
        pl.lit(now.date()).alias(col.INGEST_DATE),
    )
    uri = open_zone(ZoneName.RAW, load_config()).table_uri("bench", "orders")
    append(uri, stamped.to_arrow(), {}, [])


def prepare(home: Path, rows: int) -> None:
    """Raw with ``rows`` rows in ``LOADS`` loads: new ids, then updates of ids committed earlier."""
    fresh = rows - int(rows * UPDATE_SHARE)
    rng = np.random.default_rng(SEED)
    per_load = -(-rows // LOADS)
    position = 0
    for load in range(LOADS):
        first, last = load * per_load, min(rows, (load + 1) * per_load)
        frame = _chunk(np.random.default_rng(SEED + load), first + 1, last - first)
        ids = np.arange(first + 1, last + 1, dtype=np.int64)
        updates = ids > fresh
        ids[updates] = rng.integers(1, fresh + 1, int(updates.sum()))  # an id committed before
        append_raw(home, frame.with_columns(pl.Series("id", ids)), load, position)
        position += last - first
    print(
        f"prepared raw: {rows:,} rows in {LOADS} loads ({rows - fresh:,} updates of existing ids)", flush=True
    )


def expected_latest(raw_uri: str) -> pl.LazyFrame:
    from lakegate import columns as col

    return (
        pl.scan_delta(raw_uri)
        .sort(col.LOAD_ID, col.POSITION, maintain_order=True)
        .unique(subset=["id"], keep="last", maintain_order=True)
    )


def run_bare(home: Path) -> dict[str, Any]:
    from lakegate import columns as col
    from zones import ZoneName, load_config, open_zone

    _isolated_env(home)
    raw_uri = open_zone(ZoneName.RAW, load_config()).table_uri("bench", "orders")
    out = home.parent / "bare_curated"
    shutil.rmtree(out, ignore_errors=True)
    started, cpu = time.perf_counter(), time.process_time()
    frame = expected_latest(raw_uri).drop(col.LINEAGE_COLUMNS).collect()
    frame.write_delta(str(out))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "rows": frame.height, "peak_rss": _peak_rss()}


def _raw_report(rows: int) -> Any:
    from zones import LoadReport

    return LoadReport(input_rows=rows, committed_rows=rows)


def _checks_seconds(spec: Any, run_id: str, report: Any, step: Any = None) -> tuple[float, dict[str, Any]]:
    """Seconds of the step's checks (all of them: the default suite and the rest)."""
    from pipelines import CheckInput, Step, checks_for
    from zones import load_config

    step = step or Step.CURATE
    given = CheckInput(spec=spec, config=load_config(), run_id=run_id, report=report, step=step)
    # (The standard suite runs without Great Expectations; importing it here only to time it apart
    # would leave ~1M objects for the garbage collector to rescan in the small runs that follow.)
    started = time.perf_counter()
    outcomes = {check.name: check.evaluate(given) for check in checks_for(spec, step)}
    seconds = time.perf_counter() - started
    return seconds, {name: {"passed": o.passed, **o.metadata} for name, o in outcomes.items()}


def run_lakegate(home: Path, rows: int) -> dict[str, Any]:
    import pipelines
    from lakegate import columns as col
    from pipelines import Step
    from zones import ZoneName, load_config, open_zone

    _isolated_env(home)
    spec = _spec()
    config = load_config()
    sampler = _RssSampler()
    sampler.start()
    started, cpu = time.perf_counter(), time.process_time()
    result = pipelines.curate(spec, run_id="bench", config=config, pipelines_dir=home.parent / "dlt")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    sampler.stop()
    peak = _peak_rss()
    steps = {
        name: f"{end - start:.1f} s, peak {sampler.peak(start, end) / 1e9:.2f} GB"
        for name, (start, end) in result.report.steps.items()
    }
    print(f"lakegate: dlt steps: {steps}", flush=True)
    report = result.report
    curated = open_zone(ZoneName.CURATED, config).table_uri("bench", "orders")
    raw = open_zone(ZoneName.RAW, config).table_uri("bench", "orders")
    got = pl.scan_delta(curated).select(pl.exclude(col.LINEAGE_COLUMNS))
    want = expected_latest(raw).select(pl.exclude(col.LINEAGE_COLUMNS, col.SOURCE, col.POSITION))
    columns = want.collect_schema().names()
    differ = (
        got.select(columns)
        .join(want, on=columns, how="anti", nulls_equal=True)
        .select(pl.len())
        .collect()
        .item()
    )
    held = got.select(pl.len(), pl.col("id").n_unique().alias("ids")).collect().row(0, named=True)
    expected_rows = want.select(pl.len()).collect().item()
    ok = (
        report.input_rows == rows
        and report.input_rows == report.committed_rows + report.quarantined_rows
        and held["len"] == held["ids"] == expected_rows
        and differ == 0
    )
    print(
        f"lakegate: {report.summary()}; curated holds {held['len']:,} rows, {held['ids']:,} ids "
        f"(expected {expected_rows:,}), {differ} differ from the latest raw row: {'OK' if ok else 'FAILED'}",
        flush=True,
    )
    checks, outcome = _checks_seconds(spec, "bench", report)
    raw_checks, raw_outcome = _checks_seconds(spec, "bench-raw", _raw_report(rows), Step.INGEST)
    small_onto_big = _small_run(home, spec, "new-onto-5m", rows, updates=False)
    updates_onto_big = _small_run(home, spec, "updates-onto-5m", rows + SMALL_RUN_ROWS, updates=True)
    return {
        "seconds": seconds,
        "cpu": cpu,
        "peak_rss": peak,
        "ok": ok,
        "checks_seconds": checks,
        "checks": outcome,
        "raw_checks_seconds": raw_checks,
        "raw_checks": raw_outcome,
        "small_onto_big": small_onto_big,
        "updates_onto_big": updates_onto_big,
    }


def _small_run(home: Path, spec: Any, run_id: str, first_position: int, *, updates: bool) -> dict[str, float]:
    """Append a 1,000-row load to raw (new ids, or half of them updates of ids 1..500), curate it, time
    the run and its checks (fastest of 3 evaluations: they are short and the machine is shared)."""
    import pipelines
    from zones import load_config

    frame = _chunk(np.random.default_rng(SEED - 1), 10**9 + first_position, SMALL_RUN_ROWS)
    ids = frame["id"].to_numpy().copy()
    if updates:
        ids[: SMALL_RUN_ROWS // 2] = np.arange(1, SMALL_RUN_ROWS // 2 + 1)
    append_raw(home, frame.with_columns(pl.Series("id", ids)), LOADS + 1 + first_position, first_position)
    started = time.perf_counter()
    result = pipelines.curate(spec, run_id=run_id, config=load_config(), pipelines_dir=home.parent / "dlt")
    run = time.perf_counter() - started
    timed = [_checks_seconds(spec, run_id, result.report) for _ in range(3)]
    return {
        "run_seconds": run,
        "checks_seconds": min(seconds for seconds, _ in timed),
        "passed": all(o["passed"] for o in timed[0][1].values()),
    }


def run_small_on_empty(home: Path) -> dict[str, Any]:
    _isolated_env(home)
    return _small_run(home, _spec(), "small-onto-empty", 0, updates=False)


def _child(what: str, home: Path, rows: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    command = [sys.executable, __file__, "--run", what, "--home", str(home), "--rows", str(rows)]
    done = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.strip().splitlines()
    print("\n".join(lines[:-1]), flush=True)
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--run", choices=["prepare", "lakegate", "bare", "small"], help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        runs = {
            "prepare": lambda: prepare(args.home, args.rows) or {},
            "lakegate": lambda: run_lakegate(args.home, args.rows),
            "bare": lambda: run_bare(args.home),
            "small": lambda: run_small_on_empty(args.home),
        }
        print(json.dumps(runs[args.run]()), flush=True)
        return
    base = (args.dir or Path(os.environ.get("LAKEGATE_HOME", ".lakegate")) / "bench").resolve()
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="curate-bench-", dir=base))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    try:
        home, empty = work / "big" / "home", work / "empty" / "home"
        home.mkdir(parents=True)
        empty.mkdir(parents=True)
        _child("prepare", home, args.rows)
        bare = _child("bare", home, args.rows)
        lakegate = _child("lakegate", home, args.rows)
        small_empty = _child("small", empty, args.rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    big = lakegate["small_onto_big"]
    print(
        f"bare polars read + dedupe + write_delta: {bare['seconds']:.2f} s ({bare['cpu']:.1f} CPU s), "
        f"peak RSS {bare['peak_rss'] / 1e9:.2f} GB"
    )
    print(
        f"lakegate curate: {lakegate['seconds']:.2f} s ({lakegate['cpu']:.1f} CPU s), "
        f"peak RSS {lakegate['peak_rss'] / 1e9:.2f} GB"
    )
    print(
        f"curate checks on the {args.rows:,}-row backfill: {lakegate['checks_seconds']:.2f} s "
        f"({lakegate['checks_seconds'] / lakegate['seconds']:.0%} of the curate run); {lakegate['checks']}"
    )
    print(
        f"ingest checks on the {args.rows:,} raw rows of one run: {lakegate['raw_checks_seconds']:.2f} s; "
        f"{lakegate['raw_checks']}"
    )
    updates = lakegate["updates_onto_big"]
    print(
        f"{SMALL_RUN_ROWS:,} new rows onto the {args.rows:,}-row curated table: "
        f"run {big['run_seconds']:.2f} s, "
        f"checks {big['checks_seconds']:.3f} s; onto an empty one: run {small_empty['run_seconds']:.2f} s, "
        f"checks {small_empty['checks_seconds']:.3f} s "
        f"(checks {big['checks_seconds'] / small_empty['checks_seconds']:.2f}x)"
    )
    print(
        f"{SMALL_RUN_ROWS:,} rows, half of them updates, onto the {args.rows:,}-row curated table: "
        f"run {updates['run_seconds']:.2f} s, checks {updates['checks_seconds']:.3f} s "
        f"(checks {updates['checks_seconds'] / small_empty['checks_seconds']:.2f}x the empty table's)"
    )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"correctness: {'OK' if lakegate['ok'] else 'FAILED'}")
    print(f"ratio: {bare['seconds'] / lakegate['seconds']:.2f}")


if __name__ == "__main__":
    main()
