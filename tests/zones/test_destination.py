"""The single write path, driven as plain Python (no Dagster): replays, accounting, PII, merges."""

from __future__ import annotations

from pathlib import Path

import dlt
import polars as pl
import pyarrow as pa
import pytest

from zones import (
    DatasetSpec,
    LoadReport,
    LoadTarget,
    PiiKeyError,
    PiiMethod,
    ZoneName,
    lakegate_destination,
    load_config,
    open_zone,
    read_audit,
)

SPEC = DatasetSpec(
    domain="shop",
    name="items",
    schema={"id": "int64", "price": "float64", "email": "string"},
    primary_key=("id",),
    pii={"email": PiiMethod.TOKENIZE},
)


def rows(*values: tuple[str, str, str], start: int = 1) -> pa.Table:
    ids, prices, emails = zip(*values, strict=True)
    return pa.table(
        {
            "id": list(ids),
            "price": list(prices),
            "email": list(emails),
            "_lakegate_source": ["mem://items"] * len(ids),
            "_lakegate_position": list(range(start, start + len(ids))),
        }
    )


def load(home: Path, table: pa.Table, *, merge: bool = False, name: str = "items") -> LoadReport:
    report = LoadReport()
    target = LoadTarget(
        dataset=SPEC,
        zone=ZoneName.CURATED if merge else ZoneName.RAW,
        pipeline="t",
        run_id="run-1",
        config=load_config(),
        merge=merge,
    )
    pipeline = dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(home / "dlt"),
        destination=lakegate_destination(target, report),
        dataset_name="shop",
    )

    @dlt.resource(name="items")
    def items() -> pa.Table:
        yield table

    pipeline.run(items())
    return report


def test_bad_values_are_quarantined_and_rows_balance(lakegate_home: Path) -> None:
    report = load(lakegate_home, rows(("1", "9.5", "a@x.io"), ("2", "cheap", "b@x.io"), ("3", "1", "c@x.io")))
    assert (report.input_rows, report.committed_rows, report.quarantined_rows) == (3, 2, 1)
    config = load_config()
    raw = open_zone("raw", config).read("shop", "items").sort("id")
    assert raw["id"].to_list() == [1, 3] and raw.schema["price"] == pl.Float64
    rejected = open_zone("quarantine", config).read("shop", "items")
    assert rejected["_lakegate_reason"].to_list() == [
        "mem://items row 2: column 'price' is not a valid float64"
    ]
    assert "b@x.io" not in rejected["_lakegate_raw"][0] and "tok_" in rejected["_lakegate_raw"][0]


def test_job_retried_after_a_crash_past_its_commits_changes_nothing(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job dies after committing pii and raw (audit write fails once); dlt retries the whole job."""
    import zones.destination as destination

    real_record, crashes = destination.record, []

    def crash_once_after_raw_commit(zone, entry):  # type: ignore[no-untyped-def]
        real_record(zone, entry)
        if entry.zone == "raw" and not crashes:
            crashes.append(entry.version)
            raise OSError("simulated crash after the raw commit")

    monkeypatch.setattr(destination, "record", crash_once_after_raw_commit)
    report = load(lakegate_home, rows(("1", "9.5", "a@x.io"), ("2", "bad", "b@x.io")))
    assert crashes == [0]
    config = load_config()
    raw = open_zone("raw", config)
    assert raw.delta_table("shop", "items").version() == 0  # type: ignore[union-attr]
    assert raw.read("shop", "items").height == 1
    assert open_zone("pii", config).delta_table("shop", "items").version() == 0  # type: ignore[union-attr]
    assert open_zone("quarantine", config).read("shop", "items").height == 1  # written by the retry
    assert report.committed_rows == 1 and report.quarantined_rows == 1


def test_merge_keeps_latest_per_key_and_quarantines_superseded(lakegate_home: Path) -> None:
    report = load(
        lakegate_home, rows(("1", "1", "a@x.io"), ("1", "2", "a@x.io"), ("2", "3", "b@x.io")), merge=True
    )
    assert report.quarantined_rows == 1
    load(
        lakegate_home, rows(("2", "30", "b@x.io"), ("3", "4", "c@x.io"), start=10), merge=True, name="items2"
    )
    curated = open_zone("curated", load_config()).read("shop", "items").sort("id")
    assert curated.select("id", "price").rows() == [(1, 2.0), (2, 30.0), (3, 4.0)]
    rule = open_zone("quarantine", load_config()).read("shop", "items")["_lakegate_rule"].to_list()
    assert rule == ["duplicate_key"]


def test_vault_holds_each_value_once(lakegate_home: Path) -> None:
    load(lakegate_home, rows(("1", "1", "a@x.io"), ("2", "1", "a@x.io")))
    load(lakegate_home, rows(("3", "1", "a@x.io"), ("4", "1", "d@x.io"), start=3), name="again")
    vault = open_zone("pii", load_config()).read("shop", "items")
    assert sorted(vault["value"].to_list()) == ["a@x.io", "d@x.io"]
    raw = open_zone("raw", load_config()).read("shop", "items")
    assert raw["email"].n_unique() == 2 and raw["email"].str.starts_with("tok_").all()


def test_missing_pii_key_fails_before_loading(lakegate_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEGATE_PII_KEY")
    target = LoadTarget(dataset=SPEC, zone=ZoneName.RAW, pipeline="t", run_id="r", config=load_config())
    with pytest.raises(PiiKeyError, match=r"LAKEGATE_PII_KEY is not set; .*shop/items: email"):
        lakegate_destination(target)


def test_audit_records_hold_no_values(lakegate_home: Path) -> None:
    load(lakegate_home, rows(("1", "1", "a@x.io")))
    audit = read_audit(open_zone("raw", load_config()))
    assert audit.select("operation", "rows", "version").rows() == [("append", 1, 0)]
    assert "a@x.io" not in str(audit.rows())
