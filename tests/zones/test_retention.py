"""Retention engine on real Delta tables with an injected clock: what expires goes, what is newer or
held stays, vacuum removes files only once they left the time-travel window, plan == apply."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from lakegate.columns import INGEST_DATE
from zones import ZoneName, load_config, open_zone
from zones._delta import append_stream
from zones.config import Hold, ZoneConfigError
from zones.retention import Policy, apply_dataset, plan_dataset, read_retention_audit

NOW = datetime.now(UTC)
TODAY = NOW.date()


def _write_days(uri: str, days: list[date], rows: int = 5) -> None:
    for i, day in enumerate(days):
        frame = pl.DataFrame({"id": list(range(i * rows, (i + 1) * rows)), INGEST_DATE: [day] * rows})
        write_deltalake(uri, frame.to_arrow(), mode="append", partition_by=[INGEST_DATE])


def _policy(retention: int | None, column: str | None = None) -> Policy:
    return Policy(
        zone=ZoneName.RAW,
        domain="sales",
        dataset="orders",
        retention=None if retention is None else timedelta(days=retention),
        time_travel=timedelta(days=7),
        declared_in="test",
        column=column,
    )


def _files_on_disk(uri: str) -> set[str]:
    return {str(p.relative_to(uri)) for p in Path(uri).rglob("*.parquet")}


def test_expired_partitions_go_newer_and_held_stay_and_vacuum_waits_for_the_window(
    lakegate_home: Path,
) -> None:
    config = load_config()
    zone = open_zone(ZoneName.RAW, config)
    uri = zone.table_uri("sales", "orders").removeprefix("file://")
    old, held, new = TODAY - timedelta(days=40), TODAY - timedelta(days=35), TODAY - timedelta(days=3)
    _write_days(uri, [old, held, new])
    hold = Hold.model_validate(
        {
            "dataset": "sales/orders",
            "from": held,
            "to": held,
            "reason": "case 17",
            "who": "legal",
            "when": TODAY,
        }
    )
    files_before = _files_on_disk(uri)

    plan = plan_dataset(config, _policy(30), [hold], NOW)
    assert plan is not None and plan.expired
    assert (plan.delete_rows, plan.delete_files, plan.expired_partitions) == (5, 1, (old.isoformat(),))
    assert plan.held == (f"{held.isoformat()}: hold by legal since {TODAY}: case 17",)
    before_delete = DeltaTable(uri).version()

    applied = apply_dataset(config, plan, run_id="run-1")
    assert (applied.deleted_rows, applied.deleted_files) == (plan.delete_rows, plan.delete_files)
    kept = pl.read_delta(uri)
    assert sorted(kept[INGEST_DATE].unique().to_list()) == [held, new]
    # Inside the window the deleted rows' file is still on storage and the old version still reads.
    assert pl.read_delta(uri, version=before_delete).height == 15
    assert files_before <= _files_on_disk(uri)

    audit = read_retention_audit(zone)
    row = audit.filter(pl.col("operation") == "delete").row(0, named=True)
    assert (row["dataset"], row["rows"], row["files"], row["run_id"]) == ("sales/orders", 5, 1, "run-1")
    assert row["bytes"] > 0 and old.isoformat() in row["predicate"] and "30d" in row["policy"]

    # Eight days later the delete's tombstones left the 7-day window: vacuum removes them from storage.
    later = NOW + timedelta(days=8)
    plan2 = plan_dataset(config, _policy(30), [hold], later)
    assert plan2 is not None and plan2.expired and plan2.delete_rows == 0
    gone = {p for p in files_before if p.startswith(f"{INGEST_DATE}={old.isoformat()}")}
    assert gone and gone <= set(plan2.vacuum_files)
    applied2 = apply_dataset(config, plan2, run_id="run-2")
    assert applied2.vacuumed_files == len(plan2.vacuum_files)
    assert not gone & _files_on_disk(uri)
    assert pl.read_delta(uri).height == 10  # the current version (inside the window) still reads
    assert not plan_dataset(config, _policy(30), [hold], later).expired  # nothing left: no run


def test_nothing_expires_inside_the_retention(lakegate_home: Path) -> None:
    config = load_config()
    uri = open_zone(ZoneName.RAW, config).table_uri("sales", "orders").removeprefix("file://")
    _write_days(uri, [TODAY - timedelta(days=29), TODAY])
    plan = plan_dataset(config, _policy(30), [], NOW)
    assert plan is not None and not plan.expired and plan.predicate is None
    assert plan_dataset(config, _policy(None), [], NOW + timedelta(days=999)) is not None


def test_upkeep_compacts_a_merged_table_to_its_own_file_size(lakegate_home: Path) -> None:
    """A table merged by key keeps small files (a merge rewrites only the files holding its keys): upkeep
    compacts only its smaller files, up to the table's ``delta.targetFileSize``, not to 128 MiB."""
    config = load_config()
    uri = open_zone(ZoneName.CURATED, config).table_uri("sales", "orders").removeprefix("file://")
    rows = pl.DataFrame({"id": list(range(20_000)), INGEST_DATE: [TODAY] * 20_000}).to_arrow()
    own = {"delta.targetFileSize": "40000"}
    append_stream(uri, rows.schema, rows.to_batches(max_chunksize=4_000), {}, {}, [], 4_000, own)
    for first in range(20_000, 20_060, 10):  # later small appends of new keys
        _write_range(uri, first, 10)
    table = DeltaTable(uri)
    sizes = [a["size_bytes"] for a in pl.DataFrame(table.get_add_actions(flatten=True)).to_dicts()]
    assert len(sizes) == 11 and max(sizes) < 40_000 < sum(sizes)
    policy = Policy(ZoneName.CURATED, "sales", "orders", None, timedelta(days=7), "test")
    plan = plan_dataset(config, policy, [], NOW)
    assert plan is not None and plan.target_file_size == 40_000 and 0 < plan.compact_files < 11
    applied = apply_dataset(config, plan, run_id="upkeep")
    assert applied.compacted_files > 0
    after = pl.DataFrame(DeltaTable(uri).get_add_actions(flatten=True))
    assert after["size_bytes"].max() <= 40_000 and after["num_records"].sum() == 20_060
    assert pl.read_delta(uri)["id"].sort().to_list() == list(range(20_060))


def _write_range(uri: str, first: int, rows: int) -> None:
    frame = pl.DataFrame({"id": list(range(first, first + rows)), INGEST_DATE: [TODAY] * rows})
    write_deltalake(uri, frame.to_arrow(), mode="append", partition_by=[INGEST_DATE])


def test_event_time_column_deletes_rows_not_partitions(lakegate_home: Path) -> None:
    config = load_config()
    uri = open_zone(ZoneName.RAW, config).table_uri("sales", "orders").removeprefix("file://")
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "at": [NOW - timedelta(days=50), NOW - timedelta(days=10), NOW - timedelta(days=1)],
            INGEST_DATE: [TODAY] * 3,
        }
    ).with_columns(pl.col("at").dt.cast_time_unit("us"))
    write_deltalake(uri, frame.to_arrow(), mode="append", partition_by=[INGEST_DATE])
    plan = plan_dataset(config, _policy(30, column="at"), [], NOW)
    assert plan is not None and (plan.delete_rows, plan.delete_files) == (1, 1)
    applied = apply_dataset(config, plan, run_id="r")
    assert applied.deleted_rows == 1
    assert sorted(pl.read_delta(uri)["id"].to_list()) == [2, 3]


@pytest.mark.parametrize(
    ("zones", "expected"),
    [
        ("raw: {retention: 30 days}", "zones.raw.retention: '30 days' is not a duration"),
        (
            "raw: {retention: 3d, time_travel: 7d}",
            "zones.raw: retention 3d is shorter than the zone's time_travel",
        ),
        (
            "raw: {retention: 10d, min_retention: 14d}",
            "retention 10d is shorter than the zone's min_retention",
        ),
        ("raw: {retention_days: 30}", "use 'retention: 30d'"),
    ],
)
def test_bad_zone_retention_is_one_line_naming_file_and_field(
    lakegate_home: Path, zones: str, expected: str
) -> None:
    file = lakegate_home.parent / "lakegate.yaml"
    file.write_text(f"zones:\n  {zones}\n")
    with pytest.raises(ZoneConfigError) as err:
        load_config(file)
    assert str(file) in str(err.value) and expected in str(err.value)
    assert "\n" not in str(err.value)


def test_holds_load_from_lakegate_yaml(lakegate_home: Path) -> None:
    file = lakegate_home.parent / "lakegate.yaml"
    file.write_text(
        "zones: {raw: {retention: 30d}}\n"
        "holds:\n  - {dataset: sales/orders, from: 2024-01-01, reason: audit, who: legal, when: 2024-05-01}\n"
    )
    config = load_config(file)
    assert config.zone("raw").retention_period == timedelta(days=30)
    assert config.holds[0].covers(ZoneName.CURATED, "sales/orders", date(2024, 2, 1))
    assert not config.holds[0].covers(ZoneName.CURATED, "sales/orders", date(2023, 12, 31))
    file.write_text("holds:\n  - {dataset: sales/orders, reason: audit}\n")
    with pytest.raises(ZoneConfigError, match=r"lakegate.yaml: holds.0.who: Field required"):
        load_config(file)
