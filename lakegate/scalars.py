"""Arrow scalars built from their bytes: pyarrow imports pandas (~0.2 s and ~50 MB, once per process) to
convert a Python value with ``pa.scalar`` or ``pa.array``, which a run that never needs pandas should not pay.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def text_scalar(value: str | None) -> pa.Scalar:
    """``value`` as an Arrow ``string`` scalar (null for None)."""
    if value is None:
        return pa.nulls(1, pa.string())[0]
    data = value.encode("utf-8")
    offsets = pa.py_buffer(np.array([0, len(data)], np.int32))
    return pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)])[0]


def utc_microseconds(value: datetime) -> int:
    """Microseconds from the epoch to ``value`` (timezone-aware): how Arrow and Parquet store it."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def utc_microseconds_scalar(value: datetime) -> pa.Scalar:
    """``value`` (timezone-aware) as an Arrow ``timestamp("us", "UTC")`` scalar."""
    data = pa.py_buffer(np.array([utc_microseconds(value)], np.int64))
    return pa.Array.from_buffers(pa.timestamp("us", "UTC"), 1, [None, data])[0]
