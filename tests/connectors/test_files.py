"""The ``files`` connector: the conformance kit on CSV, then each format and failure mode on real files."""

from __future__ import annotations

import codecs
import gzip
import math
from pathlib import Path
from typing import Any
from uuid import uuid4

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dlt.extract.exceptions import ResourceExtractionError

from connectors import ConnectorConfigError, get_connector
from connectors.files import _csv
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
    committed: dict[str, int] = {}  # the zone's record of ingested files
    files = get_connector("files")

    def run() -> list[tuple[str, str]]:  # each run on a fresh machine: no dlt folder
        tables = load(
            files.build(files.resumed(config, committed)), tmp_path / uuid4().hex, committed=committed
        )
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
    bound = batch_rows + math.ceil(_csv.CSV_BLOCK_BYTES / row_bytes)  # one batch plus at most one parse block

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


def test_ndjson_key_that_collides_with_an_earlier_spelling_rejects_its_line_alone(tmp_path: Path) -> None:
    data, rejects = read(
        write(tmp_path / "c.ndjson", '{"id": 1, "Email": "a"}\n{"id": 2, "email": "b"}\n{"id": 3}\n')
    )
    assert data.select(["id", "Email", POSITION]).to_pylist() == [
        {"id": "1", "Email": "a", POSITION: 1},
        {"id": "3", "Email": None, POSITION: 3},
    ]
    assert rejects.select([POSITION, REJECT_RULE, RAW_TEXT]).to_pylist() == [
        {POSITION: 2, REJECT_RULE: "invalid_header", RAW_TEXT: '{"id": 2, "email": "b"}'}
    ]


# --- record-level rejects: a bad record never costs its neighbours -------------------------------------


def assert_every_record_once(data: pa.Table, rejects: pa.Table, records: int, first: int = 2) -> None:
    """Input records = data rows + reject rows, record by record: positions first..first+records-1."""
    positions = data[POSITION].to_pylist() + rejects[POSITION].to_pylist()
    assert sorted(positions) == list(range(first, first + records))


def test_csv_line_with_an_invalid_byte_is_rejected_alone(tmp_path: Path) -> None:
    url = write(tmp_path / "people.csv", b"id,name\n1,ann\n2,bob\n3,cy\n4,d\xe9e\\x\n5,eve\n")
    data, rejects = read(url)

    assert data.select(["id", POSITION]).to_pylist() == [
        {"id": str(n), POSITION: n + 1} for n in (1, 2, 3, 5)
    ]
    assert rejects.select([POSITION, REJECT_RULE]).to_pylist() == [
        {POSITION: 5, REJECT_RULE: "invalid_encoding"}
    ]
    raw = rejects[RAW_TEXT][0].as_py()
    assert raw == "4,d\\xe9e\\\\x"  # the bad byte as \xNN, a backslash doubled: decodes back to the bytes
    assert codecs.escape_decode(raw.encode())[0] == b"4,d\xe9e\\x"
    reason = rejects[REJECT_REASON][0].as_py()
    assert reason == f"{url} line 5: not valid utf8 (first bad byte at character 4)"  # no values
    assert_every_record_once(data, rejects, 5)


def test_stray_quote_mid_file_rejects_its_line_and_the_rest_loads(tmp_path: Path) -> None:
    url = write(tmp_path / "q.csv", 'id,name,amount\n1,ann,10\n2,"bob,20\n3,cy,30\n4,"d, e",40\n5,eve,50\n')
    data, rejects = read(url)

    assert data.select(["id", "name", POSITION]).to_pylist() == [
        {"id": "1", "name": "ann", POSITION: 2},
        {"id": "3", "name": "cy", POSITION: 4},
        {"id": "4", "name": "d, e", POSITION: 5},
        {"id": "5", "name": "eve", POSITION: 6},
    ]
    assert rejects.select([POSITION, REJECT_RULE, RAW_TEXT]).to_pylist() == [
        {POSITION: 3, REJECT_RULE: "csv_quote", RAW_TEXT: '2,"bob,20'}
    ]
    assert f"{url} line 3" in rejects[REJECT_REASON][0].as_py()


def test_unterminated_quote_on_the_last_line_is_rejected(tmp_path: Path) -> None:
    data, rejects = read(write(tmp_path / "q.csv", 'id,name\n1,ann\n2,"bob'))
    assert data[POSITION].to_pylist() == [2]
    assert rejects.select([POSITION, REJECT_RULE]).to_pylist() == [{POSITION: 3, REJECT_RULE: "csv_quote"}]


def test_quoted_newlines_load_and_empty_lines_are_not_records(tmp_path: Path) -> None:
    content = 'id,note\r\n1,"two\nlines"\r\n\n2,plain\n\r\n3,"x, ""y"""\n'
    data, rejects = read(write(tmp_path / "n.csv", content))
    assert rejects.num_rows == 0
    assert data.select(["id", "note", POSITION]).to_pylist() == [
        {"id": "1", "note": "two\nlines", POSITION: 2},
        {"id": "2", "note": "plain", POSITION: 5},
        {"id": "3", "note": 'x, "y"', POSITION: 7},
    ]


def test_ragged_rows_mixed_with_invalid_bytes_across_regions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_csv, "CSV_BLOCK_BYTES", 64)  # many regions: clean ones take pyarrow's path
    lines, expected = [], {}
    for n in range(2, 302):
        if n % 37 == 0:
            lines.append(b"%d,\xff\xfe,x" % n)
            expected[n] = "invalid_encoding"
        elif n % 23 == 0:
            lines.append(b"%d,too,many,fields" % n)
            expected[n] = "csv_field_count"
        elif n % 41 == 0:
            lines.append(b"%d,\xff" % n)  # both bad: the encoding is what is reported
            expected[n] = "invalid_encoding"
        else:
            lines.append(b"%d,ok,x" % n)
    data, rejects = read(write(tmp_path / "mixed.csv", b"id,a,b\n" + b"\n".join(lines) + b"\n"))

    assert dict(zip(rejects[POSITION].to_pylist(), rejects[REJECT_RULE].to_pylist(), strict=True)) == expected
    assert data["id"].to_pylist() == [str(p) for p in data[POSITION].to_pylist()]
    assert_every_record_once(data, rejects, 300)


def test_gzip_that_is_not_gzip_is_one_file_reject_and_other_files_load(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    bad = write(drop / "a.csv.gz", "id,secret\n1,hunter2\n")
    good = write(drop / "b.csv.gz", gzip.compress(b"id,secret\n2,x\n"))
    data, rejects = read(f"{drop.as_uri()}/*.csv.gz")

    assert data.select(["id", SOURCE]).to_pylist() == [{"id": "2", SOURCE: good}]
    assert rejects.select([SOURCE, POSITION, REJECT_RULE]).to_pylist() == [
        {SOURCE: bad, POSITION: None, REJECT_RULE: "file_unreadable"}
    ]
    assert (
        "not gzip" in rejects[REJECT_REASON][0].as_py() and "hunter2" not in rejects[REJECT_REASON][0].as_py()
    )


def test_truncated_gzip_loads_what_it_holds_and_rejects_the_rest(tmp_path: Path) -> None:
    body = b"id,n\n" + b"".join(b"%d,x\n" % i for i in range(20_000))
    url = write(tmp_path / "t.csv.gz", gzip.compress(body)[:-5_000])
    data, rejects = read(url)

    assert data.num_rows > 0
    assert rejects[REJECT_RULE].to_pylist() == ["file_unreadable"]
    assert rejects[POSITION].to_pylist() == [data.num_rows + 2]  # the first line not read
    assert data[POSITION].to_pylist() == list(range(2, data.num_rows + 2))


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16"])
def test_declared_encodings_still_work(tmp_path: Path, encoding: str) -> None:
    url = write(tmp_path / "enc.csv", "id,city\n1,Köln\n2,Zürich\n3,Besançon\n".encode(encoding))
    data, rejects = read(url, encoding=encoding)
    assert rejects.num_rows == 0
    assert data.select(["city", POSITION]).to_pylist() == [
        {"city": "Köln", POSITION: 2},
        {"city": "Zürich", POSITION: 3},
        {"city": "Besançon", POSITION: 4},
    ]


def test_cp1252_undefined_byte_rejects_its_line_alone(tmp_path: Path) -> None:
    data, rejects = read(write(tmp_path / "w.csv", b"id,v\n1,\x80uro\n2,\x81\n3,ok\n"), encoding="cp1252")
    assert data.select(["v", POSITION]).to_pylist() == [{"v": "€uro", POSITION: 2}, {"v": "ok", POSITION: 4}]
    assert rejects.select([POSITION, REJECT_RULE, RAW_TEXT]).to_pylist() == [
        {POSITION: 3, REJECT_RULE: "invalid_encoding", RAW_TEXT: "2,\\x81"}
    ]


def test_ndjson_bad_lines_are_rejected_one_by_one(tmp_path: Path) -> None:
    url = write(
        tmp_path / "e.ndjson",
        b'{"id": 1, "n": 5}\n'
        b'{"id": 2, "n": \n'  # truncated
        b'{"id": "three", "n": [1, 2.50]}\n'  # other types: kept as text, typed by the destination
        b"\n"
        b'{"id": 5, "n": 123456789012345678901234567890.000000000000000000001}\n'
        b"[1, 2]\n"
        b'{"id": 7, "n": "\xff"}\n'
        b'{"id": 8, "n": NaN}\n'
        b'{"id": 9, "_lakegate_x": 1}\n'
        b'{"id": 10}',
    )
    data, rejects = read(url)

    assert data.select(["id", "n", POSITION]).to_pylist() == [
        {"id": "1", "n": "5", POSITION: 1},
        {"id": "three", "n": "[1,2.50]", POSITION: 3},
        {"id": "5", "n": "123456789012345678901234567890.000000000000000000001", POSITION: 5},
        {"id": "10", "n": None, POSITION: 10},
    ]
    assert rejects.select([POSITION, REJECT_RULE]).to_pylist() == [
        {POSITION: 2, REJECT_RULE: "json_syntax"},
        {POSITION: 6, REJECT_RULE: "json_syntax"},
        {POSITION: 7, REJECT_RULE: "invalid_encoding"},
        {POSITION: 8, REJECT_RULE: "json_syntax"},
        {POSITION: 9, REJECT_RULE: "invalid_header"},
    ]
    assert rejects[RAW_TEXT][2].as_py() == '{"id": 7, "n": "\\xff"}'
    for position, reason in zip(
        rejects[POSITION].to_pylist(), rejects[REJECT_REASON].to_pylist(), strict=True
    ):
        assert reason.startswith(f"{url} line {position}: ")


def test_truncated_parquet_is_one_file_reject_and_other_files_load(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), drop / "a.parquet")
    pq.write_table(pa.table({"id": [3], "extra": [1.5]}), drop / "b.parquet")  # drift: a new column
    whole = (drop / "a.parquet").read_bytes()
    cut = write(drop / "c.parquet", whole[: len(whole) // 2])
    data, rejects = read(f"{drop.as_uri()}/*.parquet")

    assert data.num_rows == 3
    assert rejects.select([SOURCE, POSITION, REJECT_RULE]).to_pylist() == [
        {SOURCE: cut, POSITION: None, REJECT_RULE: "file_unreadable"}
    ]


def test_bad_records_reach_quarantine_alone_through_the_zone_destination(lakegate_home: Path) -> None:
    """End to end: files connector -> dlt -> zone destination; raw text of a PII dataset is tokenized."""
    import dlt
    import polars as pl

    from zones import (
        DatasetSpec,
        LoadReport,
        LoadTarget,
        PiiMethod,
        ZoneName,
        lakegate_destination,
        load_config,
        open_zone,
    )

    drop = lakegate_home / "drop"
    drop.mkdir(parents=True)
    csv_url = write(
        drop / "people.csv",
        b"id,email,age\n1,a@x.io,30\n2,b@x.io,forty\n3,c@x.io,50\n4,d\xe9@x.io,60\n5,e@x.io,70,9\n6,f@x.io,80\n",
    )
    write(drop / "broken.csv.gz", b"id,email,age\n7,g@x.io,1\n")  # named .gz, not gzip
    spec = DatasetSpec(
        domain="crm",
        name="people",
        schema={"id": "int64", "email": "string", "age": "int64"},
        primary_key=("id",),
        pii={"email": PiiMethod.TOKENIZE},
    )
    report = LoadReport()
    target = LoadTarget(
        dataset=spec, zone=ZoneName.RAW, pipeline="people", run_id="run-1", config=load_config(), merge=False
    )
    pipeline = dlt.pipeline(
        pipeline_name="people",
        pipelines_dir=str(lakegate_home / "dlt"),
        destination=lakegate_destination(target, report),
        dataset_name="crm",
    )
    pipeline.run(get_connector("files").build({"url": f"{drop.as_uri()}/*"}).with_name("people"))

    assert (report.input_rows, report.committed_rows, report.quarantined_rows) == (7, 3, 4)
    config = load_config()
    raw = open_zone("raw", config).read("crm", "people").sort("id")
    assert raw["id"].to_list() == [1, 3, 6]
    quarantine = (
        open_zone("quarantine", config).read("crm", "people").sort("_lakegate_position", nulls_last=True)
    )
    assert quarantine.select("_lakegate_position", "_lakegate_rule").rows() == [
        (3, quarantine["_lakegate_rule"][0]),  # 'forty' does not cast: the destination's rule
        (5, "invalid_encoding"),
        (6, "csv_field_count"),
        (None, "file_unreadable"),
    ]
    assert quarantine["_lakegate_rule"][0] != "invalid_encoding"
    assert quarantine.filter(pl.col("_lakegate_position") == 5)["_lakegate_source"].to_list() == [csv_url]
    everything = quarantine.write_csv()
    assert "@x.io" not in everything  # raw text of rejects is tokenized like the PII column itself


def test_declared_ndjson_is_read_line_by_line_whatever_the_suffix(tmp_path: Path) -> None:
    url = write(tmp_path / "export.json", b'[1, 2]\n{"id": "3"}\n')

    data, rejects = read(url, format="ndjson")
    assert data["id"].to_pylist() == ["3"]
    assert [(r[POSITION], r[REJECT_RULE]) for r in rejects.to_pylist()] == [(1, "json_syntax")]


def test_declared_columns_are_typed_as_parsed_and_unreadable_rows_stay_text(tmp_path: Path) -> None:
    url = write(tmp_path / "t.csv", "id,qty,note\n1,5,a\n2,five,b\n3,,c\n")
    tables = list(get_connector("files").build({"url": url, "columns": {"id": "int64", "qty": "int32"}}))
    typed, text = tables  # typed rows first; rows left as text after them (one load file each)
    assert typed.schema.field("id").type == pa.int64() and typed.schema.field("qty").type == pa.int32()
    assert typed.select(["id", "qty", "note", POSITION]).to_pylist() == [
        {"id": 1, "qty": 5, "note": "a", POSITION: 2},
        {"id": 3, "qty": None, "note": "c", POSITION: 4},  # empty is null, as the zone reads it
    ]
    assert text.select(["id", "qty", POSITION]).to_pylist() == [{"id": "2", "qty": "five", POSITION: 3}]
