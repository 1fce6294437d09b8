"""The vocabulary every lakegate package shares: reserved column names, the error tree, the registry.

It imports nothing else of lakegate, so ``connectors``, ``transforms``, ``zones`` and the pipeline core can
all use it without crossing the walls between them (DESIGN.md).

Importing it sets one process default: Arrow buffers come from the system allocator unless
``ARROW_DEFAULT_MEMORY_POOL`` names another. pyarrow's default, mimalloc, faults in a fresh arena as huge
pages on kernels with transparent huge pages on ``madvise``: an allocation of a few MB then stalled 20-60
ms at random, in the CPU of the thread that made it (a small merge's 25k-row file took 10 ms or 40-70 ms).
Measured on ``benchmarks/batch_files.py``: the same EL time, 20 MB less at the peak.
"""

import os

import pyarrow as _pa

if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    _pa.set_memory_pool(_pa.system_memory_pool())
