"""Byte counts over a chunk of a CSV file that prove how polars read it (``_fastcsv``): its line breaks,
quotes and carriage returns.

A chunk is compared in blocks of :data:`BLOCK` bytes into per-thread scratch masks: a mask of the whole chunk
(6 MiB, three per chunk) was written and read back through memory, and in a run, with the other threads
busy, those passes took ~4x their time alone.
"""

from __future__ import annotations

import threading

import numpy as np

LF = ord("\n")
_CR, _QUOTE = ord("\r"), ord('"')

BLOCK = 1 << 18
"""Bytes of a chunk compared at a time: a block's mask stays in the core's cache, so a chunk is read from
memory once, not written and read again as a mask of its size."""


_SCRATCH = threading.local()


def _scratch(name: str, size: int) -> np.ndarray:
    """This thread's boolean scratch array ``name``, at least ``size`` long: a fresh mask per comparison
    cost more in page faults than the comparison itself."""
    array: np.ndarray | None = getattr(_SCRATCH, name, None)
    if array is None or len(array) < size:
        array = np.empty(max(size, BLOCK + 1), np.bool_)
        setattr(_SCRATCH, name, array)
    return array[:size]


def _mask(raw: np.ndarray, byte: int) -> np.ndarray:
    """``raw == byte``, in scratch memory valid until this thread's next call."""
    out = _scratch("mask", len(raw))
    np.equal(raw, byte, out=out)
    return out


def _adjacent(mask: np.ndarray) -> bool:
    """Whether two set neighbours are in ``mask`` (e.g. ``""``)."""
    out = _scratch("pairs", max(len(mask) - 1, 0))
    np.logical_and(mask[1:], mask[:-1], out=out)
    return bool(out.any())


def count(data: bytes, byte: int) -> int:
    """How many ``byte`` bytes ``data`` holds."""
    raw = np.frombuffer(data, np.uint8)
    return sum(int(np.count_nonzero(_mask(raw[at : at + BLOCK], byte))) for at in range(0, len(raw), BLOCK))


def quotes(data: bytes) -> tuple[int, bool]:
    """How many quotes ``data`` holds, and whether two of them are neighbours (``""``)."""
    raw = np.frombuffer(data, np.uint8)
    found, pairs = 0, False
    for at in range(0, len(raw), BLOCK):
        block = _mask(raw[at : at + BLOCK + 1], _QUOTE)  # (one byte more: a pair across the cut)
        found += int(np.count_nonzero(block[:BLOCK]))
        pairs = pairs or _adjacent(block)
    return found, pairs


def carriage_returns(data: bytes, breaks: int) -> int | None:
    """The chunk's ``\\r`` bytes: none, or one before the ``\\n`` of every line break (polars drops
    those); None otherwise (to the region reader a lone ``\\r`` is a line break)."""
    if b"\r" not in data:  # (a memchr: no mask of the chunk is made for the common case)
        return 0
    raw = np.frombuffer(data, np.uint8)
    found = paired = 0
    for at in range(0, len(raw), BLOCK):
        block = raw[at : at + BLOCK + 1]  # (one byte more: a \r\n across the cut)
        crs = _mask(block, _CR)
        found += int(np.count_nonzero(crs[:BLOCK]))
        before_lf = _scratch("pairs", len(block) - 1)
        np.equal(block[1:], LF, out=before_lf)
        paired += int(np.count_nonzero(np.logical_and(crs[:-1], before_lf, out=before_lf)))
    return found if found == breaks and paired == found else None
