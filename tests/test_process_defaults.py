"""Importing lakegate sets Arrow's allocator to jemalloc, unless the user named another."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = "import zones, pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def allocator(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_arrow_buffers_come_from_jemalloc_unless_an_allocator_is_named() -> None:
    assert allocator() == "jemalloc"  # (the wheels for Linux include it)
    assert allocator(ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"
    assert allocator(ARROW_DEFAULT_MEMORY_POOL="system") == "system"
