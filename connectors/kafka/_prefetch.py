"""Read ahead: the next batch is fetched from Kafka while the previous one is decoded and written.

kafka-python parses every record in Python (it holds the GIL); decoding (pyarrow's JSON reader, polars)
and dlt's parquet writer mostly release it. One reader thread polling while the caller works on the
batch before overlaps the two (measured in ``benchmarks/stream.py``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar, cast

T = TypeVar("T")

_DONE = object()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items`` as produced by a reader thread that keeps up to ``depth`` of them ready.

    An exception in the reader is raised here, at the item where it happened. Closing this generator
    (or an exception in the caller) stops the reader and waits for it, so the source (e.g. a consumer)
    may be closed right afterwards.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for item in items:
                if not hand_over(item):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            hand_over(_Failed(exc))
            return
        hand_over(_DONE)

    thread = threading.Thread(target=reader, name="lakegate-kafka-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield cast(T, item)
    finally:
        stop.set()
        thread.join()
