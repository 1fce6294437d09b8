"""Batch-file benchmark: lakegate EL into the raw zone versus bare polars, on one big CSV.

Usage::

    .venv/bin/python benchmarks/batch_files.py                # 5M rows x 12 columns (~650 MB CSV)
    .venv/bin/python benchmarks/batch_files.py --rows 500000  # quick run
    .venv/bin/python benchmarks/batch_files.py --repeat 3     # fastest of 3 runs per path (noisy machines)
    .venv/bin/python benchmarks/batch_files.py --profile      # lakegate path only, under cProfile
    .venv/bin/python benchmarks/batch_files.py --bad-fraction 0.01  # 1% of rows: a value that does not cast
    .venv/bin/python benchmarks/batch_files.py --zone s3      # lakegate into S3 zones (moto) vs local zones

The CSV is generated once (vectorised numpy/polars) under ``$LAKEGATE_HOME/bench`` (or ``--dir``) and reused
by later runs. Each measured path then runs in its own child process (``--run lakegate|bare``) so that its
peak RSS is its own: ``getrusage(RUSAGE_CHILDREN)`` keeps only the maximum over all children, so it cannot
tell two paths apart. A child prints its measurements as JSON on its last stdout line.

- ``lakegate``: the ``files`` connector -> dlt pipeline -> lakegate zone destination -> raw zone (Delta),
  plain Python, no Dagster, with every column declared and cast, into a fresh ``LAKEGATE_HOME``. The child
  checks that input rows = committed rows + quarantined rows, that every generated row was committed and
  none quarantined, and that the Delta table holds them all.
- ``bare``: ``pl.scan_csv(path).sink_parquet(out)``; the child checks the parquet row count.
- ``lakegate-s3`` (``--zone s3``, instead of ``bare``): the same lakegate run with every zone in a bucket of a
  moto S3 server the script starts (its own process), credentials by environment-variable name in a
  ``lakegate.yaml``; the last line is then ``ratio: X.XX`` = S3 rows/s / local-disk rows/s.

``--bad-fraction F`` gives lakegate a variant of the file (``orders_<rows>_bad<F>.csv``) in which a
deterministic fraction F of the rows holds one value that does not cast (``n/a`` in ``quantity``, ``abc``
in ``unit_price``, ``maybe`` in ``is_gift``, ``yesterday`` in ``created_at``). The lakegate child then checks
that exactly those rows are quarantined (by their line numbers, rule ``cast_schema``) and every other row is
committed. The bare path still reads the clean file (bare polars stops at the first bad value).

The parent prints rows/s, MB/s (CSV bytes / elapsed), CPU seconds and peak RSS of each path, and last the line
``ratio: X.XX`` (lakegate rows/s / bare rows/s). Elapsed time covers the work only (imports and CSV
generation excluded); peak RSS is the child's whole-process peak (``ru_maxrss``), imports included, taken as
the work ends (the correctness checks that read the tables back come after it, and are not the path's). CPU
seconds (user + system, all threads) are less disturbed than wall time by other load on the machine.

``--profile`` adds, besides cProfile's top 25 (which cannot see Python called back from Rust threads, e.g. the
Delta writer pulling the destination's batches), wall-time timers around the main functions on every thread
and the peak RSS of each dlt step.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

DEFAULT_ROWS = 5_000_000
GENERATE_CHUNK_ROWS = 1_000_000
SEED = 20_240_501

# The declared schema of the generated file: 12 columns of ints, floats, strings, bools and a timestamp.
SCHEMA: dict[str, str] = {
    "id": "int64",
    "customer_id": "int64",
    "store_id": "int32",
    "quantity": "int32",
    "unit_price": "float64",
    "discount": "float32",
    "amount": "float64",
    "currency": "string",
    "country": "string",
    "product": "string",
    "is_gift": "bool",
    "created_at": "datetime",
}

_CURRENCIES = ["EUR", "USD", "GBP", "CHF", "SEK", "PLN"]
_COUNTRIES = ["DE", "FR", "NL", "BE", "ES", "IT", "PL", "SE", "CH", "GB", "US", "IE"]
_ADJECTIVES = ["Stainless", "Organic", "Compact", "Wireless", "Vintage", "Ergonomic", "Foldable", "Premium"]
_NOUNS = ["Kettle", "Backpack", "Desk Lamp", "Headphones", "Water Bottle", "Chair", "Notebook", "Toaster"]
_COLOURS = ["black", "white", "blue", "red", "green", "grey", "oak", "steel"]
_SIZES = ["XS", "S", "M", "L", "XL", "one-size"]


# --------------------------------------------------------------------------------------------- generation
def _chunk(rng: np.random.Generator, first_id: int, n: int) -> pl.DataFrame:
    def pick(values: list[str]) -> pl.Series:
        return pl.Series(values, dtype=pl.String).gather(rng.integers(0, len(values), n))

    quantity = rng.integers(1, 20, n, dtype=np.int32)
    unit_price = np.round(rng.uniform(0.5, 2_000.0, n), 2)
    discount = rng.choice(np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.25]), n).astype(np.float32)
    amount = np.round(unit_price * quantity * (1.0 - discount.astype(np.float64)), 2)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    offsets = rng.integers(0, 730 * 86_400 * 1_000_000, n).astype("timedelta64[us]")
    frame = pl.DataFrame(
        {
            "id": np.arange(first_id, first_id + n, dtype=np.int64),
            "customer_id": rng.integers(1, 5_000_000, n, dtype=np.int64),
            "store_id": rng.integers(1, 800, n, dtype=np.int32),
            "quantity": quantity,
            "unit_price": unit_price,
            "discount": discount,
            "amount": amount,
            "currency": pick(_CURRENCIES),
            "country": pick(_COUNTRIES),
            "_sku": rng.integers(0, 10_000_000, n, dtype=np.int64),
            "_adjective": pick(_ADJECTIVES),
            "_noun": pick(_NOUNS),
            "_colour": pick(_COLOURS),
            "_size": pick(_SIZES),
            "is_gift": rng.random(n) < 0.1,
            "created_at": start + offsets,
        }
    )
    product = pl.format(
        "SKU-{} {} {}, {}, size {}",
        pl.col("_sku").cast(pl.String).str.zfill(7),
        "_adjective",
        "_noun",
        "_colour",
        "_size",
    )
    return frame.with_columns(product.alias("product")).select(list(SCHEMA))


# Bad values of the --bad-fraction variant: (column, text that no declared type reads).
BAD_VALUES = [("quantity", "n/a"), ("unit_price", "abc"), ("is_gift", "maybe"), ("created_at", "yesterday")]
_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.6f"


def _bad_rows(index: int, n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows (0-based within chunk ``index``) that get a bad value, and which of ``BAD_VALUES`` each gets."""
    rng = np.random.default_rng(SEED + 1_000 + index)
    rows = np.flatnonzero(rng.random(n) < fraction)
    return rows, rng.integers(0, len(BAD_VALUES), len(rows))


def bad_lines(rows: int, fraction: float) -> set[int]:
    """The line numbers (header = line 1) of the rows the variant spoils."""
    lines: set[int] = set()
    for index, first in enumerate(range(0, rows, GENERATE_CHUNK_ROWS)):
        bad, _ = _bad_rows(index, min(GENERATE_CHUNK_ROWS, rows - first), fraction)
        lines.update((first + bad + 2).tolist())
    return lines


def _spoil(frame: pl.DataFrame, index: int, fraction: float) -> pl.DataFrame:
    bad, which = _bad_rows(index, frame.height, fraction)
    for number, (column, text) in enumerate(BAD_VALUES):
        rows = pl.Series(bad[which == number], dtype=pl.UInt32)
        values = frame[column]
        values = values.dt.to_string(_DATETIME_FORMAT) if column == "created_at" else values.cast(pl.String)
        frame = frame.with_columns(values.scatter(rows, text).alias(column))
    return frame


def generate_csv(path: Path, rows: int, bad_fraction: float = 0.0) -> None:
    """Write a ``rows``-row CSV to ``path``, through a temporary name so a crash never leaves half a file."""
    partial = path.with_suffix(".csv.partial")
    started = time.perf_counter()
    with partial.open("wb") as out:
        for index, first in enumerate(range(0, rows, GENERATE_CHUNK_ROWS)):
            n = min(GENERATE_CHUNK_ROWS, rows - first)
            frame = _chunk(np.random.default_rng(SEED + index), first + 1, n)
            if bad_fraction:
                frame = _spoil(frame, index, bad_fraction)
            frame.write_csv(out, include_header=index == 0, datetime_format=_DATETIME_FORMAT)
    partial.rename(path)
    size = path.stat().st_size
    print(
        f"generated {path} ({rows:,} rows, {size / 1e6:,.0f} MB) in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def ensure_csv(directory: Path, rows: int, bad_fraction: float = 0.0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (f"orders_{rows}_bad{bad_fraction:g}.csv" if bad_fraction else f"orders_{rows}.csv")
    if path.exists():
        print(f"reusing {path} ({path.stat().st_size / 1e6:,.0f} MB)", flush=True)
    else:
        generate_csv(path, rows, bad_fraction)
    return path


# ----------------------------------------------------------------------------------------- child paths
def _rss_now() -> int:
    """Current resident set size in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss() -> int:
    """Peak resident set size of this process in bytes (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_bare(csv_path: Path, rows: int, workdir: Path) -> dict[str, Any]:
    out = workdir / "bare.parquet"
    cpu, started = _cpu_seconds(), time.perf_counter()
    pl.scan_csv(csv_path).sink_parquet(out)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    peak = _peak_rss()
    written = pl.scan_parquet(out).select(pl.len()).collect().item()
    ok = written == rows
    print(f"bare: {written:,} rows in {out.name} ({'OK' if ok else f'EXPECTED {rows:,}'})", flush=True)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "ok": ok,
        "committed_rows": written,
        "peak_rss_bytes": peak,
    }


def _isolated_env(workdir: Path) -> Path:
    """Point lakegate at a fresh home with the embedded default zones (nothing from the caller's env)."""
    home = workdir / "home"
    os.environ["LAKEGATE_HOME"] = str(home)
    for name in list(os.environ):
        if name == "LAKEGATE_CONFIG" or (name.startswith("LAKEGATE_ZONE_") and name.endswith("_URL")):
            del os.environ[name]
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.chdir(workdir)  # load_config() would also read a ./lakegate.yaml from the working directory
    return home


S3_ZONES = ("landing", "raw", "curated", "pii", "quarantine")
S3_BUCKET = "bench-lake"


def _zones_on_s3(workdir: Path, endpoint: str) -> None:
    """Every zone in a new bucket of the moto server (each run starts from empty zones, as a local run
    does), credentials by environment-variable name (lakegate.yaml)."""
    import s3fs

    bucket = f"{S3_BUCKET}-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(key="bench", secret="bench-secret", endpoint_url=endpoint).mkdir(bucket)
    storage = (
        "    storage: {key: {env: AWS_ACCESS_KEY_ID}, secret: {env: AWS_SECRET_ACCESS_KEY}, "
        "endpoint_url: {env: AWS_ENDPOINT_URL}}\n"
    )
    zones = "".join(f"  {z}:\n    url: s3://{bucket}/{z}\n{storage}" for z in S3_ZONES)
    (workdir / "lakegate.yaml").write_text("zones:\n" + zones)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench-secret",
        AWS_ENDPOINT_URL=endpoint,
        AWS_EC2_METADATA_DISABLED="true",
    )


def run_lakegate(
    csv_path: Path,
    rows: int,
    workdir: Path,
    profile: bool,
    bad_fraction: float = 0.0,
    s3_endpoint: str | None = None,
) -> dict[str, Any]:
    _isolated_env(workdir)
    if s3_endpoint:
        _zones_on_s3(workdir, s3_endpoint)
    import pipelines
    from pipelines import PipelineSpec
    from transforms import dtype_of
    from zones import ZoneName, load_config, open_zone

    rss_after_imports = _rss_now()
    profiler = _AllThreadsProfiler() if profile else None
    timers = _PhaseTimers.install() if profile else None
    sampler = _RssSampler() if profile else None
    if sampler:
        sampler.start()
    cpu, started = _cpu_seconds(), time.perf_counter()
    if profiler:
        profiler.start()
    config = load_config()
    spec = PipelineSpec.model_validate(
        {
            "name": "orders",
            "domain": "bench",
            "pattern": "EL",
            "connector": {"type": "files", "config": {"url": "file://" + str(csv_path)}},
            "primary_key": ["id"],
            "columns": {name: {"type": type_name} for name, type_name in SCHEMA.items()},
        }
    )
    problems = pipelines.check_spec(spec)
    assert not problems, problems
    report = pipelines.ingest(spec, run_id="bench", config=config, pipelines_dir=workdir / "dlt")
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    peak = _peak_rss()  # before the checks below read the tables back
    if profiler:
        profiler.stop()
    if sampler:
        sampler.stop()

    steps = {}
    step_peaks = {}
    for name, (step_start, step_end) in report.steps.items():
        steps[name] = round(step_end - step_start, 2)
        if sampler:
            step_peaks[name] = round(sampler.peak(step_start, step_end) / 1e9, 2)

    balanced = report.input_rows == report.committed_rows + report.quarantined_rows
    print(
        f"lakegate: input_rows={report.input_rows:,} committed_rows={report.committed_rows:,} "
        f"quarantined_rows={report.quarantined_rows:,} vaulted_values={report.vaulted_values:,} "
        f"replayed_jobs={report.replayed_jobs} adopted_jobs={report.adopted_jobs} "
        f"prescanned_jobs={report.prescanned_jobs} "
        f"(input = committed + quarantined: {'yes' if balanced else 'NO'})",
        flush=True,
    )
    raw = open_zone(ZoneName.RAW, config)
    table_uri = raw.table_uri(spec.domain, spec.name)
    table = raw.delta_table(spec.domain, spec.name)
    if table is None:
        in_table, wrong_types = 0, {"*": "no table"}
        print(f"lakegate: raw Delta table {table_uri} does NOT exist")
    else:
        in_table = sum(int(n) for n in table.get_add_actions(flatten=True).column("num_records").to_pylist())
        committed_schema = pl.scan_delta(table).collect_schema()
        wrong_types = {
            name: str(committed_schema.get(name))
            for name, type_name in SCHEMA.items()
            if committed_schema.get(name) != dtype_of(type_name)
        }
        print(f"lakegate: raw Delta table {table_uri} holds {in_table:,} rows, version {table.version()}")
        print(
            "lakegate: committed column types "
            + (
                f"differ from the declared ones: {wrong_types}"
                if wrong_types
                else "match the declared schema"
            )
        )
    expected_bad = bad_lines(rows, bad_fraction) if bad_fraction else set()
    quarantine_ok = True
    if expected_bad:
        quarantined = open_zone(ZoneName.QUARANTINE, config).delta_table(spec.domain, spec.name)
        quarantine = pl.DataFrame() if quarantined is None else pl.read_delta(quarantined)
        positions = set(quarantine["_lakegate_position"].to_list())
        rules = set(quarantine["_lakegate_rule"].to_list())
        quarantine_ok = (
            positions == expected_bad and quarantine.height == len(expected_bad) and rules == {"cast_schema"}
        )
        print(
            f"lakegate: quarantine holds {quarantine.height:,} record(s) (rules {sorted(rules)}); "
            f"the {len(expected_bad):,} spoiled line(s) "
            + ("are exactly those" if quarantine_ok else "DIFFER from them")
        )
    good_rows = rows - len(expected_bad)
    ok = (
        balanced
        and report.input_rows == rows
        and report.committed_rows == good_rows
        and report.quarantined_rows == len(expected_bad)
        and in_table == good_rows
        and not wrong_types
        and quarantine_ok
    )
    print(f"lakegate: dlt steps (s): {steps}")
    if sampler:
        print(f"lakegate: peak RSS per dlt step (GB, sampled every 20 ms): {step_peaks}")
    print(
        "lakegate: correctness "
        + (
            f"OK: {good_rows:,} of {rows:,} generated rows committed to raw, "
            f"{len(expected_bad):,} quarantined"
            if ok
            else f"FAILED: expected {good_rows:,} committed and {len(expected_bad):,} quarantined"
        ),
        flush=True,
    )
    if profiler:
        profiler.print_top(25)
    if timers:
        timers.print_table(seconds)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "ok": ok,
        "input_rows": report.input_rows,
        "committed_rows": report.committed_rows,
        "quarantined_rows": report.quarantined_rows,
        "rows_in_table": in_table,
        "steps": steps,
        "rss_after_imports_bytes": rss_after_imports,
        "peak_rss_bytes": peak,
        "profiled": profile,
    }


class _RssSampler(threading.Thread):
    """Samples this process's RSS every 20 ms, so peaks can be attributed to dlt steps (--profile only)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            self.samples.append((time.time(), _rss_now()))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def peak(self, start: float, end: float) -> int:
        return max((rss for at, rss in self.samples if start <= at <= end), default=0)


class _PhaseTimers:
    """Wall time spent inside chosen functions, counted on every thread.

    cProfile cannot see Python code called back from threads that Rust started: the Delta writer pulls the
    destination's ``RecordBatchReader`` from such a thread, so the per-batch split/cast/stamp work is hidden
    inside ``write_to_deltalake``. These wrappers (installed in the child process only, in ``--profile``
    mode) time those functions wherever they run. Nested entries overlap: a row's time is also part of the
    rows that enclose it, so the column does not add up to the elapsed time.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def install(cls) -> _PhaseTimers:
        import pyarrow.parquet as pq

        import connectors.files as files
        import connectors.files._csv as csv_reader
        import connectors.files._readers as readers
        import zones._delta as delta
        import zones.destination as destination

        timers = cls()
        timers.wrap(files, "read_csv", "extract  read_csv: pyarrow CSV parse + lineage (connector)", gen=True)
        timers.wrap(csv_reader, "with_positions", "extract    with_positions: source/position columns")
        timers.wrap(readers, "with_lineage", "extract    with_lineage: source/position columns")
        timers.wrap(pq.ParquetWriter, "write_table", "extract  ParquetWriter.write_table: dlt's load file")
        timers.wrap(delta, "open_table", "load     open_table: open the 3 zone tables")
        timers.wrap(delta, "write_deltalake", "load     write_deltalake (pulls the reader: includes below)")
        timers.wrap(
            pq.ParquetFile, "iter_batches", "load       ParquetFile.iter_batches: read load file", gen=True
        )
        timers.wrap(destination, "split_batch", "load       split_batch: reject split + cast_schema")
        timers.wrap(destination, "stamp", "load       stamp: lineage columns")
        timers.wrap(pl.DataFrame, "to_arrow", "load       DataFrame.to_arrow (all callers)")
        timers.wrap(destination, "record", "load     audit record")
        return timers

    def _add(self, label: str, seconds: float) -> None:
        with self._lock:
            self.seconds[label] = self.seconds.get(label, 0.0) + seconds
            self.calls[label] = self.calls.get(label, 0) + 1

    def wrap(self, owner: Any, name: str, label: str, *, gen: bool = False) -> None:
        original = getattr(owner, name, None)
        if original is None:  # the code under measurement changed; time what exists
            return
        self.seconds.setdefault(label, 0.0)
        self.calls.setdefault(label, 0)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._add(label, time.perf_counter() - started)

        def timed_gen(*args: Any, **kwargs: Any) -> Any:
            iterator = iter(original(*args, **kwargs))
            while True:
                started = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    self._add(label, time.perf_counter() - started)
                    return
                self._add(label, time.perf_counter() - started)
                yield item

        setattr(owner, name, timed_gen if gen else timed)

    def print_table(self, elapsed: float) -> None:
        print(f"-- wall time inside functions, all threads (elapsed {elapsed:.2f} s; nested rows overlap)")
        print(f"{'function':<72} {'calls':>6} {'seconds':>8} {'share':>6}")
        for label, seconds in self.seconds.items():
            print(f"{label:<72} {self.calls[label]:>6} {seconds:>8.2f} {seconds / elapsed:>6.0%}")
        print(flush=True)


class _AllThreadsProfiler:
    """cProfile over the main thread and every thread started while it runs (dlt loads in a thread pool).

    ``cProfile`` only sees the thread that enabled it; ``threading.setprofile`` installs a hook in each new
    thread whose first call enables a profiler of that thread's own. The stats are merged at the end.
    """

    def __init__(self) -> None:
        self.main = cProfile.Profile()
        self.threads: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _hook(self, *_args: Any) -> None:
        profiler = cProfile.Profile()
        with self._lock:
            self.threads.append(profiler)
        profiler.enable()  # replaces this hook as the thread's profile function

    def start(self) -> None:
        threading.setprofile(self._hook)
        self.main.enable()

    def stop(self) -> None:
        self.main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]

    def print_top(self, limit: int) -> None:
        stats = pstats.Stats(self.main, stream=(buffer := io.StringIO()))
        for profiler in self.threads:
            stats.add(profiler)
        print(f"profile: main thread + {len(self.threads)} worker thread(s), merged")
        print(f"-- top {limit} by cumulative time", flush=True)
        stats.sort_stats("cumulative").print_stats(limit)
        # dlt's wrappers fill the cumulative top; lakegate's own functions show where the load step goes.
        # Note: the Delta writer pulls its RecordBatchReader from Python, so write_deltalake's cumulative
        # time includes the per-batch split/cast done by the generator that feeds it.
        print("-- lakegate functions (zones/, connectors/, transforms/) by cumulative time", flush=True)
        stats.print_stats(r"/(zones|connectors|transforms)/", limit)
        print(f"-- top {limit} by own time (tottime)", flush=True)
        stats.sort_stats("tottime").print_stats(limit)
        print(buffer.getvalue(), flush=True)


def child(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    csv_path = Path(args.csv)
    if args.run == "bare":
        result = run_bare(csv_path, args.rows, workdir)
    else:
        result = run_lakegate(
            csv_path, args.rows, workdir, args.profile, args.bad_fraction, args.s3_endpoint or None
        )
    result.update(path=args.run, rows=args.rows)
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------- parent
def spawn(
    path: str,
    csv_path: Path,
    rows: int,
    bench_dir: Path,
    *,
    profile: bool,
    keep: bool,
    bad_fraction: float = 0.0,
    s3_endpoint: str | None = None,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"run-{path}-", dir=bench_dir))
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run",
        "bare" if path == "bare" else "lakegate",
        "--csv",
        str(csv_path),
        "--rows",
        str(rows),
        "--workdir",
        str(workdir),
    ]
    if profile:
        command.append("--profile")
    if bad_fraction:
        command += ["--bad-fraction", str(bad_fraction)]
    if s3_endpoint:
        command += ["--s3-endpoint", s3_endpoint]
    print(f"\n== {path}: {' '.join(command)}", flush=True)
    try:
        proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    lines = proc.stdout.rstrip("\n").splitlines()
    print("\n".join(lines[:-1]), flush=True)
    if proc.returncode != 0 or not lines:
        sys.exit(f"{path} run failed (exit code {proc.returncode}); see its output above")
    return json.loads(lines[-1])


@contextlib.contextmanager
def _moto_server(bench_dir: Path) -> Iterator[str]:
    """A moto S3 server in its own process (deltalake holds the GIL while it waits on HTTP, so an
    in-process server would never answer); yields its endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    moto = Path(sys.executable).with_name("moto_server")
    with (bench_dir / "moto.log").open("w") as log:
        server = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"moto_server did not start (see {bench_dir / 'moto.log'})")
                time.sleep(0.2)
        print(f"moto S3 server at {endpoint} (a new bucket per run)", flush=True)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows in the generated CSV")
    parser.add_argument("--dir", help="where the CSV and run folders live (default: $LAKEGATE_HOME/bench)")
    parser.add_argument("--profile", action="store_true", help="run the lakegate path only, under cProfile")
    parser.add_argument("--keep", action="store_true", help="keep each run's folder (zones, dlt, parquet)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measure each path N times (alternating); report the fastest"
    )
    parser.add_argument(
        "--bad-fraction",
        type=float,
        default=0.0,
        help="lakegate reads a variant with this fraction of rows holding a value that does not cast",
    )
    parser.add_argument(
        "--zone",
        choices=["local", "s3"],
        default="local",
        help="s3: lakegate into zones on a moto S3 server beside lakegate into local zones; ratio = S3/local",
    )
    parser.add_argument("--run", choices=["lakegate", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--s3-endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        child(args)
        return

    bench_dir = Path(args.dir or Path(os.environ.get("LAKEGATE_HOME") or ".lakegate") / "bench").resolve()
    csv_path = ensure_csv(bench_dir, args.rows)
    lakegate_csv = ensure_csv(bench_dir, args.rows, args.bad_fraction) if args.bad_fraction else csv_path
    csv_bytes = csv_path.stat().st_size
    paths = ["lakegate"] if args.profile else ["lakegate", "lakegate-s3" if args.zone == "s3" else "bare"]
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in paths}
    with _moto_server(bench_dir) if args.zone == "s3" else contextlib.nullcontext() as endpoint:
        for _ in range(max(1, args.repeat)):
            for p in paths:
                runs[p].append(
                    spawn(
                        p,
                        csv_path if p == "bare" else lakegate_csv,
                        args.rows,
                        bench_dir,
                        profile=args.profile,
                        keep=args.keep,
                        bad_fraction=0.0 if p == "bare" else args.bad_fraction,
                        s3_endpoint=endpoint if p == "lakegate-s3" else None,
                    )
                )

    print(
        f"\n{args.rows:,} rows x {len(SCHEMA)} columns, {csv_bytes / 1e6:,.0f} MB CSV, "
        f"{os.cpu_count()} cores; 1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    if args.repeat > 1:
        print(f"fastest of {args.repeat} runs per path; peak RSS is the largest of them")
    print(
        f"{'path':<10} {'seconds':>8} {'rows/s':>12} {'MB/s':>8} {'CPU s':>7} {'peak RSS':>10}  correct  "
        "(all runs, s)"
    )
    rates = {}
    for name, results in runs.items():
        best = min(results, key=lambda r: r["seconds"])
        rates[name] = args.rows / best["seconds"]
        peak = max(r["peak_rss_bytes"] for r in results)
        every = ", ".join(f"{r['seconds']:.2f}" for r in results)
        print(
            f"{name:<10} {best['seconds']:>8.2f} {rates[name]:>12,.0f} "
            f"{csv_bytes / 1e6 / best['seconds']:>8.1f} {best['cpu_seconds']:>7.1f} {peak / 1e9:>8.2f} GB  "
            f"{'yes' if all(r['ok'] for r in results) else 'NO':<7}  ({every})"
        )
    if args.profile:
        print("(profiled: timings include cProfile overhead; no ratio)")
        return
    if not all(r["ok"] for results in runs.values() for r in results):
        sys.exit("a path produced wrong results; the figures above do not count")
    if args.zone == "s3":
        print("(lakegate-s3: every zone in a bucket of a local moto S3 server; ratio = S3 / local disk)")
        print(f"ratio: {rates['lakegate-s3'] / rates['lakegate']:.2f}")
        return
    print(f"ratio: {rates['lakegate'] / rates['bare']:.2f}")


if __name__ == "__main__":
    main()
