"""The write path on object stores — the S3 API (moto server) and the GCS API (fake-gcs-server behind the
XML-API shim): same commits, same idempotency, time travel and upkeep, and deltalake, polars and fsspec
(s3fs, gcsfs) reading the same tables, all from one zone config per store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dlt
import fsspec
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from deltalake import DeltaTable, write_deltalake

import zones._delta as delta
import zones._rewrite as rewrite
from zones import DatasetSpec, LoadReport, LoadTarget, ZoneName, lakegate_pipeline, load_config, open_zone

S3_STORAGE = (
    "{key: {env: AWS_ACCESS_KEY_ID}, secret: {env: AWS_SECRET_ACCESS_KEY}, "
    "endpoint_url: {env: AWS_ENDPOINT_URL_S3}}"
)


@pytest.fixture(params=[pytest.param("s3", marks=pytest.mark.s3), pytest.param("gcs", marks=pytest.mark.gcs)])
def cloud_zones(request: pytest.FixtureRequest, lakegate_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every data zone in a fresh bucket of the store's server, settings by environment variable;
    returns the bucket's URL."""
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL_S3": server.url,
            "AWS_EC2_METADATA_DISABLED": "true",  # never fall back to a cloud metadata address
        }.items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=server.url).mkdir(bucket)
        root, storage = f"s3://{bucket}", S3_STORAGE
    else:
        server = request.getfixturevalue("gcs_server")
        monkeypatch.setenv("GCS_ENDPOINT_URL", server.url)
        server.create_bucket(bucket)
        root, storage = f"gs://{bucket}", "{endpoint_url: {env: GCS_ENDPOINT_URL}}"
    config = lakegate_home.parent / "lakegate.yaml"
    config.write_text(
        "zones:\n"
        + "".join(
            f"  {z}: {{url: '{root}/{z}', storage: {storage}}}\n"
            for z in ("raw", "curated", "pii", "quarantine")
        )
    )
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config))
    return root


SPEC = DatasetSpec(domain="shop", name="items", schema={"id": "int64", "price": "float64"})
ROWS = pa.table(
    {
        "id": ["1", "2", "3"],
        "price": ["1.5", "x", "2"],
        "_lakegate_source": ["mem://a"] * 3,
        "_lakegate_position": [1, 2, 3],
    }
)


def _load(home: Path, run_id: str, name: str = "cloud_items") -> LoadReport:
    report = LoadReport()
    target = LoadTarget(
        dataset=SPEC, zone=ZoneName.RAW, pipeline="cloud", run_id=run_id, config=load_config()
    )

    @dlt.resource(name="items")
    def items() -> Iterator[pa.Table]:
        yield ROWS

    with lakegate_pipeline(name, target, report, home / "dlt") as pipeline:
        pipeline.run(items())
    return report


def test_raw_commit_is_typed_audited_and_versioned(cloud_zones: str, lakegate_home: Path) -> None:
    report = _load(lakegate_home, "r1")
    assert (report.committed_rows, report.quarantined_rows) == (2, 1)
    config = load_config()
    raw = open_zone("raw", config)
    assert raw.config.url == f"{cloud_zones}/raw"
    assert sorted(raw.read("shop", "items")["id"].to_list()) == [1, 3]
    assert open_zone("quarantine", config).read("shop", "items").height == 1
    version = raw.delta_table("shop", "items").version()  # type: ignore[union-attr]
    _load(lakegate_home, "r2")  # a new load of the same rows is new data: appended again, versioned
    assert raw.delta_table("shop", "items").version() == version + 1  # type: ignore[union-attr]


def test_a_job_retried_after_its_commits_changes_nothing(
    cloud_zones: str, lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job dies after its raw commit (the audit write fails once); dlt retries the whole job: the
    replayed commit is recognised by its app transaction and skipped."""
    import zones.destination as destination

    real_record, crashes = destination.record, []

    def crash_once_after_raw_commit(zone, entry):  # type: ignore[no-untyped-def]
        real_record(zone, entry)
        if entry.zone == "raw" and not crashes:
            crashes.append(entry.version)
            raise OSError("simulated crash after the raw commit")

    monkeypatch.setattr(destination, "record", crash_once_after_raw_commit)
    report = _load(lakegate_home, "r1")
    assert crashes == [0]
    raw = open_zone("raw", load_config())
    assert raw.delta_table("shop", "items").version() == 0  # type: ignore[union-attr]
    assert raw.read("shop", "items").height == 2
    assert (report.committed_rows, report.quarantined_rows) == (2, 1)


def test_time_travel_upkeep_and_three_readers(cloud_zones: str) -> None:
    raw = open_zone("raw", load_config())
    uri, options = raw.table_uri("shop", "t"), raw.delta_options()
    for i in range(3):  # partition values with a space and a slash: escaped in paths, kept in values
        part = pa.table({"id": [2 * i, 2 * i + 1], "p": ["a b", "c/d"]})
        write_deltalake(uri, part, mode="append", partition_by=["p"], storage_options=options)
    assert raw.read("shop", "t", version=0)["id"].sort().to_list() == [0, 1]
    table = raw.delta_table("shop", "t")
    assert table is not None and table.version() == 2
    table.delete("id = 0")
    table.optimize.compact()
    table.create_checkpoint()
    removed = table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert removed  # the files the delete and the compaction replaced are gone from the bucket
    expected = list(range(1, 6))
    assert sorted(raw.read("shop", "t")["id"].to_list()) == expected
    assert sorted(pl.read_delta(uri, storage_options=options)["id"].to_list()) == expected
    assert sorted(pl.scan_delta(uri, storage_options=options).collect()["id"].to_list()) == expected
    assert set(raw.read("shop", "t")["p"].to_list()) == {"a b", "c/d"}
    # fsspec (s3fs / gcsfs, options from the same zone config) sees the same live files
    fs, root = fsspec.core.url_to_fs(uri, **raw.fsspec_options())
    live = DeltaTable(uri, storage_options=options).file_uris()
    rows = sum(pq.read_metadata(fs.open(f"{root}/{_relative(u, uri)}")).num_rows for u in live)
    assert rows == len(expected)
    assert not any(name.endswith(".tmp") for name in fs.ls(f"{root}/_delta_log"))


def test_a_data_file_larger_than_one_upload_part(cloud_zones: str) -> None:
    """~16 MB of incompressible values: deltalake writes the file as a multipart upload (5 MB parts)."""
    raw = open_zone("raw", load_config())
    uri, options = raw.table_uri("shop", "big"), raw.delta_options()
    values = np.random.default_rng(7).integers(0, 2**62, 2_000_000)
    write_deltalake(uri, pa.table({"v": values}), storage_options=options)
    table = DeltaTable(uri, storage_options=options)
    assert table.get_add_actions(flatten=True).column("size_bytes")[0].as_py() > 10_000_000
    read = pl.read_delta(uri, storage_options=options)["v"].to_numpy()
    assert np.array_equal(np.sort(read), np.sort(values))


def _relative(file_uri: str, table_uri: str) -> str:
    # Delta escapes partition values in object names ("p=a%20b" is the key itself): no unquoting.
    return file_uri.removeprefix(table_uri + "/")


_APPENDER = """
import json, os, sys
import pyarrow as pa
from deltalake import write_deltalake
uri, options, writer = sys.argv[1], json.loads(os.environ["DELTA_OPTIONS"]), int(sys.argv[2])
for i in range(5):
    write_deltalake(uri, pa.table({"writer": [writer], "n": [i]}), mode="append", storage_options=options)
"""


def test_concurrent_appends_are_all_kept(cloud_zones: str) -> None:
    """Two processes append to one table at once: the put-if-absent commit (S3 ``If-None-Match``, GCS
    ``ifGenerationMatch=0``) makes the loser retry at the next version, so every append is a version of
    its own and no row is lost — no lock provider, no unsafe rename (see ``zones/_stores.py``)."""
    raw = open_zone("raw", load_config())
    uri, options = raw.table_uri("shop", "concurrent"), raw.delta_options()
    write_deltalake(uri, pa.table({"writer": [0], "n": [0]}), storage_options=options)
    env = {**os.environ, "DELTA_OPTIONS": json.dumps(options)}
    writers = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, uri, str(w)], env=env, stderr=subprocess.PIPE)
        for w in (1, 2)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()[-2000:]
    table = raw.delta_table("shop", "concurrent")
    assert table is not None and table.version() == 10
    got = raw.read("shop", "concurrent").sort("writer", "n")
    assert got.rows() == [(0, 0)] + [(w, n) for w in (1, 2) for n in range(5)]


def _priced(ids: list[int], price: float) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "price": pa.array([price] * len(ids)),
            delta.PARTITION_COLUMN: pa.array([date(2026, 12, 1)] * len(ids), pa.date32()),
        }
    )


def test_a_small_merge_rewrites_the_file_holding_its_keys_on_the_store(cloud_zones: str) -> None:
    """The rewrite reads and writes through the store's filesystem; a commit made in between sends the
    batch to Delta's merge and leaves no file of the rewrite behind."""
    curated = open_zone("curated", load_config())
    uri, options, fs_options = (
        curated.table_uri("shop", "merged"),
        curated.delta_options(),
        curated.fsspec_options(),
    )
    stored = _priced(list(range(1, 101)), 1.0)
    delta.append_stream(uri, stored.schema, stored.to_batches(max_chunksize=50), options, fs_options, [], 50)
    held = delta.open_table(uri, options)
    delta.upsert(uri, _priced([10, 11, 500], 2.0), ("id",), options, [], fs_options=fs_options, table=held)
    entry = DeltaTable(uri, storage_options=options).history(1)[0]
    assert entry.get(rewrite.REWRITE_KEY) and entry["operationMetrics"]["num_target_files_removed"] == 1
    other = delta.open_table(uri, options)
    delta.upsert(uri, _priced([12], 3.0), ("id",), options, [], fs_options=fs_options, table=other)
    delta.upsert(uri, _priced([12, 13], 4.0), ("id",), options, [], fs_options=fs_options, table=held)
    table = DeltaTable(uri, storage_options=options)
    assert not table.history(1)[0].get(rewrite.REWRITE_KEY)  # the held handle was stale: Delta's merge
    rows = pl.from_arrow(table.to_pyarrow_table())
    assert isinstance(rows, pl.DataFrame)
    assert rows.height == rows["id"].n_unique() == 101
    assert dict(rows.filter(pl.col("id").is_in([10, 12, 13, 500])).select("id", "price").iter_rows()) == {
        10: 2.0, 12: 4.0, 13: 4.0, 500: 2.0
    }  # fmt: skip
    fs, root = fsspec.core.url_to_fs(uri, **fs_options)
    on_disk = {p.removeprefix(root).lstrip("/") for p in fs.find(root) if p.endswith(".parquet")}
    every_add = {
        json.loads(line)["add"]["path"]
        for log in fs.find(f"{root}/_delta_log")
        if log.endswith(".json")
        for line in fs.cat_file(log).decode().splitlines()
        if '"add"' in line
    }
    assert on_disk == every_add  # the rewrite's files, never committed, are gone
