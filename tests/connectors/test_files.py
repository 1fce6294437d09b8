"""The ``files`` connector: the conformance kit on CSV, then each format and failure mode on real files."""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dlt.extract.exceptions import ResourceExtractionError

from connectors import ConnectorConfigError, get_connector
from connectors.files._readers import _CSV_BLOCK_BYTES
from connectors.testing import load
from lakegate.columns import POSITION, RAW_TEXT, REJECT_REASON, REJECT_RULE, SOURCE


def write(path: Path, content: str | bytes) -> str:
    """Write a file and return its URL, as the connector reports it in ``_lakegate_source``."""
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path.as_uri()


def read(url: str, **config: Any) -> tuple[pa.Table, pa.Table]:
    """Iterate the connector over ``url`` directly; return its (data rows, reject rows)."""
    tables = list(get_connector("files").build({"url": url, **config}))
    everything = pa.concat_tables(tables, promote_options="permissive")
    if REJECT_RULE not in everything.schema.names:
        return everything, everything.slice(0, 0)
    rejected = pc.is_valid(everything[REJECT_RULE])
    return everything.filter(pc.invert(rejected)), everything.filter(rejected)


MALFORMED_CSV = "id,name,amount\n1,ann,10\n2,bob\n3,cy,30\n4,dee,40,extra\n5,eve,50\n"


def test_csv_rows_with_wrong_field_count_are_rejected_with_their_line(tmp_path: Path) -> None:
    url = write(tmp_path / "people.csv", MALFORMED_CSV)
    data, rejects = read(url)

    assert data["id"].to_pylist() == ["1", "3", "5"]
    assert all(pa.types.is_string(data.schema.field(c).type) for c in ("id", "name", "amount"))
    assert rejects[POSITION].to_pylist() == [3, 5]
    assert rejects[REJECT_RULE].to_pylist() == ["csv_field_count", "csv_field_count"]
    assert rejects[RAW_TEXT].to_pylist() == ["2,bob", "4,dee,40,extra"]
    assert set(rejects[SOURCE].to_pylist()) == {url}
    first, second = rejects[REJECT_REASON].to_pylist()
    assert f"{url} line 3" in first and f"{url} line 5" in second
    assert "bob" not in first and "dee" not in second  # reasons never carry the row's values


def test_csv_positions_are_unique_across_data_and_rejects(tmp_path: Path) -> None:
    data, rejects = read(write(tmp_path / "people.csv", MALFORMED_CSV))
    positions = data[POSITION].to_pylist() + rejects[POSITION].to_pylist()
    assert len(set(positions)) == len(positions) == 5


def test_csv_with_a_byte_order_mark_is_read_as_text(tmp_path: Path) -> None:
    data, _ = read(write(tmp_path / "excel.csv", b"\xef\xbb\xbfid,name\n1,ann\n"))
    assert data.select(["id", "name"]).to_pylist() == [{"id": "1", "name": "ann"}]
    assert pa.types.is_string(data.schema.field("id").type)


def test_tsv_suffix_splits_on_tabs(tmp_path: Path) -> None:
    data, _ = read(write(tmp_path / "people.tsv", "id\tname\n1\tann\n"))
    assert data.select(["id", "name"]).to_pylist() == [{"id": "1", "name": "ann"}]


@pytest.mark.parametrize(("content", "why"), [("", "the file is empty"), ("id,name\n", "header only")])
def test_empty_or_header_only_csv_is_one_empty_file_reject(tmp_path: Path, content: str, why: str) -> None:
    url = write(tmp_path / "empty.csv", content)
    data, rejects = read(url)

    assert data.num_rows == 0
    assert rejects.num_rows == 1
    assert rejects[REJECT_RULE][0].as_py() == "empty_file"
    assert rejects[REJECT_REASON][0].as_py().startswith(f"{url}: {why}")
    assert rejects[SOURCE][0].as_py() == url


def test_ndjson_bad_line_is_rejected_and_nested_values_become_json_text(tmp_path: Path) -> None:
    url = write(
        tmp_path / "events.ndjson",
        '{"id": 1, "tags": ["a", "b"], "address": {"city": "Oslo", "zip": "0150"}}\n'
        '{"id": 2, "tags": [\n'
        '{"id": 3, "tags": [], "address": null}\n',
    )
    data, rejects = read(url)

    assert data.select(["id", "tags", "address", POSITION]).to_pylist() == [
        {"id": "1", "tags": '["a","b"]', "address": '{"city":"Oslo","zip":"0150"}', POSITION: 1},
        {"id": "3", "tags": "[]", "address": None, POSITION: 3},
    ]
    assert rejects.select([POSITION, REJECT_RULE, RAW_TEXT]).to_pylist() == [
        {POSITION: 2, REJECT_RULE: "json_syntax", RAW_TEXT: '{"id": 2, "tags": ['}
    ]
    assert f"{url} line 2" in rejects[REJECT_REASON][0].as_py()


def test_json_array_file(tmp_path: Path) -> None:
    url = write(
        tmp_path / "items.json", '[{"id": 1, "name": "a"}, {"id": 2, "name": "b", "extra": {"k": [1, 2]}}]'
    )
    data, rejects = read(url)

    assert rejects.num_rows == 0
    assert data.select(["id", "name", "extra", POSITION, SOURCE]).to_pylist() == [
        {"id": "1", "name": "a", "extra": None, POSITION: 1, SOURCE: url},
        {"id": "2", "name": "b", "extra": '{"k":[1,2]}', POSITION: 2, SOURCE: url},
    ]


def test_parquet_keeps_types_and_streams_row_groups(tmp_path: Path) -> None:
    rows = 5_000
    original = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "price": pa.array([i / 4 for i in range(rows)], pa.float64()),
            "at": pa.array(range(rows), pa.timestamp("us", tz="UTC")),
            "name": pa.array([f"n{i}" for i in range(rows)], pa.string()),
        }
    )
    path = tmp_path / "prices.parquet"
    pq.write_table(original, path, row_group_size=1_000)
    assert pq.ParquetFile(path).num_row_groups == 5

    tables = list(get_connector("files").build({"url": path.as_uri(), "batch_rows": 1_000}))

    assert [t.num_rows for t in tables] == [1_000] * 5
    for table in tables:
        assert table.select(original.column_names).schema.equals(original.schema)
    combined = pa.concat_tables(tables)
    assert combined.select(original.column_names).equals(original)
    assert combined[POSITION].to_pylist() == list(range(1, rows + 1))


def test_gzip_compressed_csv(tmp_path: Path) -> None:
    url = write(tmp_path / "orders.csv.gz", gzip.compress(b"id,amount\n1,10\n2,20\n"))
    data, rejects = read(url)

    assert rejects.num_rows == 0
    assert data.select(["id", "amount", POSITION, SOURCE]).to_pylist() == [
        {"id": "1", "amount": "10", POSITION: 2, SOURCE: url},
        {"id": "2", "amount": "20", POSITION: 3, SOURCE: url},
    ]


def test_unknown_suffix_without_format_is_a_clear_error(tmp_path: Path) -> None:
    url = write(tmp_path / "orders.txt", "id\n1\n")

    with pytest.raises(ResourceExtractionError) as caught:
        read(url)
    cause = caught.value.__cause__
    assert isinstance(cause, ValueError)
    assert url in str(cause) and "set config.format" in str(cause)

    data, _ = read(url, format="csv")
    assert data["id"].to_pylist() == ["1"]


def test_credentials_in_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConnectorConfigError, match=r"config\.url: .*storage_options") as caught:
        get_connector("files").build({"url": "s3://AKIAEXAMPLE:s3cr3t@bucket/drops/*.csv"})
    assert "s3cr3t" not in str(caught.value)


def test_each_file_is_ingested_once_and_new_files_are_picked_up(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    first = write(drop / "a.csv", "id\n1\n2\n")
    config = {"url": f"{drop.as_uri()}/*.csv"}
    pipelines_dir = tmp_path / "pipelines"

    def run() -> list[tuple[str, str]]:
        tables = load(get_connector("files").build(config), pipelines_dir)
        return sorted(
            (row[SOURCE], row["id"]) for t in tables for row in t.select([SOURCE, "id"]).to_pylist()
        )

    assert run() == [(first, "1"), (first, "2")]
    assert run() == []
    second = write(drop / "b.csv", "id\n3\n")
    assert run() == [(second, "3")]


def test_large_csv_is_read_in_bounded_tables(tmp_path: Path) -> None:
    rows, batch_rows = 300_000, 50_000
    line = "{:07d},xxxxxxxxxx,{:04d}\n"
    row_bytes = len(line.format(0, 0))
    path = tmp_path / "big.csv"
    path.write_text("id,pad,n\n" + "".join(line.format(i, i % 997) for i in range(rows)))
    bound = batch_rows + math.ceil(_CSV_BLOCK_BYTES / row_bytes)  # one batch plus at most one parse block

    tables = list(get_connector("files").build({"url": path.as_uri(), "batch_rows": batch_rows}))

    assert sum(t.num_rows for t in tables) == rows
    assert max(t.num_rows for t in tables) <= bound
    assert len(tables) >= math.ceil(rows / bound)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"id,name,name\n1,a,b\n", "columns 'name' and 'name' collide"),
        (b"id,Email,email\n1,a,b\n", "columns 'Email' and 'email' collide"),
        (b"id,_lakegate_source\n1,a\n", "reserved prefix _lakegate_"),
    ],
)
def test_csv_header_that_cannot_be_stored_is_one_file_reject(
    tmp_path: Path, header: bytes, expected: str
) -> None:
    data, rejects = read(write(tmp_path / "bad.csv", header))
    assert data.num_rows == 0
    assert rejects[REJECT_RULE].to_pylist() == ["invalid_header"]
    assert expected in rejects[REJECT_REASON][0].as_py()


def test_csv_in_the_wrong_encoding_is_one_file_reject(tmp_path: Path) -> None:
    data, rejects = read(write(tmp_path / "latin1.csv", "id,city\n1,Köln\n".encode("latin-1")))
    assert data.num_rows == 0
    assert rejects[REJECT_RULE].to_pylist() == ["file_unreadable"]
    assert "latin1.csv" in rejects[REJECT_REASON][0].as_py()


def test_ndjson_keys_that_collide_reject_their_lines_with_raw_text(tmp_path: Path) -> None:
    data, rejects = read(write(tmp_path / "c.ndjson", '{"id": 1, "Email": "a"}\n{"id": 2, "email": "b"}\n'))
    assert data.num_rows == 0
    assert rejects[REJECT_RULE].to_pylist() == ["invalid_header", "invalid_header"]
    assert rejects[RAW_TEXT].to_pylist() == ['{"id": 1, "Email": "a"}', '{"id": 2, "email": "b"}']
