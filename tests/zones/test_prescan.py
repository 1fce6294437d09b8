"""PII detection while the CSV fast path writes its load files (``zones/prescan.py``).

A file of chunks all vetted clean is committed without the write path reading it back; a file with
PII in any chunk, a file changed after it was vetted, or another dataset's file is scanned as always.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipelines
from connectors.files import _fastcsv
from pipelines import PipelineSpec
from zones import DatasetSpec, PiiMethod, ZoneName, load_config, open_zone
from zones.prescan import PiiPrescan, prescanned

HEADER = "id,qty,note\n"
EMAIL = "jane.doe@example.org"


def spec(name: str, url: str) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": name,
            "domain": "shop",
            "pattern": "EL",
            "connector": {"type": "files", "config": {"url": url}},
            "primary_key": ["id"],
            "columns": {"id": {"type": "int64"}, "qty": {"type": "int32"}, "note": {"type": "string"}},
        }
    )


def drop(home: Path, lines: list[str]) -> str:
    path = home / "in" / "orders.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(lines))
    return path.as_uri()


def raw_notes(name: str) -> list[str]:
    table = open_zone(ZoneName.RAW, load_config()).delta_table("shop", name)
    return pl.from_arrow(table.to_pyarrow_table(columns=["note"]))["note"].to_list()  # type: ignore[index, union-attr]


def test_a_clean_file_is_committed_without_being_read_back(lakegate_home: Path) -> None:
    url = drop(lakegate_home, [f"{i},{i % 7},parcel {i} left at the depot\n" for i in range(500)])
    report = pipelines.ingest(spec("clean", url), run_id="run-1")
    assert (report.committed_rows, report.adopted_jobs, report.prescanned_jobs) == (500, 1, 1)
    assert len(raw_notes("clean")) == 500


def test_pii_in_one_chunk_of_many_sends_the_file_to_the_write_path_scan(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fastcsv, "CHUNK_BYTES", 512)  # ~20 chunks; the email sits in a middle one
    lines = [f"{i},{i % 7},parcel {i} left at the depot\n" for i in range(600)]
    lines[300] = f"300,1,call back {EMAIL} please\n"
    report = pipelines.ingest(spec("found", drop(lakegate_home, lines)), run_id="run-1")
    assert report.prescanned_jobs == 0
    assert report.committed_rows == 600
    assert sum(report.pii_found.values()) == 1
    notes = raw_notes("found")
    assert not any(EMAIL in note for note in notes)  # tokenized by the write path, as without vetting
    assert sum("call back" in note for note in notes) == 1


def test_a_vetted_file_answers_once_for_its_dataset_and_not_once_changed(tmp_path: Path) -> None:
    dataset = DatasetSpec(domain="shop", name="orders", schema={"id": "int64", "note": "string"})
    table = pa.table({"id": [1, 2], "note": ["a parcel", "another parcel"]})
    vetter = PiiPrescan(dataset)
    assert vetter.clean(pl.DataFrame(table))
    assert not vetter.clean(pl.DataFrame({"id": [3], "note": [f"mail {EMAIL}"]}))

    path = tmp_path / "job.parquet"
    pq.write_table(table, path)
    vetter.vetted(str(path))
    other = DatasetSpec(domain="shop", name="returns", schema=dataset.schema)
    assert not prescanned(path, other, ["note"])  # another dataset's scan settings: scanned again

    vetter.vetted(str(path))
    assert prescanned(path, dataset, ["note"])
    assert not prescanned(path, dataset, ["note"])  # each vetting answers once

    vetter.vetted(str(path))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))  # rewritten since it was vetted
    assert not prescanned(path, dataset, ["note"])

    vetter.vetted(str(path))
    assert not prescanned(path, dataset, ["note", "comment"])  # a column the vetting did not scan

    vetter.vetted(str(path))
    vetter.forget()  # the ingest is over: what no load job used is dropped
    assert not prescanned(path, dataset, ["note"])


def test_declared_pii_is_never_vetted(tmp_path: Path) -> None:
    dataset = DatasetSpec(domain="shop", name="people", pii={"email": PiiMethod.TOKENIZE})
    vetter = PiiPrescan(dataset)
    table = pa.table({"id": [1], "email": ["x"]})
    assert not vetter.clean(pl.DataFrame(table))
    path = tmp_path / "job.parquet"
    pq.write_table(table, path)
    vetter.vetted(str(path))
    assert not prescanned(path, dataset, ["email"])


@pytest.mark.parametrize("where", [0, 1_999])
def test_pii_in_one_value_of_a_few_valued_column_is_found(where: int) -> None:
    """A column of few distinct values is vetted by those values: PII among them, wherever its first row
    (inside or past the sample that finds the column few-valued), still makes the chunk unclean."""
    statuses = ["open", "shipped", "returned"] * 700
    statuses[where] = f"call back {EMAIL}"
    frame = pl.DataFrame({"status": statuses, "note": [f"parcel {i}" for i in range(len(statuses))]})
    prescan = PiiPrescan(DatasetSpec("shop", "orders", schema={"status": "string", "note": "string"}))
    assert prescan.clean(frame.with_columns(pl.col("status").str.replace(EMAIL, "the depot", literal=True)))
    assert not prescan.clean(frame)
