"""Small-run curate benchmark: a 1,000-row curate onto a 5M-row curated table versus onto an empty one.

Usage::

    .venv/bin/python benchmarks/curate_small.py                # onto 5M raw rows (4.5M curated)
    .venv/bin/python benchmarks/curate_small.py --rows 500000  # quick run

The big table is the backfill of ``benchmarks/curate.py`` (5M raw rows, 10% updates, curated by
``pipelines.curate``). Then each round appends one 1,000-row load to raw per case and times the whole
``pipelines.curate`` step and, apart, its checks (the standard suite, evaluated without Great
Expectations). Every small run is its own process, as a scheduled run is (``lakegate run``, a Dagster run
worker): only the curate call is timed, so each side pays the same first-use costs and none carries a
backfill's heap:

- ``new``: 1,000 new ids;
- ``mostly new``: 900 new ids, 100 updates of ids 1-100;
- ``half updates``: 500 new ids, 500 updates of ids 1-500;
- ``all updates, clustered``: ids 1,001-2,000 (one key range);
- ``all updates, random``: 1,000 ids drawn over the whole table.

Onto an empty table: the ``new`` load curated into an empty curated table (a fresh zone each round,
between the big table's rounds). An update cannot be measured onto an empty table (it has no keys), so the
update cases also run onto a small table (``--small-table-rows``, 50,000 raw rows by default) that holds
the same keys: the big table's time against the small one's shows whether an update's cost follows the
table or the batch. Each figure is the median of ``--rounds`` rounds (5: identical small runs vary by
±30 ms, and the slowest of four cases' medians is the ratio's numerator): a round runs after the random
updates of the round before rewrote the whole table, so the median includes what a merge leaves for the
next one. Prints one line per case and
last ``ratio: X.XX`` = the slowest non-random case onto the big table / the run onto the empty one; the
line before it, ``updates onto the big table / onto the small table``, the slowest non-random update case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from batch_files import _chunk
from curate import (
    DEFAULT_ROWS,
    LOADS,
    SEED,
    UPDATE_SHARE,
    _checks_seconds,
    _isolated_env,
    _spec,
    append_raw,
    prepare,
)

SMALL_ROWS = 1_000
CASES = ["new", "mostly new", "half updates", "all updates, clustered", "all updates, random"]
UPDATE_CASES = ["mostly new", "half updates", "all updates, clustered"]
SMALL_TABLE_ROWS = 50_000


def _ids(case: str, first_new: int, curated_ids: int, rng: np.random.Generator) -> np.ndarray:
    ids = np.arange(first_new, first_new + SMALL_ROWS, dtype=np.int64)
    updates = {"new": 0, "mostly new": 100, "half updates": 500}.get(case)
    if updates is not None:
        ids[:updates] = np.arange(1, updates + 1)
    elif case == "all updates, clustered":
        ids[:] = np.arange(SMALL_ROWS + 1, 2 * SMALL_ROWS + 1)
    else:
        ids[:] = np.sort(rng.choice(np.arange(1, curated_ids + 1), SMALL_ROWS, replace=False))
    return ids


def _curate_load(home: Path, ids: np.ndarray, load: int, position: int, run_id: str) -> dict[str, float]:
    """Append one load of ``ids`` to raw, curate it; the step's seconds and its checks' seconds."""
    import pipelines
    from zones import load_config

    frame = _chunk(np.random.default_rng(SEED + load), int(ids[0]), len(ids)).with_columns(
        pl.Series("id", ids)
    )
    append_raw(home, frame, load, position)
    started = time.perf_counter()
    result = pipelines.curate(_spec(), run_id=run_id, config=load_config(), pipelines_dir=home.parent / "dlt")
    seconds = time.perf_counter() - started
    checks = min(_checks_seconds(_spec(), run_id, result.report)[0] for _ in range(3))
    return {"run": seconds, "checks": checks}


def run_backfill(home: Path, rows: int) -> dict[str, Any]:
    """The big table: ``rows`` raw rows curated (a 4.5M-row curated table at the default 5M)."""
    import pipelines
    from zones import load_config

    _isolated_env(home)
    prepare(home, rows)
    started = time.perf_counter()
    pipelines.curate(_spec(), run_id="backfill", config=load_config(), pipelines_dir=home.parent / "dlt")
    return {"backfill_seconds": time.perf_counter() - started}


def run_small(home: Path, case: str, rows: int, step: int, round_: int) -> dict[str, float]:
    """One 1,000-row run of ``case`` (the ``step``-th small load of this home), in this fresh process."""
    _isolated_env(home)
    curated_ids = rows - int(rows * UPDATE_SHARE)
    ids = _ids(case, 10**9 + step * SMALL_ROWS, curated_ids, np.random.default_rng(SEED + 7 + round_))
    return _curate_load(home, ids, LOADS + step, rows + step * SMALL_ROWS, f"small-{round_}-{step}")


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: float(np.median([run[name] for run in runs])) for name in runs[0]}


def _child(*arguments: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    done = subprocess.run(
        [sys.executable, __file__, *arguments], env=env, check=True, stdout=subprocess.PIPE, text=True
    )
    lines = done.stdout.strip().splitlines()
    print("\n".join(lines[:-1]), flush=True)
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--small-table-rows", type=int, default=SMALL_TABLE_ROWS)
    parser.add_argument("--run", choices=["backfill", "small"], help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--step", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run == "backfill":
        print(json.dumps(run_backfill(args.home, args.rows)), flush=True)
        return
    if args.run == "small":
        print(json.dumps(run_small(args.home, args.case, args.rows, args.step, args.round)), flush=True)
        return
    base = (args.dir or Path(os.environ.get("LAKEGATE_HOME", ".lakegate")) / "bench").resolve()
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="curate-small-", dir=base))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rows = str(args.rows)
    try:
        big_home = work / "big" / "home"
        big_home.mkdir(parents=True)
        backfill = _child("--run", "backfill", "--home", str(big_home), "--rows", rows)
        print(f"backfill curate: {backfill['backfill_seconds']:.1f} s", flush=True)
        small_home, small_rows = work / "small" / "home", str(args.small_table_rows)
        small_home.mkdir(parents=True)
        _child("--run", "backfill", "--home", str(small_home), "--rows", small_rows)
        empties: list[dict[str, float]] = []
        bigs: dict[str, list[dict[str, float]]] = {case: [] for case in CASES}
        smalls: dict[str, list[dict[str, float]]] = {case: [] for case in UPDATE_CASES}
        step = 0
        for round_ in range(args.rounds):  # the empty and the big table's runs interleaved in time
            empty_home = work / f"empty-{round_}" / "home"
            empty_home.mkdir(parents=True)
            empty_run = ["--run", "small", "--home", str(empty_home), "--case", "new", "--rows", "0"]
            empties.append(_child(*empty_run))
            for case in CASES:
                bigs[case].append(
                    _child(
                        "--run", "small", "--home", str(big_home), "--case", case, "--rows", rows,
                        "--step", str(step), "--round", str(round_),
                    )
                )  # fmt: skip
                step += 1
            for small_step, case in enumerate(UPDATE_CASES, start=round_ * len(UPDATE_CASES)):
                smalls[case].append(
                    _child(
                        "--run", "small", "--home", str(small_home), "--case", case, "--rows", small_rows,
                        "--step", str(small_step), "--round", str(round_),
                    )
                )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    empty, big = _median(empties), {case: _median(runs) for case, runs in bigs.items()}
    small = {case: _median(runs) for case, runs in smalls.items()}
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{SMALL_ROWS:,} new rows onto an empty curated table: run {empty['run']:.2f} s, "
        f"checks {empty['checks']:.3f} s"
    )
    for case in CASES:
        print(
            f"{SMALL_ROWS:,} rows ({case}) onto the {args.rows:,}-row table: run {big[case]['run']:.2f} s "
            f"({big[case]['run'] / empty['run']:.2f}x), checks {big[case]['checks']:.3f} s "
            f"({big[case]['checks'] / empty['checks']:.2f}x)"
        )
    for case in UPDATE_CASES:
        print(
            f"{SMALL_ROWS:,} rows ({case}) onto a {args.small_table_rows:,}-row table holding the same keys: "
            f"run {small[case]['run']:.2f} s (the {args.rows:,}-row table's run: "
            f"{big[case]['run'] / small[case]['run']:.2f}x)"
        )
    worst = max(big[case]["run"] / small[case]["run"] for case in UPDATE_CASES)
    print(f"updates onto the big table / onto the small table: {worst:.2f}")
    slowest = max(big[case]["run"] for case in CASES if "random" not in case)
    print(f"ratio: {slowest / empty['run']:.2f}")


if __name__ == "__main__":
    main()
