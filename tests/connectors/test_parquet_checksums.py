"""A corrupt byte in a Parquet page that carries a CRC is caught at read: the rows from that row group on
are one ``file_unreadable`` reject, never committed with a silently changed value."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from connectors import get_connector
from connectors.testing import load
from lakegate.columns import POSITION, REJECT_REASON, REJECT_RULE


def test_a_flipped_byte_in_a_checksummed_page_is_a_reject_from_its_row_group(tmp_path: Path) -> None:
    table = pa.table({"id": list(range(2_000)), "name": [f"n{i}" for i in range(2_000)]})
    path = tmp_path / "orders.parquet"
    pq.write_table(
        table, path, write_page_checksum=True, compression="none", use_dictionary=False, row_group_size=1_000
    )
    data = bytearray(path.read_bytes())
    ids = pq.ParquetFile(path).metadata.row_group(1).column(0)
    data[ids.data_page_offset + ids.total_compressed_size // 2] ^= 0xFF  # a value of row group 2
    path.write_bytes(bytes(data))

    files = get_connector("files")
    tables = load(files.build({"url": path.as_uri()}), tmp_path / "dlt")
    out = pa.concat_tables(tables, promote_options="default")
    good = out.filter(pa.compute.is_null(out[REJECT_RULE]))
    rejects = out.filter(pa.compute.is_valid(out[REJECT_RULE]))
    assert good["id"].to_pylist() == list(range(1_000)), "the intact row group is kept, value for value"
    assert rejects[REJECT_RULE].to_pylist() == ["file_unreadable"]
    assert rejects[POSITION].to_pylist() == [1_001]
    assert "rows from here on cannot be read" in rejects[REJECT_REASON][0].as_py()
