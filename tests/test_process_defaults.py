"""Importing lakegate makes jemalloc Arrow's allocator, for pyarrow's calls and Arrow's own C++ code alike,
unless the user named another."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Which pool pyarrow's calls use, and the peak bytes mimalloc handed out while a Parquet file was read (its
# reader takes buffers from Arrow's C++ default pool, fixed when pyarrow loads).
PROBE = """
import sys
import {first}
import pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({{"n": list(range(100_000))}}), sys.argv[1])
pq.ParquetFile(sys.argv[1]).read()
print(pa.default_memory_pool().backend_name, pa.mimalloc_memory_pool().max_memory())
"""


def allocator(tmp_path: Path, first: str = "zones", **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first), str(tmp_path / "probe.parquet")],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    name, mimalloc_peak = done.stdout.split()
    return name, int(mimalloc_peak)


def test_arrow_buffers_come_from_jemalloc_unless_an_allocator_is_named(tmp_path: Path) -> None:
    for package in ("zones", "pipelines", "connectors", "transforms", "dagster_project"):
        assert allocator(tmp_path, package) == ("jemalloc", 0)  # (the wheels for Linux include it)
    name, mimalloc_peak = allocator(tmp_path, ARROW_DEFAULT_MEMORY_POOL="mimalloc")
    assert name == "mimalloc" and mimalloc_peak > 0
    assert allocator(tmp_path, ARROW_DEFAULT_MEMORY_POOL="system") == ("system", 0)


def test_pyarrow_loaded_before_lakegate_still_gives_pyarrows_calls_jemalloc(tmp_path: Path) -> None:
    name, _ = allocator(tmp_path, "pyarrow, zones")
    assert name == "jemalloc"
