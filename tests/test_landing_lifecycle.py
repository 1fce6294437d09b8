"""The landing-zone lifecycle: a file's identity is committed in the zone with its data, a run resumes from
the zone (dlt's folder is a cache), committed landing files move to the archive, and retention deletes
archived files once expired (holds win, waiting files are never touched)."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import s3fs

from connectors.files import ArchiveError
from dagster_project.cli import main
from lakegate.columns import POSITION, SOURCE
from pipelines import PipelineSpec, ingest
from pipelines.retention import Declared, apply, plan
from zones import ZoneName, committed_positions, load_config, open_zone
from zones.config import LakegateConfig
from zones.retention import archive_url, read_retention_audit


def _today() -> date:
    """The UTC day now (not at import: a suite that runs past midnight archives under the new day)."""
    return datetime.now(UTC).date()


def _spec(url: str = "lakegate://landing/shop/orders/*.csv", **retention: str) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "orders",
            "domain": "shop",
            "pattern": "EL",
            "connector": {"type": "files", "config": {"url": url}},
            "retention": retention,
        }
    )


def _drop(config: LakegateConfig, name: str, text: str) -> Path:
    folder = Path(open_zone(ZoneName.LANDING, config).config.url.removeprefix("file://")) / "shop" / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def _versions(config: LakegateConfig) -> dict[str, int | None]:
    found = {}
    for zone in (ZoneName.RAW, ZoneName.QUARANTINE):
        table = open_zone(zone, config).delta_table("shop", "orders")
        found[zone.value] = None if table is None else table.version()
    return found


def _archive(config: LakegateConfig) -> Path:
    return Path(archive_url(config, "shop", "orders").removeprefix("file://"))


def _file_txns(config: LakegateConfig, zone: ZoneName) -> dict[int, list[str]]:
    """Delta version -> the file identities (``pos:file:*`` app transactions) its commit carries."""
    log = Path(open_zone(zone, config).table_uri("shop", "orders").removeprefix("file://")) / "_delta_log"
    found: dict[int, list[str]] = {}
    for entry in sorted(log.glob("*.json")):
        actions = [json.loads(line) for line in entry.read_text().splitlines()]
        ids = [a["txn"]["appId"] for a in actions if "txn" in a and a["txn"]["appId"].startswith("pos:file:")]
        if ids:
            found[int(entry.stem)] = ids
    return found


def test_a_fresh_machine_ingests_nothing_again_and_a_new_drop_once(lakegate_home: Path) -> None:
    config = load_config()
    spec = _spec()
    _drop(config, "a.csv", "id,amount\n1,10\n2,20\n3,30,extra\n")
    _drop(config, "b.csv", "id,amount\n4\n5,50,x\n")  # every row rejected: ingested all the same
    first = ingest(spec, run_id="r1")
    assert (first.input_rows, first.committed_rows, first.quarantined_rows) == (5, 2, 3)
    drop = _drop(config, "keep.txt", "").parent
    assert sorted(p.name for p in drop.iterdir()) == ["keep.txt"], "committed files left the drop folder"
    assert sorted(p.name for p in (_archive(config) / _today().isoformat()).iterdir()) == ["a.csv", "b.csv"]
    (drop / "keep.txt").unlink()
    committed = {i for ids in _file_txns(config, ZoneName.RAW).values() for i in ids}
    committed |= {i for ids in _file_txns(config, ZoneName.QUARANTINE).values() for i in ids}
    assert len(committed) == 2

    before = _versions(config)
    shutil.rmtree(lakegate_home / "dlt")  # another machine: no local working folder
    again = ingest(spec, run_id="r2")
    assert again.input_rows == 0 and _versions(config) == before, "a rerun changed a zone"

    _drop(config, "c.csv", "id,amount\n6,60\n7,70\n")
    shutil.rmtree(lakegate_home / "dlt")
    assert ingest(spec, run_id="r3").input_rows == 2
    shutil.rmtree(lakegate_home / "dlt")
    assert ingest(spec, run_id="r4").input_rows == 0
    raw = open_zone(ZoneName.RAW, config).read("shop", "orders")
    assert sorted(raw["id"].to_list()) == ["1", "2", "6", "7"]
    assert not raw.select(SOURCE, POSITION).is_duplicated().any()


def test_a_rewritten_file_of_the_same_name_is_ingested_again(lakegate_home: Path) -> None:
    config = load_config()
    spec = _spec()
    _drop(config, "a.csv", "id,amount\n1,10\n")
    assert ingest(spec, run_id="r1").input_rows == 1
    path = _drop(config, "a.csv", "id,amount\n1,11\n2,20\n")  # the vendor sends a corrected file
    os.utime(path, (1_900_000_000, 1_900_000_000))
    assert ingest(spec, run_id="r2").input_rows == 2
    day = _archive(config) / _today().isoformat()
    archived = sorted(str(p.relative_to(day)) for p in day.rglob("*.csv"))
    assert len(archived) == 2 and "a.csv" in archived, "both deliveries archived, neither overwritten"
    assert sorted((day / "a.csv").read_text().splitlines()) == ["1,10", "id,amount"]


def test_identities_are_committed_only_with_the_last_load_job_of_a_package(lakegate_home: Path) -> None:
    config = load_config()
    # Files of different columns (and reject rows) make dlt rotate its load files: one package, many jobs,
    # loaded in no fixed order.
    _drop(config, "a.csv", "id,amount\n1,10\n2,20,x\n")
    _drop(config, "b.csv", "id,name\n3,c\n")
    _drop(config, "c.csv", "sku\nx\n")
    assert ingest(_spec(), run_id="r1").input_rows == 4
    commits = sorted(_commits(config, ZoneName.RAW) + _commits(config, ZoneName.QUARANTINE))
    assert len(commits) >= 3, "the test needs a package of several load jobs"
    carrying = [ids for _, ids in commits if ids]
    first = next(n for n, (_, ids) in enumerate(commits) if ids)
    assert all(ids for _, ids in commits[first:]), "identities went with a job loaded before another one"
    assert len(carrying) <= 2 and all(sorted(ids) == sorted(carrying[0]) for ids in carrying)
    assert len(carrying[0]) == 3


def _commits(config: LakegateConfig, zone: ZoneName) -> list[tuple[int, list[str]]]:
    """(commit time, file identities it carries) of each commit of the dataset's table in ``zone``."""
    log = Path(open_zone(zone, config).table_uri("shop", "orders").removeprefix("file://")) / "_delta_log"
    found = []
    for entry in sorted(log.glob("*.json")):
        actions = [json.loads(line) for line in entry.read_text().splitlines()]
        [info] = [a["commitInfo"] for a in actions if "commitInfo" in a]
        ids = [a["txn"]["appId"] for a in actions if "txn" in a and a["txn"]["appId"].startswith("pos:file:")]
        found.append((int(info["timestamp"]), ids))
    return found


def test_files_outside_the_landing_zone_are_not_moved(lakegate_home: Path, tmp_path: Path) -> None:
    config = load_config()
    elsewhere = tmp_path / "shared"
    elsewhere.mkdir()
    (elsewhere / "a.csv").write_text("id,amount\n1,10\n")
    spec = _spec(url=f"{elsewhere.as_uri()}/*.csv")
    assert ingest(spec, run_id="r1").input_rows == 1
    shutil.rmtree(lakegate_home / "dlt")
    assert ingest(spec, run_id="r2").input_rows == 0
    assert (elsewhere / "a.csv").exists() and not _archive(config).exists()
    [txns] = _file_txns(config, ZoneName.RAW).values()
    assert len(txns) == 1


def _with_landing(lakegate_home: Path, monkeypatch: pytest.MonkeyPatch, holds: str = "") -> LakegateConfig:
    config_file = lakegate_home.parent / "lakegate.yaml"
    config_file.write_text(f"zones: {{landing: {{retention: 30d}}}}\n{holds}")
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config_file))
    return load_config()


def _archived_on(config: LakegateConfig, day: date, name: str) -> Path:
    path = _archive(config) / day.isoformat() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id\n1\n")
    return path


def test_retention_deletes_only_expired_archived_files_and_held_ones_stay(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held_day = _today() - timedelta(days=45)
    config = _with_landing(
        lakegate_home,
        monkeypatch,
        f"holds: [{{dataset: shop/orders, zone: landing, from: {held_day}, to: {held_day}, "
        f"reason: case 9, who: legal, when: {_today()}}}]\n",
    )
    spec = _spec()
    declared = [Declared(Path("defs.yaml"), spec)]
    waiting = _drop(config, "late.csv", "id\n1\n")  # delivered long ago, never ingested
    os.utime(waiting, (0, 0))
    old = _archived_on(config, _today() - timedelta(days=40), "old.csv")
    held = _archived_on(config, held_day, "held.csv")
    recent = _archived_on(config, _today() - timedelta(days=3), "recent.csv")
    now = datetime.now(UTC)

    planned = plan(declared, config, now, [ZoneName.LANDING])
    [landing] = planned.datasets
    assert landing.expired and landing.archived == (old.as_uri(),)
    assert landing.held == (f"{held_day}: hold by legal since {_today()}: case 9",)
    [done] = apply(declared, config, planned, run_id="ret-1")
    assert (done.deleted_files, done.deleted_bytes) == (1, old.stat().st_size if old.exists() else 5)
    assert not old.exists() and not old.parent.exists()
    assert held.exists() and recent.exists() and waiting.exists()
    audit = read_retention_audit(open_zone(ZoneName.LANDING, config))
    row = audit.row(0, named=True)
    assert (row["zone"], row["dataset"], row["operation"], row["files"], row["run_id"]) == (
        "landing",
        "shop/orders",
        "delete",
        1,
        "ret-1",
    )
    assert not plan(declared, config, now, [ZoneName.LANDING]).expired

    later = now + timedelta(days=365)  # a year on: only the held day's file is left
    [landing] = plan(declared, config, later, [ZoneName.LANDING]).datasets
    assert landing.archived == (recent.as_uri(),)
    assert waiting.exists()


def test_a_pipeline_retention_overrides_the_landing_default(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _with_landing(lakegate_home, monkeypatch)
    old = _archived_on(config, _today() - timedelta(days=40), "old.csv")
    spec = _spec(landing="60d")
    [landing] = plan(
        [Declared(Path("defs.yaml"), spec)], config, datetime.now(UTC), [ZoneName.LANDING]
    ).datasets
    assert not landing.expired and old.exists()
    assert "defs.yaml retention.landing" in landing.policy.describe()


def test_retention_plan_lists_the_archived_files_apply_deletes(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _with_landing(lakegate_home, monkeypatch)
    from pipelines.demo import write_demo

    write_demo(config, rows=20)
    assert main(["run", "orders"]) == 0
    landing = Path(open_zone(ZoneName.LANDING, config).config.url.removeprefix("file://"))
    assert not list((landing / "sales" / "orders").glob("*.csv")), "the demo drops were archived"
    archived = sorted((landing / "_archive" / "sales" / "orders").rglob("*.csv"))
    assert len(archived) == 2
    old_day = (_today() - timedelta(days=31)).isoformat()
    (landing / "_archive" / "sales" / "orders" / _today().isoformat()).rename(
        landing / "_archive" / "sales" / "orders" / old_day
    )
    capsys.readouterr()
    assert main(["retention", "plan", "--zone", "landing", "--json"]) == 0
    [planned] = [p for p in json.loads(capsys.readouterr().out) if p["dataset"] == "sales/orders"]
    assert planned["delete"]["files"] == 2 and len(planned["archived"]) == 2
    assert main(["retention", "apply", "--zone", "landing", "--json"]) == 0
    [applied] = [p for p in json.loads(capsys.readouterr().out) if p["dataset"] == "sales/orders"]
    assert applied["applied"]["deleted_files"] == planned["delete"]["files"]
    assert not list((landing / "_archive" / "sales" / "orders").rglob("*.csv"))
    assert pl.read_delta(f"{landing}/_lakegate/retention")["files"].to_list() == [2]


class _MonthAgo:
    """Stands in for ``zones.positions.time``: identities committed now look 30 days old to Delta."""

    @staticmethod
    def time() -> float:
        return time.time() - 30 * 86400


@pytest.mark.parametrize("in_landing", [True, False], ids=["landing", "elsewhere"])
def test_an_expired_identity_never_causes_a_reingest(
    lakegate_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_landing: bool
) -> None:
    config = load_config()
    if in_landing:
        spec = _spec()
        _drop(config, "a.csv", "id,amount\n1,10\n")
    else:
        (tmp_path / "shared").mkdir()
        (tmp_path / "shared" / "a.csv").write_text("id,amount\n1,10\n")
        spec = _spec(url=f"{(tmp_path / 'shared').as_uri()}/*.csv")
    with monkeypatch.context() as patched:
        patched.setattr("zones.positions.time", _MonthAgo)
        assert ingest(spec, run_id="r1").input_rows == 1
    zones = [open_zone(ZoneName.RAW, config), open_zone(ZoneName.QUARANTINE, config)]
    [identity] = committed_positions(zones, spec.dataset(), [f"file:{i}" for i in _identities(config)])
    declared = [Declared(Path("defs.yaml"), spec)]
    apply(declared, config, plan(declared, config, datetime.now(UTC), [ZoneName.RAW]), run_id="upkeep")
    # Table upkeep set delta.setTransactionRetentionDuration (7d): a landing file's identity, a month
    # old, is gone; one of a file outside the landing zone (never archived) never expires.
    left = committed_positions(zones, spec.dataset(), [identity])
    assert (identity in left) is not in_landing
    before = _versions(config)
    shutil.rmtree(lakegate_home / "dlt")
    assert ingest(spec, run_id="r2").input_rows == 0
    assert _versions(config) == before


def _identities(config: LakegateConfig) -> list[str]:
    return [i.removeprefix("pos:file:") for _, ids in _commits(config, ZoneName.RAW) for i in ids]


@pytest.mark.s3
def test_on_s3_a_fresh_machine_resumes_from_the_zone_and_archives_expire(
    lakegate_home: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = (
        "{key: {env: AWS_ACCESS_KEY_ID}, secret: {env: AWS_SECRET_ACCESS_KEY}, "
        "endpoint_url: {env: AWS_ENDPOINT_URL_S3}}"
    )
    config_file = lakegate_home.parent / "lakegate.yaml"
    kept = {ZoneName.LANDING: ", retention: 30d"}  # archived landing files expire after 30 days
    lines = [f"  {z}: {{url: 's3://lake/{z}', storage: {storage}{kept.get(z, '')}}}\n" for z in ZoneName]
    config_file.write_text("zones:\n" + "".join(lines))
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config_file))
    fs = s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=s3_endpoint)
    fs.mkdir("lake")
    fs.pipe({"lake/landing/shop/orders/a.csv": b"id,amount\n1,10\n2,20,x\n"})
    config = load_config()
    spec = _spec()
    assert ingest(spec, run_id="r1").input_rows == 2
    assert fs.find("lake/landing/shop/orders") == []
    assert fs.find("lake/landing/_archive/shop/orders") == [
        f"lake/landing/_archive/shop/orders/{_today().isoformat()}/a.csv"
    ]
    before = _versions(config)
    shutil.rmtree(lakegate_home / "dlt")
    assert ingest(spec, run_id="r2").input_rows == 0 and _versions(config) == before
    fs.pipe({"lake/landing/shop/orders/b.csv": b"id,amount\n3,30\n"})
    shutil.rmtree(lakegate_home / "dlt")
    assert ingest(spec, run_id="r3").input_rows == 1
    shutil.rmtree(lakegate_home / "dlt")
    assert ingest(spec, run_id="r4").input_rows == 0

    declared = [Declared(Path("defs.yaml"), spec)]
    planned = plan(declared, config, datetime.now(UTC) + timedelta(days=31), [ZoneName.LANDING])
    [landing] = planned.datasets
    assert len(landing.archived) == 2
    [done] = apply(declared, config, planned, run_id="ret-s3")
    assert done.deleted_files == 2 and fs.find("lake/landing/_archive/shop/orders") == []


def test_a_file_that_cannot_be_archived_fails_the_run_in_one_line_and_is_not_ingested_again(
    lakegate_home: Path,
) -> None:
    config = load_config()
    spec = _spec()
    dropped = _drop(config, "a.csv", "id,amount\n1,10\n")
    blocker = _archive(config) / _today().isoformat()  # a file where the day folder must go
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    with pytest.raises(ArchiveError) as err:
        ingest(spec, run_id="r1")
    assert str(err.value).startswith(f"{dropped.as_uri()}: committed, but could not be moved to the archive")
    assert dropped.exists()
    before = _versions(config)
    blocker.unlink()
    assert ingest(spec, run_id="r2").input_rows == 0 and _versions(config) == before
    assert not dropped.exists() and (blocker / "a.csv").exists()
