"""Importing lakegate sets Arrow's allocator to the system one, unless the user named another."""

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


def test_arrow_buffers_come_from_the_system_allocator_unless_one_is_named() -> None:
    assert allocator() == "system"
    assert allocator(ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"
