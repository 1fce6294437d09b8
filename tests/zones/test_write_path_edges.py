"""Edge cases of the write path: nothing blocks the pipeline, nothing is silently lost or leaked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dlt
import polars as pl
import pyarrow as pa

from zones import (
    DatasetSpec,
    LoadReport,
    LoadTarget,
    PiiMethod,
    ZoneName,
    lakegate_pipeline,
    load_config,
    open_zone,
)


def load(
    home: Path, spec: DatasetSpec, table: pa.Table, *, merge: bool = False, run: str = "r"
) -> LoadReport:
    report = LoadReport()
    zone = ZoneName.CURATED if merge else ZoneName.RAW
    target = LoadTarget(
        dataset=spec, zone=zone, pipeline="edge", run_id=run, config=load_config(), merge=merge
    )

    @dlt.resource(name=spec.name)
    def rows() -> Iterator[pa.Table]:
        yield table

    with lakegate_pipeline(f"edge_{spec.name}_{run}", target, report, home / "dlt") as pipeline:
        pipeline.run(rows())
    return report


def lineage(n: int) -> dict[str, list[object]]:
    return {"_lakegate_source": ["mem://x"] * n, "_lakegate_position": list(range(1, n + 1))}


def test_a_type_change_is_quarantined_and_does_not_block_later_loads(lakegate_home: Path) -> None:
    spec = DatasetSpec(domain="d", name="t")  # no declared schema: types come from the source
    load(lakegate_home, spec, pa.table({"n": [1, 2], **lineage(2)}), run="a")
    report = load(lakegate_home, spec, pa.table({"n": ["x", "y"], **lineage(2)}), run="b")
    assert (report.committed_rows, report.quarantined_rows, dict(report.rules)) == (0, 2, {"load_failed": 2})
    reason = open_zone("quarantine", load_config()).read("d", "t")["_lakegate_reason"][0]
    assert "column 'n' is int64 in the table but large_string in this load" in reason
    load(lakegate_home, spec, pa.table({"n": [3], **lineage(1)}), run="c")
    assert sorted(open_zone("raw", load_config()).read("d", "t")["n"].to_list()) == [1, 2, 3]


def test_a_new_column_is_added_to_the_table(lakegate_home: Path) -> None:
    spec = DatasetSpec(domain="d", name="evolve")
    load(lakegate_home, spec, pa.table({"a": [1], **lineage(1)}), run="a")
    load(lakegate_home, spec, pa.table({"a": [2], "note": ["new"], **lineage(1)}), run="b")
    raw = open_zone("raw", load_config()).read("d", "evolve").sort("a")
    assert raw.select("a", "note").rows() == [(1, None), (2, "new")]
    assert open_zone("raw", load_config()).read("d", "evolve", version=0).columns.count("note") == 0


def test_unsigned_integers_are_widened(lakegate_home: Path) -> None:
    spec = DatasetSpec(domain="d", name="uints")
    load(lakegate_home, spec, pa.table({"u": pa.array([4_000_000_000], pa.uint32()), **lineage(1)}))
    raw = open_zone("raw", load_config()).read("d", "uints")
    assert raw["u"].to_list() == [4_000_000_000] and raw.schema["u"] == pl.Int64


def test_a_merge_with_no_good_rows_completes(lakegate_home: Path) -> None:
    spec = DatasetSpec(domain="d", name="m", schema={"id": "int64"}, primary_key=("id",))
    report = load(lakegate_home, spec, pa.table({"id": ["x"], **lineage(1)}), merge=True)
    assert (report.committed_rows, report.quarantined_rows) == (0, 1)


def test_a_renamed_pii_column_never_lands(lakegate_home: Path) -> None:
    spec = DatasetSpec(
        domain="d", name="p", schema={"id": "int64", "email": "string"}, pii={"email": PiiMethod.TOKENIZE}
    )
    report = load(lakegate_home, spec, pa.table({"id": ["1"], "e-mail": ["alice@example.com"], **lineage(1)}))
    assert (report.committed_rows, report.quarantined_rows) == (0, 1)
    assert open_zone("raw", load_config()).delta_table("d", "p") is None
    record = open_zone("quarantine", load_config()).read("d", "p")
    assert record["_lakegate_rule"].to_list() == ["pii_column_missing"]
    assert record["_lakegate_raw"].to_list() == [None]


def test_an_older_record_never_overwrites_a_newer_one(lakegate_home: Path) -> None:
    spec = DatasetSpec(
        domain="d",
        name="o",
        schema={"id": "int64", "status": "string", "at": "datetime"},
        primary_key=("id",),
        order_by=("at",),
    )
    newer = pa.table({"id": ["1"], "status": ["shipped"], "at": ["2026-11-02T00:00:00Z"], **lineage(1)})
    older = pa.table({"id": ["1"], "status": ["new"], "at": ["2026-11-01T00:00:00Z"], **lineage(1)})
    load(lakegate_home, spec, newer, merge=True, run="a")
    load(lakegate_home, spec, older, merge=True, run="b")
    assert open_zone("curated", load_config()).read("d", "o")["status"].to_list() == ["shipped"]
    both = pa.concat_tables([newer, older])  # one load holding both: order_by, not arrival, decides
    load(lakegate_home, DatasetSpec(**{**spec.__dict__, "name": "o2"}), both, merge=True, run="c")
    assert open_zone("curated", load_config()).read("d", "o2")["status"].to_list() == ["shipped"]
