"""A load job merged by key batch by batch (bounded memory) gives the table one batch would: later rows win
across batches, deletes and truncates apply, and the job is still one commit. A small merge costs its batch,
not the table: a merged backfill lays curated out in key order, and a later merge reads and rewrites only
the files whose key range can hold its keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import dlt
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

import zones._delta as delta
import zones._merge as bounded
import zones._rewrite as rewrite
import zones._spill as spill
import zones.destination as destination
from lakegate import columns as col
from zones import DatasetSpec, LoadReport, LoadTarget, ZoneName, lakegate_destination, load_config, open_zone

SPEC = DatasetSpec(
    domain="shop", name="items", schema={"id": "int64", "price": "float64"}, primary_key=("id",)
)


def merge(home: Path, table: pa.Table, spec: DatasetSpec, name: str) -> LoadReport:
    report = LoadReport()
    target = LoadTarget(
        dataset=spec, zone=ZoneName.CURATED, pipeline="t", run_id=name, config=load_config(), merge=True
    )
    pipeline = dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(home / "dlt"),
        destination=lakegate_destination(target, report),
        dataset_name=spec.domain,
    )

    @dlt.resource(name=spec.name)
    def items() -> pa.Table:
        yield table

    pipeline.run(items())
    return report


def job(ids: list[int], prices: list[float], start: int = 1, ops: list[str] | None = None) -> pa.Table:
    columns: dict[str, list[object]] = {
        "id": list(ids),
        "price": list(prices),
        col.SOURCE: ["mem://items"] * len(ids),
        col.POSITION: list(range(start, start + len(ids))),
    }
    if ops is not None:
        columns[col.OP] = list(ops)
    return pa.table(columns)


def curated(*names: str) -> pl.DataFrame:
    return open_zone("curated", load_config()).read("shop", "items").select(*names).sort(names[0])


def rules() -> list[str]:
    return sorted(open_zone("quarantine", load_config()).read("shop", "items")[col.RULE].to_list())


@pytest.mark.parametrize("batch_rows", [2, 100_000])
def test_later_rows_win_across_batches_in_one_commit(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    monkeypatch.setattr(destination, "READ_BATCH_ROWS", batch_rows)
    merge(lakegate_home, job([9, 1], [0.5, 0.1], start=0), SPEC, "first")
    # id 1 comes back in the last batch, id 2 spans the first and third batch.
    report = merge(lakegate_home, job([2, 3, 4, 2, 5, 1], [1, 2, 3, 4, 5, 6], start=10), SPEC, "second")
    assert curated("id", "price").rows() == [(1, 6.0), (2, 4.0), (3, 2.0), (4, 3.0), (5, 5.0), (9, 0.5)]
    assert (report.input_rows, report.committed_rows, report.quarantined_rows) == (6, 5, 1)
    assert rules() == ["duplicate_key"]
    table = open_zone("curated", load_config()).delta_table("shop", "items")
    assert table is not None and table.version() == 1  # the second job is one merge commit


def test_with_order_by_an_older_row_of_a_later_batch_never_wins(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(destination, "READ_BATCH_ROWS", 1)
    spec = DatasetSpec(
        domain="shop",
        name="items",
        schema={"id": "int64", "price": "float64"},
        primary_key=("id",),
        order_by=("price",),
    )
    merge(lakegate_home, job([1, 1, 2], [5.0, 3.0, 1.0]), spec, "first")
    assert curated("id", "price").rows() == [(1, 5.0), (2, 1.0)]


def test_changes_across_batches_apply_deletes_and_the_last_truncate(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = DatasetSpec(domain="shop", name="items", primary_key=("id",))
    merge(lakegate_home, job([9], [0.5], start=0, ops=["c"]), spec, "before")
    monkeypatch.setattr(destination, "READ_BATCH_ROWS", 2)
    changes = job(
        [1, 2, 1, None, 3, 4, 4, 5, 5],  # type: ignore[list-item]
        [1, 2, 3, 0, 5, 6, 7, 8, 9],
        start=10,
        ops=["c", "c", "u", "t", "c", "c", "d", "c", "u"],
    )
    report = merge(lakegate_home, changes, spec, "changes")
    # The truncate (position 13) empties the table and drops the job's earlier changes; 4 is deleted.
    assert curated("id", "price").rows() == [(3, 5.0), (5, 9.0)]
    assert report.input_rows == report.committed_rows + report.quarantined_rows == 9
    assert rules() == ["duplicate_key", "duplicate_key", "truncated", "truncated", "truncated"]


def files() -> pl.DataFrame:
    table = open_zone("curated", load_config()).delta_table("shop", "items")
    assert table is not None
    actions = pl.from_arrow(pa.table(table.get_add_actions(flatten=True)))
    assert isinstance(actions, pl.DataFrame)
    return actions.select("path", "num_records", "min.id", "max.id").sort("min.id")


@pytest.fixture
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(destination, "READ_BATCH_ROWS", 10)
    monkeypatch.setattr(bounded, "BUCKET_BATCHES", 1)
    monkeypatch.setattr(delta, "MERGED_ROWS_PER_FILE", 20)


def test_a_merged_backfill_is_laid_out_in_key_order(lakegate_home: Path, small_files: None) -> None:
    # 100 new ids, then 20 updates of ids spread over them: in arrival order the last file would span 3..98.
    updated = [98, 3, 51, 17, 76, 33, 64, 9, 88, 42, 27, 70, 5, 93, 58, 12, 81, 36, 61, 22]
    ids = [*range(1, 101), *updated]
    report = merge(lakegate_home, job(ids, [float(i) for i in range(len(ids))]), SPEC, "backfill")
    assert (report.committed_rows, report.quarantined_rows) == (100, 20)
    layout = files()
    assert layout.height >= 4 and layout["num_records"].max() <= 30  # type: ignore[operator]
    assert (layout["min.id"].shift(-1) > layout["max.id"]).head(-1).all()  # disjoint key ranges
    table = open_zone("curated", load_config()).delta_table("shop", "items")
    assert table is not None  # and Delta's merges rewrite files at a size a small merge can skip
    assert table.metadata().configuration == delta.MERGED_TABLE_CONFIGURATION


def test_a_small_merge_reads_only_the_files_its_keys_can_be_in(
    lakegate_home: Path, small_files: None
) -> None:
    merge(lakegate_home, job(list(range(1, 101)), [0.0] * 100), SPEC, "backfill")
    layout = files()
    table = open_zone("curated", load_config()).delta_table("shop", "items")
    assert table is not None
    backfill = table.version()
    uri = open_zone("curated", load_config()).table_uri("shop", "items").removeprefix("file://")
    # Files holding neither ids 1-5 nor ids 1000-1004 are moved away: the merge fails if it opens one.
    aside = lakegate_home / "aside"
    aside.mkdir()
    others = layout.filter(pl.col("min.id") > 5)["path"].to_list()
    assert len(others) >= 3  # the min/max of the batch's keys (1..1004) alone would cover them all
    for path in others:
        shutil.move(f"{uri}/{path}", aside / Path(path).name)
    merge(lakegate_home, job([1, 2, 3, 4, 5, *range(1000, 1005)], [7.0] * 10, start=200), SPEC, "small")
    for path in others:
        shutil.move(aside / Path(path).name, f"{uri}/{path}")
    table.update_incremental()
    assert table.version() == backfill + 1  # the merge committed without opening a file moved away
    metrics = table.history(1)[0]["operationMetrics"]
    assert (metrics["num_target_files_removed"], metrics["num_target_rows_updated"]) == (1, 5)
    held = open_zone("curated", load_config()).read("shop", "items")
    assert held.height == held["id"].n_unique() == 105
    assert held.filter(pl.col("price") == 7.0)["id"].sort().to_list() == [1, 2, 3, 4, 5, *range(1000, 1005)]


def merged_last(table: DeltaTable) -> bool:
    """Whether the table's last commit is a merge (Delta's, or a rewrite of the files holding its keys)."""
    entry = table.history(1)[0]
    return entry["operation"] == "MERGE" or bool(entry.get(rewrite.REWRITE_KEY))


def test_keys_past_every_stored_file_commit_as_an_append_and_stay_unique(
    lakegate_home: Path, small_files: None
) -> None:
    """No file's key statistics can hold the batch's keys: nothing to match, so no merge is run; a key
    inside a file's range (stored or not) still merges."""
    merge(lakegate_home, job(list(range(1, 101, 2)), [0.0] * 50), SPEC, "backfill")
    table = open_zone("curated", load_config()).delta_table("shop", "items")
    assert table is not None

    merge(lakegate_home, job([1000, 1001], [1.0, 1.0], start=100), SPEC, "new-keys")
    table.update_incremental()
    assert not merged_last(table)

    merge(lakegate_home, job([4, 2000], [2.0, 2.0], start=200), SPEC, "gap-key")  # 4: absent, in a range
    table.update_incremental()
    assert merged_last(table)

    merge(lakegate_home, job([1001, 3], [3.0, 3.0], start=300), SPEC, "updates")
    table.update_incremental()
    assert merged_last(table)
    held = curated("id", "price")
    assert held.height == held["id"].n_unique() == 50 + 4
    assert dict(held.filter(pl.col("id").is_in([3, 4, 1000, 1001, 2000])).iter_rows()) == {
        3: 3.0,
        4: 2.0,
        1000: 1.0,
        1001: 3.0,
        2000: 2.0,
    }


def test_a_merge_removes_the_spill_folders_merges_killed_on_this_host_left(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    gone = subprocess.run([sys.executable, "-c", "print(__import__('os').getpid())"], capture_output=True)
    dead, host = gone.stdout.decode().strip(), spill._host()
    killed = tmp_path / "tmp" / f"{spill.PREFIX}{host}-{dead}-abc"  # a merge SIGKILLed
    running = tmp_path / "tmp" / f"{spill.PREFIX}{host}-{os.getppid()}-def"  # a merge still running
    elsewhere = tmp_path / "tmp" / f"{spill.PREFIX}otherhost-{dead}-ghi"  # a shared volume
    for folder in (killed, running, elsewhere):
        folder.mkdir()
        (folder / "0.arrow").write_bytes(b"spilled rows")

    monkeypatch.setattr(destination, "READ_BATCH_ROWS", 2)
    merge(lakegate_home, job([3, 1, 2], [1.0, 2.0, 3.0]), SPEC, "after-a-kill")

    assert curated("id").rows() == [(1,), (2,), (3,)]
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == sorted([running.name, elsewhere.name])


def test_a_merge_that_fails_while_it_spills_leaves_no_spill_behind(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(destination, "READ_BATCH_ROWS", 1)
    spilled = bounded._spill

    def full_disk(frame: pl.DataFrame, path: Path) -> object:
        if path.name != "0.arrow":
            raise OSError(28, "No space left on device")
        return spilled(frame, path)

    monkeypatch.setattr(bounded, "_spill", full_disk)
    with pytest.raises(Exception, match="No space left"):
        merge(lakegate_home, job([3, 1, 2], [1.0, 2.0, 3.0]), SPEC, "disk-full")
    assert not [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith(spill.PREFIX)]
