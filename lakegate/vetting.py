"""The check a zone lends a connector that writes its own load files (the ``files`` CSV fast path).

Each typed chunk is vetted as the zone's write path will vet it (PII by content) while it is still in
memory, on the connector's parse threads; a load file made only of clean chunks is then committed
without being read back for that scan. The zone decides what "clean" means (``zones.prescan``); the
connector only calls the vetter it finds in :data:`CHUNK_VETTER` (none: the zone scans every file, as
it always may).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

import polars as pl


class ChunkVetter(Protocol):
    """Vets chunks of a load file the connector writes, and learns which files hold only vetted ones."""

    def clean(self, frame: pl.DataFrame) -> bool:
        """Whether the zone would find nothing to protect in ``frame``, the chunk's rows as they are written
        (text columns as text; thread-safe)."""
        ...

    def vetted(self, path: str) -> None:
        """``path``, a finished load file, holds only chunks :meth:`clean` passed."""
        ...


CHUNK_VETTER: ContextVar[ChunkVetter | None] = ContextVar("lakegate_chunk_vetter", default=None)
"""The vetter of the ingest being extracted (set by ``pipelines.ingest``; read when a file is opened)."""
