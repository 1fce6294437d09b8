"""PII detection run while a connector writes its own load files, so the write path need not read
them back (see :mod:`lakegate.vetting`).

A :class:`PiiPrescan` vets each typed chunk with the write path's own scan (``scan_batch``, the same
columns and recognizers) and remembers the files made only of clean chunks by their identity on disk
(device, inode, size, modification time): dlt hard-links them into the load package, so the job the
destination loads is the very file vetted. Anything else — a chunk with a finding, declared PII, a file
copied or rewritten on its way, a package left by an earlier process — is scanned by the destination as
always.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from lakegate.dictionary import DICTIONARY_SAMPLE
from zones._records import DatasetSpec, detection_columns, scan_batch
from zones._staged import plain_type
from zones.pii_detection import may_hold_pii

_Identity = tuple[int, int, int, int]


@dataclass(frozen=True)
class _Vetted:
    spec: DatasetSpec
    columns: frozenset[str]


_VETTED: dict[_Identity, _Vetted] = {}
_LOCK = threading.Lock()


def _identity(path: str | Path) -> _Identity | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


TEXT_TYPES = (pa.string(), pa.large_string(), pa.string_view())


def is_text(type_: pa.DataType) -> bool:
    """Whether a column of ``type_`` (dictionary-encoded or not) holds text the scan reads."""
    return plain_type(type_) in TEXT_TYPES


def text_frame(schema: pa.Schema) -> pl.DataFrame:
    """An empty frame of the text columns of ``schema`` (what ``detection_columns`` chooses from)."""
    return pl.DataFrame(schema=[(f.name, pl.String) for f in schema if is_text(f.type)])


class PiiPrescan:
    """The vetter of one dataset's ingest: a chunk is clean when the write path's scan finds nothing in
    it; a dataset with declared PII is never vetted (the write path vaults its values)."""

    def __init__(self, spec: DatasetSpec) -> None:
        self._spec = spec
        self._remembered: set[_Identity] = set()

    def clean(self, frame: pl.DataFrame) -> bool:
        """Whether the write path's scan of ``frame`` finds no PII (and no PII is declared).

        Columns whose values match none of the recognizers' hints cannot hold any (the scan looks no
        further either); a column of few distinct values is tested by those values only.
        """
        if self._spec.pii:
            return False
        columns = detection_columns(frame, self._spec)
        if not any(may_hold_pii(_distinct_if_few(frame.get_column(name))) for name in columns):
            return True
        return not scan_batch(frame, self._spec, None).findings

    def vetted(self, path: str) -> None:
        """Remember ``path`` (a finished load file of clean chunks) until the destination loads it."""
        identity = _identity(path)
        if identity is None or self._spec.pii:
            return
        columns = detection_columns(text_frame(pq.read_schema(path)), self._spec)
        if not columns:
            return  # nothing the write path would scan
        with _LOCK:
            _VETTED[identity] = _Vetted(self._spec, frozenset(columns))
        self._remembered.add(identity)

    def forget(self) -> None:
        """Drop what this ingest remembered and no load job used (a replayed job, a failed load)."""
        with _LOCK:
            for identity in self._remembered:
                _VETTED.pop(identity, None)
        self._remembered.clear()


def _distinct_if_few(values: pl.Series) -> pl.Series:
    """``values``, or their distinct values when the first :data:`DICTIONARY_SAMPLE` hold at most a tenth."""
    sample = values.head(DICTIONARY_SAMPLE)
    return values.unique() if sample.n_unique() <= max(1, sample.len() // 10) else values


def prescanned(path: Path, spec: DatasetSpec, columns: list[str]) -> bool:
    """Whether the load job ``path`` is a file vetted clean for ``spec`` over (at least) ``columns``;
    each vetting answers once."""
    identity = _identity(path)
    with _LOCK:
        vetted = _VETTED.pop(identity, None) if identity is not None else None
    return vetted is not None and vetted.spec == spec and set(columns) <= vetted.columns
