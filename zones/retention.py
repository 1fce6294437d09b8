"""Retention and table upkeep of zone datasets: plan (a dry run) and apply, Dagster-free.

For each dataset the plan says exactly what apply will do and why:

- **vacuum**: files no version inside the time-travel window needs (tombstoned before ``now -
  time_travel``) are removed from storage. Delta's own ``enforce_retention_duration`` guard is switched
  off explicitly because the window is lakegate's (checked at load, at least the zone's ``time_travel``);
  the table properties are set to the same window so other Delta engines honour it too.
- **delete**: ingest-date partitions older than the retention (or rows whose event-time column is) are
  deleted by one Delta ``delete`` whose predicate lists them; partitions under a legal hold are kept and
  listed with the hold. Their files stay readable by time travel until a later vacuum, once they left
  the window.
- **upkeep** (when the dataset's consumer has applied every append): compaction to ``target_file_size``
  (the table's own ``delta.targetFileSize`` when it has one: a table merged by key keeps small files),
  a checkpoint, log cleanup and the expiry of load-job replay guards older than the window
  (``delta.setTransactionRetentionDuration``). Source positions carry no ``lastUpdated`` and never expire.

The **landing** zone holds files, not tables: once committed, a landing file is moved to the dataset's
archive, ``<landing>/_archive/<domain>/<dataset>/<commit day>/<name>`` (:func:`archive_url`), and a
day folder older than the landing retention is deleted file by file (held days kept). Files still
waiting in a drop folder are never touched.

Every vacuum and delete is written to the zone's retention audit table. The clock is injectable: ``now``
is a parameter, never read inside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fsspec
import polars as pl
from deltalake import DeltaTable

from lakegate.columns import INGEST_DATE
from zones._durations import delta_interval
from zones.audit import append_record, read_records
from zones.config import Hold, LakegateConfig, ZoneName
from zones.errors import ZoneError
from zones.storage import Zone, open_zone

RETENTION_AUDIT = "_lakegate/retention"
TARGET_FILE_SIZE = 128 * 1024 * 1024
ARCHIVE_FOLDER = "_archive"


def archive_url(config: LakegateConfig, domain: str, dataset: str) -> str:
    """The landing archive of a dataset, ``<landing>/_archive/<domain>/<dataset>``."""
    return f"{config.zone(ZoneName.LANDING).url.rstrip('/')}/{ARCHIVE_FOLDER}/{domain}/{dataset}"


class RetentionError(ZoneError, RuntimeError):
    """A retention step did not do what its plan said (the table changed between plan and apply)."""


@dataclass(frozen=True)
class Policy:
    """The retention of one dataset in one zone.

    Attributes:
        retention: How long rows are kept (``None``: forever; vacuum and upkeep still run).
        time_travel: How long old versions stay readable.
        declared_in: Where the retention comes from, e.g. ``defs.yaml retention.raw`` (shown and audited).
        column: Event-time column rows expire by; ``None``: the ingest-date partition.
        upkeep_waits: Why compaction/checkpoint/log cleanup must wait (a consumer has not applied every
            append yet), or ``None``.
    """

    zone: ZoneName
    domain: str
    dataset: str
    retention: timedelta | None
    time_travel: timedelta
    declared_in: str
    column: str | None = None
    upkeep_waits: str | None = None

    @property
    def path(self) -> str:
        return f"{self.domain}/{self.dataset}"

    def describe(self) -> str:
        kept = "forever" if self.retention is None else f"{self.retention.days}d"
        on = "archive day" if self.zone is ZoneName.LANDING else self.column or INGEST_DATE
        return f"keep {kept} by {on} ({self.declared_in}), time travel {self.time_travel.days}d"


@dataclass(frozen=True)
class DatasetPlan:
    """What apply will do to one dataset, with the reasons."""

    policy: Policy
    version: int
    cutoff: datetime | None
    predicate: str | None
    delete_rows: int
    delete_files: int
    delete_bytes: int
    expired_partitions: tuple[str, ...]
    held: tuple[str, ...]
    vacuum_files: tuple[str, ...]
    vacuum_bytes: int
    vacuum_hours: int
    compact_files: int
    compact_bytes: int
    target_file_size: int
    archived: tuple[str, ...] = ()
    """Landing only: the archived files to delete (URLs)."""

    @property
    def expired(self) -> bool:
        """Something left its retention or its time-travel window: a retention run has work."""
        return self.delete_rows > 0 or bool(self.vacuum_files) or bool(self.archived)

    def summary(self) -> dict[str, Any]:
        """The counts (what ``lakegate retention plan`` prints and apply reports)."""
        return {
            "zone": self.policy.zone.value,
            "dataset": self.policy.path,
            "policy": self.policy.describe(),
            "delete": {"rows": self.delete_rows, "files": self.delete_files, "bytes": self.delete_bytes},
            "predicate": self.predicate,
            "expired_partitions": list(self.expired_partitions),
            "held": list(self.held),
            "vacuum": {"files": len(self.vacuum_files), "bytes": self.vacuum_bytes},
            "compact": {"files": self.compact_files, "bytes": self.compact_bytes},
            "upkeep": self.policy.upkeep_waits or "compact, checkpoint, clean log, expire replay guards",
        } | ({"archived": list(self.archived), "upkeep": "none (archived files)"} if self.is_archive else {})

    @property
    def is_archive(self) -> bool:
        """A plan of landing files (an archive), not of a Delta table."""
        return self.policy.zone is ZoneName.LANDING


@dataclass(frozen=True)
class RetentionRecord:
    """One audited retention action. Never holds data values."""

    zone: str
    dataset: str
    operation: str
    predicate: str
    rows: int
    files: int
    bytes: int
    policy: str
    run_id: str
    version: int
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def plan_dataset(
    config: LakegateConfig,
    policy: Policy,
    holds: Sequence[Hold],
    now: datetime,
    target_file_size: int = TARGET_FILE_SIZE,
) -> DatasetPlan | None:
    """Plan retention and upkeep of one dataset as of ``now``; ``None`` when its table (landing: its
    archive) does not exist."""
    if policy.zone is ZoneName.LANDING:
        return _plan_archive(config, policy, holds, now, target_file_size)
    zone = open_zone(policy.zone, config)
    table = zone.delta_table(policy.domain, policy.dataset)
    if table is None:
        return None
    files = pl.DataFrame(table.get_add_actions(flatten=True))  # arro3 table, via the Arrow C interface
    part = f"partition.{INGEST_DATE}"
    days = files[part].cast(pl.Date) if part in files.columns else pl.Series(part, [None] * files.height)
    files = files.with_columns(days.alias("day"))
    held_days = {
        d: h.describe()
        for d in files["day"].drop_nulls().unique().to_list()
        for h in holds
        if h.covers(policy.zone, policy.path, d)
    }
    held_flags = files["day"].is_in(list(held_days))
    cutoff = None if policy.retention is None else now - policy.retention
    predicate, rows, doomed = None, 0, files.clear()
    expired_days: list[date] = []
    if cutoff is not None and policy.column is None:
        doomed = files.filter((pl.col("day") < cutoff.date()) & ~held_flags)
        expired_days = sorted(doomed["day"].unique().to_list())
        rows = int(doomed["num_records"].sum())
        if expired_days:
            listed = ", ".join(f"'{d.isoformat()}'" for d in expired_days)
            predicate = f'"{INGEST_DATE}" IN ({listed})'
    elif cutoff is not None and policy.column is not None:
        predicate, rows, doomed = _event_time(table, files, policy.column, cutoff, list(held_days))
    hours = _vacuum_hours(now, policy.time_travel)
    unneeded = table.vacuum(retention_hours=hours, dry_run=True, enforce_retention_duration=False)
    vacuum = _on_storage(zone, table, unneeded)
    target_file_size = _target_size(table, target_file_size)
    kept = files.filter(~pl.col("path").is_in(doomed["path"].implode()))
    compact_files, compact_bytes = _compaction(kept, target_file_size)
    waits = policy.upkeep_waits is not None
    return DatasetPlan(
        policy=policy,
        version=table.version(),
        cutoff=cutoff,
        predicate=predicate if rows else None,
        delete_rows=rows,
        delete_files=doomed.height if rows else 0,
        delete_bytes=int(doomed["size_bytes"].sum()) if rows else 0,
        expired_partitions=tuple(d.isoformat() for d in expired_days),
        held=tuple(f"{d.isoformat()}: {why}" for d, why in sorted(held_days.items())),
        vacuum_files=tuple(vacuum),
        vacuum_bytes=sum(vacuum.values()),
        vacuum_hours=hours,
        compact_files=0 if waits else compact_files,
        compact_bytes=0 if waits else compact_bytes,
        target_file_size=target_file_size,
    )


def _target_size(table: DeltaTable, default: int) -> int:
    """The table's own ``delta.targetFileSize`` (in bytes) when it has one, else ``default``.

    A table merged by key has its own, small (``zones._delta.MERGED_TABLE_CONFIGURATION``): compacted to
    ``default`` (128 MiB), the curate benchmark's 4.5M-row curated table became two files of 2.4M rows with
    overlapping keys, and every later 1,000-row merge would rewrite one of them.
    """
    own = table.metadata().configuration.get("delta.targetFileSize", "")
    return int(own) if own.isdigit() else default


def _compaction(files: pl.DataFrame, target: int) -> tuple[int, int]:
    """The files and bytes Delta's compaction rewrites, binned as its planner bins them: per day, the files
    of at most ``target`` bytes, largest first, each into the first bin it fits; a bin of one file is left
    alone. (deltalake 1.6 bins a few files otherwise at times: its count may differ by a few.)"""
    count, size = 0, 0
    for day in files.filter(pl.col("size_bytes") <= target).partition_by("day"):
        bins: list[list[int]] = []  # [bytes, files]
        for length in sorted(day["size_bytes"].to_list(), reverse=True):
            fitting = next((b for b in bins if b[0] + length <= target), None)
            if fitting is None:
                bins.append([length, 1])
            else:
                fitting[0] += length
                fitting[1] += 1
        count += sum(files for _, files in bins if files > 1)
        size += sum(total for total, files in bins if files > 1)
    return count, size


def _plan_archive(
    config: LakegateConfig, policy: Policy, holds: Sequence[Hold], now: datetime, target_file_size: int
) -> DatasetPlan | None:
    """The archived landing files of day folders older than the retention, held days excepted."""
    zone = open_zone(ZoneName.LANDING, config)
    url = archive_url(config, policy.domain, policy.dataset)
    fs, root = fsspec.core.url_to_fs(url, **zone.fsspec_options())
    if not fs.isdir(root):
        return None
    days = {}
    for entry in fs.ls(root, detail=True):
        if entry["type"] != "directory":
            continue
        try:
            days[date.fromisoformat(entry["name"].rstrip("/").rsplit("/", 1)[-1])] = entry["name"]
        except ValueError:  # not a day folder: not lakegate's, never deleted
            continue
    held = {d: h.describe() for d in days for h in holds if h.covers(policy.zone, policy.path, d)}
    cutoff = None if policy.retention is None else now - policy.retention
    expired = sorted(d for d in days if cutoff is not None and d < cutoff.date() and d not in held)
    doomed = {
        path: int(info.get("size") or 0)
        for day in expired
        for path, info in fs.find(days[day], detail=True).items()
    }
    return DatasetPlan(
        policy=policy,
        version=0,  # files, not a Delta table
        cutoff=cutoff,
        predicate=f"archived before {cutoff.date().isoformat()}" if doomed and cutoff else None,
        delete_rows=0,
        delete_files=len(doomed),
        delete_bytes=sum(doomed.values()),
        expired_partitions=tuple(d.isoformat() for d in expired),
        held=tuple(f"{d.isoformat()}: {why}" for d, why in sorted(held.items())),
        vacuum_files=(),
        vacuum_bytes=0,
        vacuum_hours=0,
        compact_files=0,
        compact_bytes=0,
        target_file_size=target_file_size,
        archived=tuple(fs.unstrip_protocol(p) for p in sorted(doomed)),
    )


def _apply_archive(config: LakegateConfig, plan: DatasetPlan, run_id: str) -> Applied:
    """Delete exactly the archived files ``plan`` lists (one already gone is not counted), then the day
    folders left empty, and audit it."""
    policy = plan.policy
    zone = open_zone(ZoneName.LANDING, config)
    options = zone.fsspec_options()
    deleted: dict[str, int] = {}
    for url in plan.archived:
        fs, path = fsspec.core.url_to_fs(url, **options)
        try:
            size = int(fs.size(path))
            fs.rm(path)
        except FileNotFoundError:
            continue
        deleted[url] = size
    fs, root = fsspec.core.url_to_fs(archive_url(config, policy.domain, policy.dataset), **options)
    for day in plan.expired_partitions:
        for folder in [*sorted(fs.find(f"{root}/{day}", withdirs=True), reverse=True), f"{root}/{day}"]:
            if fs.isdir(folder) and not fs.ls(folder):
                fs.rmdir(folder)
    if deleted:
        _audit(
            zone,
            RetentionRecord(
                zone=policy.zone.value,
                dataset=policy.path,
                operation="delete",
                predicate=plan.predicate or "",
                rows=0,
                files=len(deleted),
                bytes=sum(deleted.values()),
                policy=policy.describe(),
                run_id=run_id,
                version=0,
            ),
        )
    return Applied(
        plan=plan,
        deleted_rows=0,
        deleted_files=len(deleted),
        deleted_bytes=sum(deleted.values()),
        vacuumed_files=0,
        compacted_files=0,
        compacted_into=0,
        checkpoint_version=None,
    )


def _event_time(
    table: DeltaTable, files: pl.DataFrame, column: str, cutoff: datetime, held: list[date]
) -> tuple[str, int, pl.DataFrame]:
    """Rows whose event time is before ``cutoff`` (outside held partitions) and the files holding them."""
    stamp = cutoff.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    predicate = f"\"{column}\" < '{stamp}'"
    if held:
        listed = ", ".join(f"'{d.isoformat()}'" for d in held)
        predicate += f' AND "{INGEST_DATE}" NOT IN ({listed})'
    scan = pl.scan_delta(table).filter(pl.col(column) < cutoff, ~pl.col(INGEST_DATE).is_in(held))
    rows = int(scan.select(pl.len()).collect().item())
    doomed = files.filter((pl.col(f"min.{column}") < cutoff) & ~pl.col("day").is_in(held))
    return predicate, rows, doomed


def _vacuum_hours(now: datetime, window: timedelta) -> int:
    """Delta vacuums by hours before the *wall clock*; the injected ``now`` may differ from it, so the
    window's start (``now - window``) is converted to hours before the wall clock (rounded so that
    fewer files go, never more)."""
    start = now - window
    return max(0, math.floor((datetime.now(UTC) - start).total_seconds() / 3600))


def _on_storage(zone: Zone, table: DeltaTable, paths: Sequence[str]) -> dict[str, int]:
    """The listed files still on storage, with their sizes.

    Delta keeps a tombstone after vacuum removed its file (until the log entry is cleaned), and its dry
    run lists it again: a file already gone is no work and must not trigger a retention run.
    """
    if not paths:
        return {}
    fs, root = fsspec.core.url_to_fs(table.table_uri, **zone.fsspec_options())
    found = {}
    for path in paths:
        try:
            found[path] = int(fs.size(f"{root.rstrip('/')}/{path}"))
        except FileNotFoundError:
            continue
    return found


@dataclass(frozen=True)
class Applied:
    """What apply did to one dataset, from Delta's own operation metrics."""

    plan: DatasetPlan
    deleted_rows: int
    deleted_files: int
    deleted_bytes: int
    vacuumed_files: int
    compacted_files: int
    compacted_into: int
    checkpoint_version: int | None

    def metadata(self) -> dict[str, Any]:
        """Counts for a Dagster materialization or a CLI line."""
        return {
            "deleted_rows": self.deleted_rows,
            "deleted_files": self.deleted_files,
            "deleted_bytes": self.deleted_bytes,
            "vacuumed_files": self.vacuumed_files,
            "compacted_files": self.compacted_files,
            "compacted_into": self.compacted_into,
            "checkpoint_version": -1 if self.checkpoint_version is None else self.checkpoint_version,
            "policy": self.plan.policy.describe(),
        }


def apply_dataset(config: LakegateConfig, plan: DatasetPlan, run_id: str) -> Applied:
    """Do what ``plan`` says, in this order: window properties, vacuum, delete, upkeep.

    Vacuum runs before the delete so that the files the delete removes stay readable for the whole
    time-travel window (a later run vacuums them).

    Raises:
        RetentionError: the delete removed other counts than planned (the table changed in between).
    """
    if plan.is_archive:
        return _apply_archive(config, plan, run_id)
    policy = plan.policy
    zone = open_zone(policy.zone, config)
    table = zone.delta_table(policy.domain, policy.dataset)
    if table is None:
        raise RetentionError(f"{policy.zone.value}/{policy.path}: table vanished since it was planned")
    _set_window(table, policy.time_travel)
    removed = table.vacuum(retention_hours=plan.vacuum_hours, dry_run=False, enforce_retention_duration=False)
    vacuumed = [path for path in removed if path in plan.vacuum_files]  # not tombstones already gone
    if vacuumed:
        _audit(
            zone,
            RetentionRecord(
                zone=policy.zone.value,
                dataset=policy.path,
                operation="vacuum",
                predicate=f"tombstoned > {policy.time_travel.days}d ago",
                rows=0,
                files=len(vacuumed),
                bytes=plan.vacuum_bytes,
                policy=policy.describe(),
                run_id=run_id,
                version=table.version(),
            ),
        )
    deleted = {"num_deleted_rows": 0, "num_removed_files": 0}
    if plan.predicate is not None:
        deleted = table.delete(plan.predicate)
        if int(deleted["num_deleted_rows"]) != plan.delete_rows:
            raise RetentionError(
                f"{policy.zone.value}/{policy.path}: deleted {deleted['num_deleted_rows']} rows where "
                f"{plan.delete_rows} were planned; run 'lakegate retention plan' again"
            )
        _audit(
            zone,
            RetentionRecord(
                zone=policy.zone.value,
                dataset=policy.path,
                operation="delete",
                predicate=plan.predicate,
                rows=plan.delete_rows,
                files=int(deleted["num_removed_files"]),
                bytes=plan.delete_bytes,
                policy=policy.describe(),
                run_id=run_id,
                version=table.version(),
            ),
        )
    compacted, into, checkpoint = 0, 0, None
    if policy.upkeep_waits is None:
        metrics = table.optimize.compact(target_size=plan.target_file_size)
        compacted, into = int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])
        table.create_checkpoint()
        table.cleanup_metadata()  # only log entries before the checkpoint and older than the window
        checkpoint = table.version()
    return Applied(
        plan=plan,
        deleted_rows=int(deleted["num_deleted_rows"]),
        deleted_files=int(deleted["num_removed_files"]),
        deleted_bytes=plan.delete_bytes if plan.predicate else 0,
        vacuumed_files=len(vacuumed),
        compacted_files=compacted,
        compacted_into=into,
        checkpoint_version=checkpoint,
    )


def _set_window(table: DeltaTable, window: timedelta) -> None:
    """Tell Delta the time-travel window: log entries, removed files and replay guards live as long.

    Automatic log cleanup is switched off: the upkeep cleans the log only after a checkpoint taken when
    every consumer has applied every append, so "files appended since version N" stays answerable.
    """
    interval = delta_interval(window)
    wanted = {
        "delta.logRetentionDuration": interval,
        "delta.deletedFileRetentionDuration": interval,
        "delta.setTransactionRetentionDuration": interval,
        "delta.enableExpiredLogCleanup": "false",
    }
    current = table.metadata().configuration
    if any(current.get(k) != v for k, v in wanted.items()):
        table.alter.set_table_properties(wanted)


def _audit(zone: Zone, entry: RetentionRecord) -> None:
    append_record(zone, RETENTION_AUDIT, entry)


def read_retention_audit(zone: Zone) -> pl.DataFrame:
    """The zone's retention audit (empty when nothing was deleted or vacuumed yet)."""
    return read_records(zone, RETENTION_AUDIT)


__all__ = [
    "ARCHIVE_FOLDER",
    "Applied",
    "DatasetPlan",
    "Policy",
    "RetentionError",
    "RetentionRecord",
    "apply_dataset",
    "archive_url",
    "plan_dataset",
    "read_retention_audit",
]
