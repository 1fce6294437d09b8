"""A small merge done as a rewrite of the files holding its keys leaves the table Delta's merge would:
updates, inserts, the ``newer`` guard, insert-only merges, null keys, partitions and columns added after a
file was written; a commit made in between sends it to Delta's merge, leaving no file behind."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import Transaction

import zones._delta as delta
import zones._rewrite as rewrite
from zones import _staged

PART = delta.PARTITION_COLUMN
DAY = date(2026, 11, 30)


def stored_rows(rng: np.random.Generator, ids: np.ndarray, day: date, note: bool) -> pa.Table:
    n = len(ids)
    columns: dict[str, pa.Array] = {
        "id": pa.array(ids, pa.int64()),
        "store": pa.array(ids % 3, pa.int64()),
        "price": pa.array(rng.random(n).round(3)),
        "name": pa.array([f"n{i}" if i % 7 else None for i in ids], pa.string()),
        "updated_at": pa.array(
            [
                None
                if v < 0.1
                else datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=int(v * 4))  # ties are frequent
                for v in rng.random(n)
            ],
            pa.timestamp("us", "UTC"),
        ),
        PART: pa.array([day] * n, pa.date32()),
    }
    if note:
        columns["note"] = pa.array([f"note {i}" for i in ids], pa.string())
    return pa.table(columns)


def batch(rng: np.random.Generator, stored: np.ndarray, keys: tuple[str, ...]) -> pa.Table:
    """~60 rows: existing keys, new keys, (single key) a few null keys; a day of its own or the stored one."""
    existing = rng.choice(stored, size=min(40, len(stored)), replace=False)
    new = np.arange(10_000, 10_020) + rng.integers(0, 1_000)
    ids = np.concatenate([existing, new])
    day = DAY if rng.random() < 0.5 else DAY + timedelta(days=1)
    table = stored_rows(rng, ids, day, note=True)
    if keys == ("id",):
        ids_with_nulls = pa.array([None if i < 3 else v for i, v in enumerate(ids.tolist())], pa.int64())
        table = table.set_column(0, "id", ids_with_nulls)
    return table


def build(uri: str, rng: np.random.Generator) -> np.ndarray:
    """A table of ~300 rows in key order, 40 rows per file; its first files lack the ``note`` column."""
    ids = np.sort(rng.choice(np.arange(1, 2_000), size=300, replace=False))
    old = stored_rows(rng, ids[:150], DAY, note=False)
    delta.append_stream(uri, old.schema, old.to_batches(max_chunksize=40), {}, {}, [], rows_per_file=40)
    new = stored_rows(rng, ids[150:], DAY, note=True)
    table = delta.open_table(uri, {})
    delta.append(uri, new.slice(0, 1), {}, [], table=table)  # adds the column
    rest = new.slice(1)
    delta.append_stream(uri, rest.schema, rest.to_batches(max_chunksize=40), {}, {}, [], table=table)
    return ids


def fifty_per_file(tmp_path: Path, last_id: int, *, note: bool = True) -> str:
    """A table of ids 1..``last_id`` in key order, 50 rows per file; its URI."""
    uri = str(tmp_path / "t")
    rows = stored_rows(np.random.default_rng(0), np.arange(1, last_id + 1), DAY, note=note)
    delta.append_stream(uri, rows.schema, rows.to_batches(max_chunksize=50), {}, {}, [], rows_per_file=50)
    return uri


def upsert(uri: str, data: pa.Table, keys: tuple[str, ...], update: bool, newer: tuple[str, ...]) -> None:
    table = delta.open_table(uri, {})
    delta.upsert(uri, data, keys, {}, [], update=update, newer=newer, fs_options={}, table=table)


def contents(uri: str, keys: tuple[str, ...]) -> pl.DataFrame:
    return pl.read_delta(uri).sort([*keys, "price"], nulls_last=True)


def last_commit(uri: str) -> list[dict[str, Any]]:
    log = sorted((Path(uri) / "_delta_log").glob("*.json"))[-1]
    return [json.loads(line) for line in log.read_text().splitlines()]


def rewritten_last(uri: str) -> bool:
    """Whether the table's last commit is a rewrite's."""
    info = next(a["commitInfo"] for a in last_commit(uri) if "commitInfo" in a)
    return rewrite.REWRITE_KEY in info


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("keys", [("id",), ("id", "store")])
def test_a_rewrite_leaves_the_table_deltas_merge_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, keys: tuple[str, ...]
) -> None:
    rng = np.random.default_rng(seed)
    update = seed % 4 != 3
    newer = ("updated_at",) if seed % 2 else ()
    rewritten, merged = str(tmp_path / "rewritten"), str(tmp_path / "merged")
    stored = build(rewritten, np.random.default_rng(seed))
    build(merged, np.random.default_rng(seed))
    for round_ in range(4):
        data = batch(rng, stored, keys)
        if round_ != 1:  # (round 1: Delta's merge on both sides, so later rounds rewrite its files too)
            upsert(rewritten, data, keys, update, newer)
            assert rewritten_last(rewritten)
        with monkeypatch.context() as patched:
            patched.setattr(rewrite, "rewrite_merge", lambda *_, **__: None)  # every batch to Delta's merge
            upsert(merged, data, keys, update, newer)
            assert not rewritten_last(merged)
            if round_ == 1:
                upsert(rewritten, data, keys, update, newer)
        assert_frame_equal(contents(rewritten, keys), contents(merged, keys))


def assert_frame_equal(left: pl.DataFrame, right: pl.DataFrame) -> None:
    from polars.testing import assert_frame_equal as equal

    equal(left.select(sorted(left.columns)), right.select(sorted(right.columns)))


def test_a_rewrite_replaces_only_the_files_holding_its_keys_and_keeps_their_key_ranges(
    tmp_path: Path,
) -> None:
    uri = fifty_per_file(tmp_path, 200)
    data = stored_rows(np.random.default_rng(1), np.array([60, 61, 500, 501]), DAY, note=True)
    upsert(uri, data, ("id",), update=True, newer=())
    actions = last_commit(uri)
    removed = [a["remove"] for a in actions if "remove" in a]
    added = [json.loads(a["add"]["stats"]) for a in actions if "add" in a]
    assert len(removed) == 1  # ids 51-100
    ranges = sorted((s["minValues"]["id"], s["maxValues"]["id"], s["numRecords"]) for s in added)
    assert ranges == [(51, 100, 50), (500, 501, 2)]  # updates in their file, new keys in their own
    table = pl.read_delta(uri)
    assert table.height == table["id"].n_unique() == 202
    assert table.filter(pl.col("id").is_in([60, 61]))["price"].sort().to_list() == sorted(
        data["price"].to_pylist()[:2]
    )


def test_null_keys_are_written_with_the_new_keys_so_every_file_keeps_key_statistics(tmp_path: Path) -> None:
    """A file of null keys only would have no key statistics, and every later merge would go to Delta's
    merge (:func:`zones._rewrite.possible_files`): a rewrite writes them with the batch's new keys."""
    uri = fifty_per_file(tmp_path, 200)
    data = stored_rows(np.random.default_rng(4), np.array([60, 0, 0, 500, 501]), DAY, note=True)
    data = data.set_column(0, "id", pa.array([60, None, None, 500, 501], pa.int64()))
    upsert(uri, data, ("id",), update=True, newer=())
    added = [json.loads(a["add"]["stats"]) for a in last_commit(uri) if "add" in a]
    files = sorted((s["numRecords"], s["nullCount"]["id"], s["minValues"].get("id")) for s in added)
    assert files == [(4, 2, 500), (50, 0, 51)]  # the null keys beside the new ones, the update in place
    later = stored_rows(np.random.default_rng(5), np.array([501]), DAY, note=True)
    upsert(uri, later, ("id",), update=True, newer=())
    assert rewritten_last(uri)  # every file still has key statistics
    assert pl.read_delta(uri).height == 204


def test_a_commit_made_in_between_sends_the_batch_to_deltas_merge_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    uri = fifty_per_file(tmp_path, 100)
    held = delta.open_table(uri, {})
    assert held is not None
    later = stored_rows(np.random.default_rng(2), np.array([10]), DAY, note=True)  # another writer's update
    delta.upsert(uri, later, ("id",), {}, [], fs_options={}, table=delta.open_table(uri, {}))
    data = stored_rows(np.random.default_rng(3), np.array([10, 11, 300]), DAY, note=True)
    delta.upsert(uri, data, ("id",), {}, [], fs_options={}, table=held)
    assert not rewritten_last(uri)
    table = pl.read_delta(uri)
    assert table.height == table["id"].n_unique() == 101
    assert table.filter(pl.col("id") == 10)["price"].item() == data["price"][0].as_py()
    assert files_on_disk(uri) == referenced_files(uri)  # the rewrite's files, never committed, are gone


def test_a_batch_with_a_new_column_goes_to_deltas_merge(tmp_path: Path) -> None:
    uri = fifty_per_file(tmp_path, 100, note=False)
    widened = stored_rows(np.random.default_rng(1), np.array([5]), DAY, note=True)
    upsert(uri, widened, ("id",), update=True, newer=())
    assert not rewritten_last(uri)
    assert pl.read_delta(uri).filter(pl.col("id") == 5)["note"].item() == "note 5"
    job = Transaction("job", 1)
    data = stored_rows(np.random.default_rng(2), np.array([5, 200]), DAY, note=True)
    delta.upsert(uri, data, ("id",), {}, [job], fs_options={}, table=delta.open_table(uri, {}))
    assert rewritten_last(uri)
    done = delta.committed_by(uri, {}, job)  # how a replayed job's audit learns what it wrote
    assert done is not None and done.rows == 2


def test_a_wide_rewrite_keeps_every_files_key_range_and_checkpoints_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_staged, "CHECKPOINT_AFTER_REMOVED", 50)
    uri = fifty_per_file(tmp_path, 5_000)  # 100 files
    ids = np.random.default_rng(4).choice(np.arange(1, 5_001), size=300, replace=False)
    data = stored_rows(np.random.default_rng(5), np.concatenate([ids, [9_000, 9_001]]), DAY, note=True)
    upsert(uri, data, ("id",), update=True, newer=())
    assert rewritten_last(uri) and checkpointed_last(uri)
    files = pl.DataFrame(delta.open_table(uri, {}).get_add_actions(flatten=True)).sort("min.id")
    assert files["num_records"].sum() == 5_002
    ranges = files.select("min.id", "max.id").rows()
    assert all(high < next_low for (_, high), (next_low, _) in itertools.pairwise(ranges))
    table = pl.read_delta(uri)
    assert table.height == table["id"].n_unique() == 5_002
    updated = table.filter(pl.col("id").is_in(ids.tolist())).sort("id")["price"]
    assert updated.to_list() == data.slice(0, 300).sort_by("id")["price"].to_pylist()
    upsert(uri, data.slice(0, 10), ("id",), update=True, newer=())  # a narrow one: no checkpoint
    assert rewritten_last(uri) and not checkpointed_last(uri)
    monkeypatch.setattr(rewrite, "rewrite_merge", lambda *_, **__: None)
    upsert(uri, data, ("id",), update=True, newer=())  # Delta's merge, as wide
    assert not rewritten_last(uri) and checkpointed_last(uri)


def checkpointed_last(uri: str) -> bool:
    """Whether the log has a checkpoint at the table's last version."""
    last = sorted((Path(uri) / "_delta_log").glob("*.json"))[-1].stem
    return (Path(uri) / "_delta_log" / f"{last}.checkpoint.parquet").exists()


def test_a_rewrite_given_up_midway_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = fifty_per_file(tmp_path, 1_000)
    seen = 0
    conformed = rewrite._conformed

    def refuse_the_fifth(rows: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame | None:
        nonlocal seen
        seen += 1
        return None if seen == 5 else conformed(rows, schema)  # (a stored value the batch's type cannot hold)

    monkeypatch.setattr(rewrite, "_conformed", refuse_the_fifth)
    data = stored_rows(np.random.default_rng(6), np.arange(10, 1_000, 50), DAY, note=True)  # 20 files
    upsert(uri, data, ("id",), update=True, newer=())
    assert seen == 20 and not rewritten_last(uri)  # Delta's merge did it
    table = pl.read_delta(uri)
    assert table.height == table["id"].n_unique() == 1_000
    assert table.filter(pl.col("id") == 510)["price"].item() == data["price"][10].as_py()
    assert files_on_disk(uri) == referenced_files(uri)


def files_on_disk(uri: str) -> set[str]:
    return {str(p.relative_to(uri)) for p in Path(uri).rglob("*.parquet")}


def referenced_files(uri: str) -> set[str]:
    """Every data file the table's log ever added."""
    return {
        json.loads(line)["add"]["path"]
        for log in (Path(uri) / "_delta_log").glob("*.json")
        for line in log.read_text().splitlines()
        if '"add"' in line
    }


def test_a_file_polars_writes_carries_the_statistics_pyarrows_writer_gives(tmp_path: Path) -> None:
    rows = stored_rows(np.random.default_rng(7), np.arange(1, 101), DAY, note=True).drop_columns(PART)
    table = rows.append_column("small", pa.array(np.arange(100) - 50, pa.int16())).append_column(
        "day", pa.array([DAY - timedelta(days=int(i)) for i in range(100)], pa.date32())
    )
    staged = _staged.stage_frame(
        fsspec.filesystem("file"), str(tmp_path), pl.DataFrame(table), PART, DAY.isoformat()
    )
    pq.write_table(table, tmp_path / "by_pyarrow.parquet")
    expected = json.loads(_staged.file_stats(pq.read_metadata(tmp_path / "by_pyarrow.parquet")))
    assert json.loads(staged.stats) == expected
    assert set(expected["minValues"]) == {"id", "store", "updated_at", "small", "day"}
    assert staged.rows == 100 and staged.path.startswith(f"{PART}={DAY.isoformat()}/")
