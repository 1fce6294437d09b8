"""The CSV fast path (``connectors/files/_fastcsv.py``) commits exactly what the region path commits.

Each test ingests the same file twice, into two datasets: once as lakegate runs it (chunks typed by polars
and imported as Parquet load files) and once with the fast path declined, and compares the raw tables
and the quarantine row by row.
"""

from __future__ import annotations

import io
import random
import re
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

import pipelines
from connectors.files import _bytecount, _fastcsv
from connectors.files._csv import read_csv
from lakegate import columns as col
from lakegate.textcast import cast_text
from pipelines import PipelineSpec
from transforms import TransformContext, cast_schema
from zones import LoadReport, ZoneName, load_config, open_zone
from zones.destination import ingested_at

COLUMNS = {
    "id": "int64",
    "qty": "int32",
    "price": "float64",
    "ratio": "float32",
    "gift": "bool",
    "day": "date",
    "at": "datetime",
    "note": "string",
}
HEADER = ",".join(COLUMNS) + "\n"
LINEAGE = [col.LOAD_ID, col.RUN_ID, col.INGESTED_AT, col.INGEST_DATE]


def spec(name: str, url: str) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": name,
            "domain": "shop",
            "pattern": "EL",
            "connector": {"type": "files", "config": {"url": url}},
            "primary_key": ["id"],
            "columns": {column: {"type": type_name} for column, type_name in COLUMNS.items()},
        }
    )


def line(i: int, **values: str) -> str:
    row = {
        "id": str(i),
        "qty": str(i % 9),
        "price": f"{i}.25",
        "ratio": "0.1",
        "gift": "true" if i % 3 else "false",
        "day": "2024-02-29",
        "at": f"2024-01-01T10:{i % 60:02d}:00.5",
        "note": f'"n {i}, quoted"',
    }
    row.update(values)
    return ",".join(row.values())


def both(home: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> tuple[LoadReport, LoadReport]:
    """Ingest ``body`` with the fast path (dataset ``fast``) and without it (``slow``)."""
    path = home / "in" / "orders.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((HEADER + body).encode())
    fast = pipelines.ingest(spec("fast", path.as_uri()), run_id="run-1")
    with monkeypatch.context() as patched:
        patched.setattr(_fastcsv, "polars_types", lambda columns: None)  # the fast path declines
        slow = pipelines.ingest(spec("slow", path.as_uri()), run_id="run-1")
    assert (fast.input_rows, fast.committed_rows, fast.quarantined_rows) == (
        slow.input_rows,
        slow.committed_rows,
        slow.quarantined_rows,
    )
    config = load_config()
    for zone, keep in ((ZoneName.RAW, None), (ZoneName.QUARANTINE, [col.POSITION, col.RULE, col.RAW_TEXT])):
        tables = []
        for name in ("fast", "slow"):
            table = open_zone(zone, config).delta_table("shop", name)
            frame = pl.DataFrame() if table is None else pl.read_delta(table)
            if frame.height:
                frame = frame.select(keep) if keep else frame.drop(LINEAGE)
                frame = frame.sort(col.POSITION)
            tables.append(frame)
        assert_frame_equal(tables[0], tables[1], check_column_order=False)  # dlt orders by first seen
    return fast, slow


def chunks_taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Filled, chunk by chunk, with whether the fast path read each one (False: the regions read on)."""
    taken: list[bool] = []
    chunk = _fastcsv.FastReader.chunk

    def counted(self: _fastcsv.FastReader, data: bytes, at: int, feeds: int) -> object:
        read = chunk(self, data, at, feeds)
        taken.append(read is not None)
        return read

    monkeypatch.setattr(_fastcsv.FastReader, "chunk", counted)
    return taken


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fastcsv, "CHUNK_BYTES", 2_000)  # ~25 lines a chunk (a row group)
    monkeypatch.setattr(_fastcsv, "ROW_GROUP_ROWS", 1)  # a row group a chunk
    monkeypatch.setattr(_fastcsv, "FILE_BYTES", 1)  # a load file once a group is encoded


@pytest.mark.usefixtures("small_chunks")
def test_a_clean_file_is_typed_in_chunks_and_each_chunk_adopted(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, _ = both(lakegate_home, "".join(line(i) + "\n" for i in range(200)), monkeypatch)

    assert fast.committed_rows == 200 and fast.quarantined_rows == 0
    assert fast.adopted_jobs >= 4  # a load file (and Delta data file) every 50 rows
    rows = open_zone(ZoneName.RAW, load_config()).read("shop", "fast")
    assert rows[col.POSITION].sort().to_list() == list(range(2, 202))
    assert rows[col.INGESTED_AT].unique().to_list() == [ingested_at(rows[col.LOAD_ID][0])]


@pytest.mark.usefixtures("small_chunks")
def test_a_file_with_crlf_line_ends_takes_the_fast_path(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [line(i) for i in range(120)]
    lines[7] = line(7, qty="n/a")
    fast, _ = both(lakegate_home, "".join(f"{x}\r\n" for x in lines), monkeypatch)

    assert (fast.committed_rows, fast.quarantined_rows) == (119, 1)
    assert fast.adopted_jobs >= 2  # the region path would write one load file of typed rows


@pytest.mark.usefixtures("small_chunks")
def test_one_bad_value_in_the_last_chunk_is_quarantined_at_its_line(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [line(i) for i in range(200)]
    lines[198] = line(198, qty="n/a")
    fast, _ = both(lakegate_home, "".join(f"{x}\n" for x in lines), monkeypatch)

    assert (fast.committed_rows, fast.quarantined_rows) == (199, 1)
    assert fast.adopted_jobs >= 4
    quarantined = open_zone(ZoneName.QUARANTINE, load_config()).read("shop", "fast")
    assert quarantined[col.POSITION].to_list() == [200]  # header = line 1
    assert "n/a" in quarantined[col.RAW_TEXT][0]


ODD_LINES = [
    line(1, qty=" 7"),  # blanks: cast_schema strips them
    line(2, qty="+5", price="1e3", ratio=".5"),
    line(3, qty="0x10", price="inf", ratio="5."),
    line(4, gift="True", day="2024-02-30", at="2024-01-01T10:00:00Z"),
    line(5, gift="yes", at="2024-01-01 10:00"),
    line(6, gift="", day="", at="", qty="", note=""),
    line(7, at="2024-01-01T10:00:00+02:00"),
    line(8, note='"say ""hi"""'),
    line(9, qty="99999999999", price="1,5", at="yesterday"),
]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("".join(f"{x}\n" for x in ODD_LINES * 4), id="odd values"),
        pytest.param("".join(f"{line(i)}\n" for i in range(30)) + line(30)[:9] + "\n", id="missing fields"),
        pytest.param("".join(f"{line(i)}\n" for i in range(30)) + "\n" + line(31) + "\n", id="empty line"),
        pytest.param("".join(f"{line(i)}\r\n" for i in range(30)), id="crlf"),
        pytest.param("".join(f"{line(i)}\r\n" for i in range(30)) + line(30) + "\n", id="crlf and lf"),
        pytest.param("".join(f"{line(i)}\r\n" for i in range(30)) + line(30) + "\r", id="final lone cr"),
        pytest.param("".join(f"{line(i)}\n" for i in range(30)) + line(30, note="a\rb") + "\n", id="lone cr"),
        pytest.param(
            "".join(f"{line(i)}\n" for i in range(30)) + line(30, note='"two\nlines"') + "\n" + line(31),
            id="quoted newline, no final newline",
        ),
        pytest.param("".join(f"{line(i)}\n" for i in range(30)) + line(30) + ",extra\n", id="extra field"),
        pytest.param(
            "".join(f"{line(i)}\n" for i in range(30)) + line(30, note='x"y') + "\n", id="stray quote"
        ),
    ],
)
@pytest.mark.usefixtures("small_chunks")
def test_odd_files_commit_and_quarantine_what_the_region_path_does(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch, body: str
) -> None:
    both(lakegate_home, body, monkeypatch)


@pytest.mark.parametrize("type_name", ["int64", "int32", "float64", "float32", "bool", "date"])
def test_values_read_here_are_read_as_cast_schema_reads_them(type_name: str) -> None:
    values = [
        *("12", " 12", "+5", "-3", "", "1e3", "0x10", "1_000", "12.0", "9223372036854775808", "2147483648"),
        *("1.5", "nan", "inf", "-inf", "+1.5", ".5", "5.", "1,5", "infinity", "3.4028235e38", "1e-46"),
        *("0.1000000000000000055511151231257827", "16777217", "true", "false", "1", "0", "True", "t"),
        *("2024-01-01", "2024-1-1", "2024-02-30", "20240101", "2024-01-01T00:00:00", "\uff11\uff12"),
    ]
    dtype = _fastcsv.polars_types({"c": type_name})
    assert dtype is not None
    value, form = _fastcsv._read("c", dtype["c"])
    fast = pl.DataFrame({"c": values}).select(value, form)
    read = fast.to_series(1) & (fast.to_series(0).is_not_null() | (pl.Series(values) == ""))
    ctx = TransformContext(primary_key=(), schema={"c": type_name}, order_by=())
    reference = cast_schema(pl.DataFrame({"c": values}).lazy(), ctx).collect()["c"]
    assert read.sum() > 1
    for i, ok in enumerate(read):
        if ok:
            assert fast.to_series(0)[i] == reference[i] or (
                fast.to_series(0)[i] != fast.to_series(0)[i] and reference[i] != reference[i]  # NaN
            ), values[i]


def test_the_lineage_stamped_here_is_the_zones() -> None:
    for load_id in ("1796055171.7345698", "1700000000.5", "1700000000"):
        assert _fastcsv.Stamp.of(load_id, "r").ingested_at == ingested_at(load_id)


HAZARDS = [
    lambda i: line(i)[:12],  # missing fields
    lambda i: line(i) + ",extra",
    lambda i: "",  # an empty line
    lambda i: line(i, note='"two\nlines"'),
    lambda i: line(i, note='x"y'),
    lambda i: line(i) + "\r",
]
ODD_VALUES = [{"qty": "n/a"}, {"price": " 2.5"}, {"gift": "maybe"}, {"at": "2024-01-01T10:00Z"}, {"day": "x"}]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.usefixtures("small_chunks")
def test_seeded_files_with_rare_hazards_commit_what_the_region_path_does(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    lines = []
    for i in range(300):
        if i >= 100 and rng.random() < 0.01:  # hazards after some chunks the fast path takes
            lines.append(rng.choice(HAZARDS)(i))
        elif rng.random() < 0.05:
            lines.append(line(i, **rng.choice(ODD_VALUES)))
        else:
            lines.append(line(i))
    taken = chunks_taken(monkeypatch)
    both(lakegate_home, "\n".join(lines) + rng.choice(["", "\n"]), monkeypatch)
    assert any(taken)  # the fast path read some of the file (a reject makes dlt rewrite its load files)


class _FailingFile(io.RawIOBase):
    """A file whose reads fail from byte ``fail_at`` on (a network share or bucket that drops mid-file)."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        self._data, self._fail_at, self._at = data, fail_at, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._at >= self._fail_at:
            raise OSError("connection reset")
        piece = self._data[self._at : min(self._at + len(buffer), self._fail_at)]
        buffer[: len(piece)] = piece
        self._at += len(piece)
        return len(piece)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("share", [0.003, 0.3, 0.55, 0.8])
def test_a_read_that_fails_midway_keeps_every_line_before_it_and_rejects_the_rest(
    tmp_path: Path, share: float
) -> None:
    data = (HEADER + "".join(line(i) + "\n" for i in range(3_000))).encode()
    fail_at = int(len(data) * share)
    handle = io.BufferedReader(_FailingFile(data, fail_at), buffer_size=512)
    fast = _fastcsv.FastPath(_fastcsv.Stamp.of("1764543000.5", "run-1"), tmp_path, None)
    positions: list[int] = []
    rejects = []
    items = read_csv(
        handle, "orders.csv", delimiter=",", encoding="utf-8", batch_rows=100, columns=COLUMNS, fast=fast
    )
    for item in items:
        table = pq.read_table(item.meta.file_path) if not isinstance(item, pa.Table) else item
        if col.REJECT_RULE in table.column_names:
            rejects += table.select([col.POSITION, col.REJECT_RULE]).to_pylist()
        else:
            positions += table[col.POSITION].to_pylist()

    # Every line read is kept, once, and the reject names the first line not read (the bytes of the read
    # that failed are lost with it: up to a chunk before the failure).
    read = len(positions)
    assert sorted(positions) == list(range(2, read + 2))
    assert rejects == [{col.POSITION: read + 2, col.REJECT_RULE: "file_unreadable"}]
    assert data[:fail_at].count(b"\n") - 1 - read <= (_fastcsv.CHUNK_BYTES * 2) // len(line(0))


@pytest.mark.parametrize(
    "value", ["2024-03-01", "2024-03-01 10:00", "2024-03-01T10:00:00Z", "2024-03-01T10:00:00.5+02:00"]
)
def test_a_datetime_column_of_one_form_is_typed_whole(tmp_path: Path, value: str) -> None:
    """The first datetime picks the form a chunk types (with or without an offset): a date alone, which
    ends in what looks like an offset (``-01``), must not send every row to the zone as text."""
    data = (HEADER + "".join(line(i, at=value) + "\n" for i in range(30))).encode()
    fast = _fastcsv.FastPath(_fastcsv.Stamp.of("1700000000.5", "run-1"), tmp_path)
    reader = _fastcsv.FastReader.open(io.BytesIO(data), "file:///in/orders.csv", ",", "utf-8", COLUMNS, fast)
    assert reader is not None
    read = list(reader.chunks())
    assert [type(part) for part in read] == [_fastcsv.Imported]
    assert isinstance(read[0], _fastcsv.Imported)
    assert pl.read_parquet(read[0].path)["at"].null_count() == 0


def _mutations(seed: str) -> list[str]:
    """``seed`` with each character replaced by each of a set of look-alikes."""
    swaps = "0123456789-:T .Z+tx/\u0661"
    return [seed[:i] + c + seed[i + 1 :] for i in range(len(seed)) for c in swaps if c != seed[i]]


def test_a_datetime_of_a_plain_length_is_read_as_the_regular_expression_reads_it() -> None:
    """A datetime without an offset is taken on its length (``_NAIVE_LENGTHS``) and read by pyarrow's
    parse into a timestamp without a zone: that reads what the regular expression and the strict parse
    read, and refuses what either refuses (a lone hour, an offset, a seventh decimal...)."""
    seeds = ["2024-02-29", "2024-01-01T10", "2024-01-01T10:00", "2024-01-01 10:00:59", "2024-01-01T10:00Z"]
    seeds += ["2024-01-01T10:00:00." + "1" * n for n in range(8)]
    texts = sorted({t for seed in seeds for t in [seed, *_mutations(seed)]})
    assert len(texts) > 5_000
    utc, naive_form = pa.timestamp("us", "UTC"), re.compile(_fastcsv._NAIVE.replace("$", r"\Z"))
    read = 0
    for text in texts:
        cheap = None
        if len(text.encode()) in _fastcsv._NAIVE_LENGTHS:
            cheap = cast_text(pa.array([text]), utc, forms_checked=True, naive=True)
        strict = cast_text(pa.array([text]), utc, forms_checked=True) if naive_form.match(text) else None
        assert (cheap is None) == (strict is None), text
        if cheap is not None and strict is not None:
            assert cheap.equals(strict), text
            read += 1
    assert read > 50


@pytest.mark.usefixtures("small_chunks")
def test_a_datetime_of_a_plain_length_pyarrow_refuses_leaves_the_fast_path_on(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [line(i) for i in range(200)]
    lines[60] = line(60, at="2024-01-01T10:00+01")  # an offset, in the length of a plain form
    lines[61] = line(61, at="2024-13-01T10:00:00")  # no 13th month
    lines[150] = line(150, at="2024-01-01T10:00:0x")
    taken = chunks_taken(monkeypatch)
    fast, _ = both(lakegate_home, "".join(f"{x}\n" for x in lines), monkeypatch)

    assert taken and all(taken)  # every chunk read here, the odd values as text
    assert (fast.committed_rows, fast.quarantined_rows) == (198, 2)


def test_quotes_and_line_breaks_are_counted_across_the_blocks_a_chunk_is_compared_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_bytecount, "BLOCK", 4)
    rng = random.Random(7)
    for _ in range(500):
        data = "".join(rng.choice('ab,"\n') for _ in range(rng.randrange(0, 30))).encode()
        assert _bytecount.quotes(data) == (data.count(b'"'), b'""' in data), data
        assert _bytecount.count(data, ord("\n")) == data.count(b"\n"), data
        crlf = data.replace(b'"', b"\r")
        expected = crlf.count(b"\r") if crlf.count(b"\r") == crlf.count(b"\r\n") else None
        breaks = crlf.count(b"\r")  # (one per line break when every \r ends a line)
        assert _bytecount.carriage_returns(crlf, breaks) == expected, crlf
