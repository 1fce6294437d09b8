"""The vocabulary every lakegate package shares: reserved column names, the error tree, the registry.

It imports nothing else of lakegate, so ``connectors``, ``transforms``, ``zones`` and the pipeline core can
all use it without crossing the walls between them (DESIGN.md).

Importing it sets one process default: Arrow buffers come from jemalloc (the system allocator where the
pyarrow build has none) unless ``ARROW_DEFAULT_MEMORY_POOL`` names another. pyarrow's default, mimalloc,
asks for its memory as transparent huge pages (``madvise``): an allocation of a few MB then stalled 20-60 ms
at random, in system time, in the thread that made it (writing a 25k-row file took 10 ms, or 35-70 ms).
Arrow's C++ code takes its buffers from the pool ``ARROW_DEFAULT_MEMORY_POOL`` named when pyarrow loaded,
so the variable is set here, before pyarrow is imported; every lakegate package imports this one first.
Measured: ``benchmarks/batch_files.py`` the same EL time in 30-40 MB less; ``benchmarks/curate.py`` 0.85
GB at the peak against 0.92 (the system allocator: 0.95-1.01).
"""

import os

_NAMED = "ARROW_DEFAULT_MEMORY_POOL" in os.environ
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")  # (child processes inherit it)

import pyarrow as _pa  # noqa: E402

# pyarrow imported before lakegate (Arrow's C++ default stays as it was: pyarrow's own calls follow this),
# or built without jemalloc:
if not _NAMED and _pa.default_memory_pool().backend_name != "jemalloc":
    try:
        _pa.set_memory_pool(_pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc
        _pa.set_memory_pool(_pa.system_memory_pool())
