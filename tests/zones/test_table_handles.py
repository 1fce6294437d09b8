"""A load job opens each zone table once and commits through that handle; the writer keeps it for its
next jobs. A commit another writer made in between must still be seen: by the replay check (the handle
is brought up to date first) and, should a handle ever be stale, by Delta's own check at commit."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import dlt
import polars as pl
import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError
from dlt.common.storages.load_package import ParsedLoadJobFileName

from lakegate import columns
from zones import (
    DatasetSpec,
    LoadReport,
    LoadTarget,
    ZoneName,
    _delta,
    lakegate_destination,
    load_config,
    open_zone,
)
from zones.destination import _version_of
from zones.errors import ZoneStorageError
from zones.storage import TableHandles

SPEC = DatasetSpec(domain="shop", name="items", schema={"id": "int64", "qty": "int64"}, primary_key=("id",))


def _rows(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "qty": pa.array([1] * len(ids), pa.int64())})


def _stored(*ids: int) -> pa.Table:
    """Rows as a zone table holds them: partitioned by ingest date."""
    return _rows(*ids).append_column(columns.INGEST_DATE, pa.array([date(2026, 1, 1)] * len(ids)))


def _stale_handle(uri: str, txn: Transaction) -> DeltaTable:
    """A handle opened before another writer committed ``txn`` to the table at ``uri``."""
    write_deltalake(uri, _stored(1, 2), mode="append", partition_by=[columns.INGEST_DATE])
    stale = DeltaTable(uri)
    write_deltalake(
        uri, _stored(3), mode="append", commit_properties=CommitProperties(app_transactions=[txn])
    )
    return stale


def test_a_handle_brought_up_to_date_sees_another_writers_replay_guard(tmp_path: Path) -> None:
    uri, txn = str(tmp_path / "t"), Transaction("lakegate:p:items:job", 7)
    handle = _stale_handle(uri, txn)
    assert not _delta.holds(handle, txn)  # the snapshot it was opened at
    handle.update_incremental()
    assert _delta.holds(handle, txn) and handle.version() == DeltaTable(uri).version()


@pytest.mark.parametrize("how", ["append", "append_stream", "upsert"])
def test_a_commit_through_a_stale_handle_of_a_job_already_committed_fails(tmp_path: Path, how: str) -> None:
    """Delta checks app ids at commit: the same job committed by another writer since the handle's
    snapshot fails this commit (dlt retries the job, whose replay check then finds it), never doubles it."""
    uri, txn = str(tmp_path / "t"), Transaction("lakegate:p:items:job", 7)
    handle = _stale_handle(uri, txn)
    data = _stored(3)
    with pytest.raises(CommitFailedError):
        if how == "append":
            _delta.append(uri, data, {}, [txn], table=handle)
        elif how == "append_stream":
            _delta.append_stream(uri, data.schema, data.to_batches(), {}, {}, [txn], table=handle)
        else:
            _delta.upsert(uri, data, ["id"], {}, [txn], table=handle)
    assert pl.read_delta(uri)["id"].sort().to_list() == [1, 2, 3]


def test_a_kept_handle_sees_a_job_committed_by_another_writer_between_two_loads(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One destination (one writer, its handles kept) loads two packages; between them another writer
    commits the second package's job. The second load must find it a replay without trying to commit."""
    report = LoadReport()
    target = LoadTarget(dataset=SPEC, zone=ZoneName.RAW, pipeline="t", run_id="r", config=load_config())
    destination = lakegate_destination(target, report)
    uri = f"{load_config().zone('raw').url}/shop/items"
    attempts: list[str] = []
    for name in ("append", "append_stream", "adopt", "upsert"):
        real = getattr(_delta, name)

        def counted(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            attempts.append(args[0])
            return _real(*args, **kwargs)

        monkeypatch.setattr(_delta, name, counted)

    def pipeline(ids: tuple[int, ...]) -> Any:
        pipe = dlt.pipeline(
            pipeline_name="handles",
            pipelines_dir=str(lakegate_home / "dlt"),
            destination=destination,
            dataset_name="shop",
        )

        @dlt.resource(name="items")
        def items() -> pa.Table:
            yield _rows(*ids)

        pipe.extract(items())
        pipe.normalize()
        return pipe

    pipeline((1, 2)).load()  # creates the table
    pipeline((3,)).load()  # opens it: the writer holds raw's handle from now on
    assert attempts == [uri, uri] and pl.read_delta(uri).height == 3

    second = pipeline((4,))
    (load_id,) = second.list_normalized_load_packages()
    (job,) = [
        ParsedLoadJobFileName.parse(Path(p).name)
        for p in second._get_load_storage().normalized_packages.list_new_jobs(load_id)
        if "items" in p
    ]
    txn = Transaction(f"lakegate:t:items:{job.file_id}", _version_of(load_id))
    write_deltalake(uri, pl.read_delta(uri).head(0).to_arrow(), mode="append",
                    commit_properties=CommitProperties(app_transactions=[txn]))  # fmt: skip
    second.load()
    assert attempts == [uri, uri]  # the replay was seen before any commit was tried
    assert pl.read_delta(uri)["id"].sort().to_list() == [1, 2, 3]
    assert DeltaTable(uri).version() == 2


def test_zone_tables_are_checkpointed_every_10_commits_and_keep_their_replay_guards(tmp_path: Path) -> None:
    """Opening a table replays its JSON commits since the last checkpoint; replay guards (app ids) must
    survive the checkpoint, whoever opens the table afterwards."""
    uri = str(tmp_path / "t")
    for job in range(12):
        _delta.append(uri, _stored(job), {}, [Transaction(f"lakegate:p:items:{job}", 1)])
    assert (tmp_path / "t" / "_delta_log" / "_last_checkpoint").exists()
    table = DeltaTable(uri)
    assert table.metadata().configuration == _delta.TABLE_CONFIGURATION
    assert all(_delta.is_replay(uri, {}, Transaction(f"lakegate:p:items:{job}", 1)) for job in range(12))
    assert not _delta.is_replay(uri, {}, Transaction("lakegate:p:items:0", 2))


def test_a_write_failing_at_the_store_is_retried_not_quarantined(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deltalake raises a plain DeltaError when a write's request to the store fails (the message below is
    deltalake 1.6.6's for ``create_write_transaction`` against a stopped S3 endpoint): storage trouble,
    so the job is retried, not taken for unloadable rows (which would land in quarantine and, on the
    retry, in raw too)."""
    from deltalake.exceptions import DeltaError

    from zones import _staged

    commit, failed = _staged.commit, []

    def store_down_once(*args: Any) -> None:
        if not failed:
            failed.append(args[0])
            raise DeltaError(
                "Generic DeltaTable error: Error interacting with object store: Generic S3 error: Error "
                "performing list request: Error performing GET http://127.0.0.1:5599/bucket-x?list-type=2"
            )
        commit(*args)

    monkeypatch.setattr(_staged, "commit", store_down_once)
    report = LoadReport()
    target = LoadTarget(dataset=SPEC, zone=ZoneName.RAW, pipeline="t", run_id="r", config=load_config())
    pipe = dlt.pipeline(
        pipeline_name="store-down",
        pipelines_dir=str(lakegate_home / "dlt"),
        destination=lakegate_destination(target, report),
        dataset_name="shop",
    )

    @dlt.resource(name="items")
    def items() -> pa.Table:
        yield _rows(1, 2, 3)

    pipe.run(items())
    config = load_config()
    assert failed and pl.read_delta(failed[0])["id"].sort().to_list() == [1, 2, 3]
    assert open_zone("quarantine", config).read("shop", "items").height == 0
    assert (report.committed_rows, report.quarantined_rows) == (3, 0)


def test_a_table_opened_ahead_is_current_when_used_and_a_failed_open_raises_there(tmp_path: Path) -> None:
    """A run opens its tables on a thread while it sets up; whatever commits after that open is still seen
    when the run uses the handle, and an open that failed fails the use, not the thread."""
    uri, txn = str(tmp_path / "t"), Transaction("lakegate:p:items:job", 7)
    write_deltalake(uri, _stored(1, 2), mode="append", partition_by=[columns.INGEST_DATE])
    tables, opened = TableHandles(), threading.Event()

    def open_table() -> DeltaTable:
        table = DeltaTable(uri)
        opened.set()
        return table

    tables.open_ahead({uri: open_table, str(tmp_path / "none"): lambda: None})
    assert opened.wait(timeout=30)  # opened at version 0, before the commit below
    write_deltalake(
        uri, _stored(3), mode="append", commit_properties=CommitProperties(app_transactions=[txn])
    )
    table = tables.current(uri, lambda: pytest.fail("opened twice"))
    assert table is not None and _delta.holds(table, txn) and table.version() == 1
    assert tables.current(str(tmp_path / "none"), lambda: None) is None

    def unreachable() -> DeltaTable | None:
        raise ZoneStorageError("zone 'raw' at s3://bucket cannot be reached: Connection refused")

    tables.open_ahead({"s3://bucket/t": unreachable})
    with pytest.raises(ZoneStorageError, match="cannot be reached"):
        tables.current("s3://bucket/t", unreachable)


def test_a_process_that_never_uses_a_table_opened_ahead_exits_without_waiting_for_it() -> None:
    """A run that fails before it uses its tables (its zone unreachable, the lease held) must not hang at
    exit behind an open that the store is still retrying."""
    probe = (
        "import time; from zones.storage import TableHandles\n"
        "TableHandles().open_ahead({'u': lambda: time.sleep(20)})"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
    assert time.monotonic() - started < 10
