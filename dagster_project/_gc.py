"""Garbage-collector policy of a code location process, applied on import (before the definitions'
own imports, which it should cover).

A code location keeps what it imports and builds for its whole life (~500k objects for 200 pipelines),
and CPython's default thresholds re-scan all of it in each full collection while the modules are
imported and the definitions and their snapshot are built: a third of the CPU of a 200-pipeline load.
What exists is moved to the permanent generation (:func:`settle`), and young collections run every
20,000 allocations instead of 700.
"""

import gc

THRESHOLDS = (20_000, 20, 10)


def settle() -> None:
    """Move every object alive now to the permanent generation: the full collections to come skip them."""
    gc.freeze()


def release() -> None:
    """Give the settled objects back to the collector, before some of them are replaced and dropped."""
    gc.unfreeze()


settle()
gc.set_threshold(*THRESHOLDS)
