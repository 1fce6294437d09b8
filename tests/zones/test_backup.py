"""Backups and restores on real Delta tables (tmp dirs, and S3 through moto): a backup copies only what
is new, a restore equals the backed-up version, ``--as-of`` reads the version current at a time."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import s3fs
from deltalake import DeltaTable, write_deltalake
from polars.testing import assert_frame_equal

from dagster_project.backups import backup_definitions
from dagster_project.cli import main
from dagster_project.resources import ZONES, ZonesResource
from lakegate.columns import INGEST_DATE
from zones import ZoneName, load_config, open_zone, read_audit
from zones.backup import BackupError, backup_zone, restore

TODAY = datetime.now(UTC).date()


def _config(home: Path, monkeypatch: pytest.MonkeyPatch, backup: str) -> None:
    config = home.parent / "lakegate.yaml"
    config.write_text(f"zones:\n  raw:\n    backup: {backup}\n")
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config))


@pytest.fixture
def backed(lakegate_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Zone raw backs up to ``<tmp>/backup``."""
    target = lakegate_home.parent / "backup"
    _config(lakegate_home, monkeypatch, f"{{url: '{target.as_uri()}'}}")
    return target


def _orders_uri() -> str:
    return open_zone(ZoneName.RAW, load_config()).table_uri("sales", "orders")


def _commit(uri: str, ids: list[int], day: int = 0) -> None:
    frame = pl.DataFrame({"id": ids, INGEST_DATE: [TODAY - timedelta(days=day)] * len(ids)})
    write_deltalake(uri, frame.to_arrow(), mode="append", partition_by=[INGEST_DATE])


def _three_versions(uri: str) -> None:
    _commit(uri, [1, 2, 3], day=1)
    _commit(uri, [4, 5])
    DeltaTable(uri).delete("id = 2")


def _read(uri: str, version: int | None = None, options: dict[str, str] | None = None) -> pl.DataFrame:
    return pl.read_delta(DeltaTable(uri, version=version, storage_options=options)).sort("id")


def test_backup_is_incremental_and_a_restore_equals_the_source_version(backed: Path, tmp_path: Path) -> None:
    uri = _orders_uri()
    _three_versions(uri)
    config = load_config()

    first = {b.dataset: b for b in backup_zone(config, ZoneName.RAW)}["sales/orders"]
    assert first.versions == (0, 1, 2)
    assert first.files_copied == 3 + 3  # three log entries, three data files (the delete rewrites one)
    assert [b.files_copied for b in backup_zone(config, ZoneName.RAW)] == [0]  # nothing new

    _commit(uri, [6])
    again = backup_zone(config, ZoneName.RAW)[0]
    assert (again.versions, again.files_copied) == ((3,), 2)

    for version in (1, 3):
        to = (tmp_path / f"restored{version}").as_uri()
        done = restore(config, ZoneName.RAW, "sales/orders", version=version, to=to, run_id="t")
        assert (done.from_version, done.version) == (version, 0)
        assert_frame_equal(_read(to), _read(uri, version))
    audit = read_audit(open_zone(ZoneName.RAW, config)).filter(pl.col("operation") == "restore")
    assert audit.sort("txn_version")["txn_version"].to_list() == [1, 3]


def test_restore_at_the_zone_location_refuses_a_non_empty_table_unless_forced(backed: Path) -> None:
    uri = _orders_uri()
    _three_versions(uri)
    config = load_config()
    backup_zone(config, ZoneName.RAW)
    source_v1 = _read(uri, 1)

    with pytest.raises(BackupError, match="non-empty table; restore elsewhere with --to"):
        restore(config, ZoneName.RAW, "sales/orders", version=1, run_id="t")
    assert main(["restore", "raw", "sales/orders", "--version", "1", "--force"]) == 0
    assert_frame_equal(_read(uri), source_v1)
    with pytest.raises(BackupError, match="has no version 9; the latest is 2"):
        restore(config, ZoneName.RAW, "sales/orders", version=9, force=True, run_id="t")


def test_restore_of_a_dropped_table_rebuilds_it_at_its_zone_location(backed: Path) -> None:
    uri = _orders_uri()
    _three_versions(uri)
    expected = _read(uri)
    assert main(["backup", "raw"]) == 0
    for path in sorted(Path(uri.removeprefix("file://")).rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()

    assert main(["restore", "raw", "sales/orders"]) == 0
    assert_frame_equal(_read(uri), expected)


def test_a_zone_without_backup_is_one_line(lakegate_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backup", "raw"]) == 2
    assert "lakegate: error: zone raw has no backup; add 'backup: {url: ...}'" in capsys.readouterr().err


def test_backup_to_s3_and_restore_from_it(
    lakegate_home: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    storage = (
        "{key: {env: AWS_ACCESS_KEY_ID}, secret: {env: AWS_SECRET_ACCESS_KEY}, "
        "endpoint_url: {env: AWS_ENDPOINT_URL_S3}}"
    )
    _config(lakegate_home, monkeypatch, f"{{url: 's3://vault/lake', storage: {storage}}}")
    s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=s3_endpoint).mkdir("vault")
    uri = _orders_uri()
    _three_versions(uri)
    config = load_config()

    assert backup_zone(config, ZoneName.RAW)[0].files_copied == 6
    assert backup_zone(config, ZoneName.RAW)[0].files_copied == 0
    to = (tmp_path / "restored").as_uri()
    restore(config, ZoneName.RAW, "sales/orders", version=1, to=to, run_id="t")
    assert_frame_equal(_read(to), _read(uri, 1))


def test_as_of_reads_the_version_current_at_that_time(
    lakegate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = _orders_uri()
    _commit(uri, [1])
    time.sleep(0.4)
    _commit(uri, [2])
    time.sleep(0.4)
    _commit(uri, [3])
    stamps = {e["version"]: e["timestamp"] for e in DeltaTable(uri).history()}

    def at(millis: int) -> str:
        return datetime.fromtimestamp(millis / 1000, UTC).isoformat()

    # Instants well between commits: Delta resolves a time by the log files' timestamps, which may
    # differ by a few milliseconds from the commit info's.
    halfway = [(stamps[v] + stamps[v + 1]) // 2 for v in (0, 1)]
    for version, when in ((0, at(halfway[0])), (1, at(halfway[1])), (2, at(stamps[2] + 200))):
        assert main(["table", "raw", "sales/orders", "--as-of", when, "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert (info["version"], info["rows"]) == (version, version + 1)
    naive = datetime.fromtimestamp(halfway[1] / 1000, UTC).replace(tzinfo=None).isoformat()
    assert main(["table", "raw", "sales/orders", "--as-of", naive, "--head", "5", "--json"]) == 0
    assert sorted(r["id"] for r in json.loads(capsys.readouterr().out)) == [1, 2]

    assert main(["table", "raw", "sales/orders", "--as-of", "2001-01-01T00:00:00Z"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "lakegate: error: raw/sales/orders did not exist at 2001-01-01T00:00:00+00:00; "
        f"its first commit is at {at(stamps[0])}"
    )


def test_a_zone_with_backup_gets_a_daily_backup_job(backed: Path) -> None:
    _three_versions(_orders_uri())
    zones = ZonesResource()
    defs = dg.Definitions.merge(backup_definitions(zones), dg.Definitions(resources={ZONES: zones}))
    schedule = defs.resolve_schedule_def("backup_raw_schedule")
    assert (schedule.cron_schedule, schedule.job_name) == ("0 3 * * *", "lakegate_backup_raw_job")

    job = defs.resolve_job_def("lakegate_backup_raw_job")
    assert job.execute_in_process().output_for_node("backup_raw") == 6
    assert job.execute_in_process().output_for_node("backup_raw") == 0
    assert _read((backed / "sales" / "orders").as_uri()).height == 4


def test_no_backup_setting_no_backup_job(lakegate_home: Path) -> None:
    assert not list(backup_definitions(ZonesResource()).schedules or [])


def test_a_broken_zone_config_hides_no_other_definition(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(lakegate_home, monkeypatch, "{url: 'ftp://nowhere'}")
    assert not list(backup_definitions(ZonesResource()).jobs or [])
    assert main(["backup", "raw"]) == 2  # the run reports the config error itself
