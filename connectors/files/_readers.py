"""The readers by format: each turns one open file into Arrow tables of bounded size plus reject rows.

Text formats (CSV, JSON) are read as text, exactly as received: typing against the dataset's declared
schema happens in the zone destination, where a value that does not cast is quarantined instead of
failing the whole file. CSV's declared columns are typed while parsing, with the zone's own rules, and a
row with a value those rules do not read there stays text for the zone (see ``_typed``). Records that
cannot be parsed come out as reject rows, one per record; a file becomes a single reject row only when
it cannot be read at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.files._csv import read_csv
from connectors.files._json import read_json
from connectors.files._rows import file_reject, reject_table, with_lineage, with_positions
from connectors.files._text import READ_ERRORS

__all__ = ["read_csv", "read_json", "read_parquet", "with_lineage", "with_positions"]


def read_parquet(handle: IO[bytes], source: str, *, batch_rows: int) -> Iterator[pa.Table]:
    """Stream a Parquet file row group by row group, keeping its types.

    A file that is not Parquet (or whose footer is truncated) is one ``file_unreadable`` reject; a row
    group that fails to decode ends the file with one ``file_unreadable`` reject at the first row not read.
    Pages that carry a CRC are verified, so a corrupt byte in them is such a failure, not a wrong value.
    """
    try:
        parquet = pq.ParquetFile(handle, pre_buffer=False, page_checksum_verification=True)
    except (pa.ArrowException, *READ_ERRORS) as exc:
        yield file_reject(source, "file_unreadable", f"not a readable Parquet file ({type(exc).__name__})")
        return
    position = 1
    for group in range(parquet.metadata.num_row_groups):  # a bad group must not take its neighbours
        batches = parquet.iter_batches(batch_size=batch_rows, row_groups=[group])
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (pa.ArrowException, *READ_ERRORS) as exc:
                problem = f"{source} row {position}: rows from here on cannot be read ({type(exc).__name__})"
                yield reject_table(source, [(position, "file_unreadable", problem, None)])
                return
            yield with_lineage(pa.Table.from_batches([batch]), source, position)
            position += batch.num_rows
