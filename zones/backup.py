"""Incremental backups of a zone's Delta tables and restores from them, Dagster-free.

A backup of ``<zone url>/<domain>/<dataset>`` is a copy of the table's files at
``<backup url>/<domain>/<dataset>/``, itself a readable Delta table: the backup's own log tells which
versions it holds, and a run copies only the versions committed since (their ``_delta_log`` entries and
checkpoints, and the data files they add). Data files go first and log entries last, in version order,
so an interrupted backup never names a file it lacks; the next run copies the rest again.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from urllib.parse import unquote

import fsspec
import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError
from fsspec import AbstractFileSystem

from zones.audit import AuditRecord, record
from zones.config import BackupConfig, LakegateConfig, Location, ZoneName
from zones.errors import ZoneError
from zones.storage import Zone, delta_options, fsspec_options, open_zone

LOG = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHUNK = 8 * 1024 * 1024
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(\.\d+\.\d+)?\.parquet$")


class BackupError(ZoneError, RuntimeError):
    """A backup or restore cannot be done as asked; the message names the table and the fix."""


@dataclass(frozen=True)
class BackedUp:
    """What one backup run copied for one dataset (``versions`` empty: nothing new)."""

    dataset: str
    versions: tuple[int, ...]
    files_copied: int
    bytes_copied: int


@dataclass(frozen=True)
class Tree:
    """A file system and the root path of a Delta tree on it."""

    fs: AbstractFileSystem
    root: str

    @classmethod
    def of(cls, location: Location) -> Tree:
        fs, root = fsspec.core.url_to_fs(location.url, **fsspec_options(location))
        return cls(fs, root.rstrip("/"))

    def log_files(self, dataset: str) -> list[str]:
        """Names of the files in ``dataset``'s ``_delta_log`` (empty: no table)."""
        try:
            return sorted(
                p.rsplit("/", 1)[-1] for p in self.fs.ls(f"{self.root}/{dataset}/{LOG}", detail=False)
            )
        except FileNotFoundError:
            return []


def backup_location(config: LakegateConfig, zone: ZoneName) -> BackupConfig:
    """The zone's backup setting.

    Raises:
        BackupError: the zone has none (named with the setting to add).
    """
    location = config.zone(zone).backup
    if location is None:
        raise BackupError(
            f"zone {zone.value} has no backup; add 'backup: {{url: ...}}' to zones.{zone.value} in "
            f"{config.source}"
        )
    return location


def datasets(zone: Zone) -> list[str]:
    """``DOMAIN/DATASET`` of every Delta table in the zone (the zone's audit tables included)."""
    tree = Tree.of(zone.config)
    found = tree.fs.glob(f"{tree.root}/*/*/{LOG}")
    return sorted(p.removeprefix(f"{tree.root}/").removesuffix(f"/{LOG}") for p in found)


def backup_zone(config: LakegateConfig, zone_name: ZoneName) -> list[BackedUp]:
    """Copy every dataset's versions committed since its last backup to the zone's backup."""
    zone = open_zone(zone_name, config)
    source, target = Tree.of(zone.config), Tree.of(backup_location(config, zone_name))
    return [backup_dataset(source, target, name) for name in datasets(zone)]


def backup_dataset(source: Tree, target: Tree, dataset: str) -> BackedUp:
    """Copy the versions of ``dataset`` newer than the backup's latest, with the data files they add.

    Raises:
        BackupError: a version to copy is no longer in the source log (cleaned before it was backed up).
    """
    held = [int(m.group(1)) for n in target.log_files(dataset) if (m := _COMMIT.match(n))]
    after = max(held, default=-1)
    names = source.log_files(dataset)
    commits = {int(m.group(1)): n for n in names if (m := _COMMIT.match(n)) and int(m.group(1)) > after}
    if not commits:
        return BackedUp(dataset, (), 0, 0)
    missing = sorted(set(range(after + 1, max(commits) + 1)) - set(commits))
    if missing:
        raise BackupError(
            f"{dataset}: versions {missing[0]}..{missing[-1]} left the log before they were backed up; "
            "back up more often than the zone's time_travel"
        )
    checkpoints = [n for n in names if (m := _CHECKPOINT.match(n)) and int(m.group(1)) > after]
    data: set[str] = set()
    for name in commits.values():
        with source.fs.open(f"{source.root}/{dataset}/{LOG}/{name}", "rb") as handle:
            data |= _added(handle.read())
    ordered = [
        *sorted(data),
        *(f"{LOG}/{n}" for n in checkpoints),
        *(f"{LOG}/{commits[v]}" for v in sorted(commits)),
    ]
    if checkpoints:
        ordered.append(f"{LOG}/_last_checkpoint")
    copied = sum(_copy(source, target, f"{dataset}/{path}") for path in ordered)
    return BackedUp(dataset, tuple(sorted(commits)), len(ordered), copied)


def _added(log_entry: bytes) -> set[str]:
    """Relative paths of the data files one commit adds."""
    paths = set()
    for line in log_entry.splitlines():
        action = json.loads(line) if line.strip() else {}
        if "add" in action and "://" not in action["add"]["path"]:
            paths.add(unquote(action["add"]["path"]))
    return paths


def _copy(source: Tree, target: Tree, path: str) -> int:
    """Copy one file; its size."""
    destination = f"{target.root}/{path}"
    target.fs.makedirs(destination.rsplit("/", 1)[0], exist_ok=True)
    with source.fs.open(f"{source.root}/{path}", "rb") as src, target.fs.open(destination, "wb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)
        return int(dst.tell())


@dataclass(frozen=True)
class Restored:
    """A restore: which backup version went where, as which version of the target."""

    dataset: str
    from_version: int
    uri: str
    version: int
    rows: int


def restore(
    config: LakegateConfig,
    zone_name: ZoneName,
    dataset: str,
    *,
    version: int | None = None,
    to: str | None = None,
    force: bool = False,
    run_id: str,
) -> Restored:
    """Rebuild ``dataset`` from the zone's backup as of ``version`` (default: the latest backed up) at its
    zone location, or at ``to`` (reached with the zone's storage options). Audited in the zone as a
    ``restore`` whose ``app_id``/``txn_version`` are the backup and the version restored.

    Raises:
        BackupError: no backup of the dataset or no such version in it, or the target is a non-empty
            table and ``force`` is not set.
    """
    domain, _, name = dataset.partition("/")
    if not domain or not name or "/" in name:
        raise BackupError(f"dataset '{dataset}' must be DOMAIN/DATASET, e.g. sales/orders")
    zone = open_zone(zone_name, config)
    location = backup_location(config, zone_name)
    backup = _backup_table(location, dataset, version, zone_name)
    uri = to.rstrip("/") if to else f"{zone.config.url}/{dataset}"
    options = delta_options(zone.config)
    existing = _table(uri, options)
    if existing is not None and not force and pl.scan_delta(existing).select(pl.len()).collect().item():
        raise BackupError(
            f"{uri} is a non-empty table; restore elsewhere with --to, or replace it with --force"
        )
    frame = pl.read_delta(backup)
    write_deltalake(
        uri,
        frame.to_arrow(),
        mode="overwrite" if existing is not None else "error",
        schema_mode="overwrite" if existing is not None else None,
        partition_by=list(backup.metadata().partition_columns) or None,
        configuration=backup.metadata().configuration or None,
        storage_options=options,
    )
    written = DeltaTable(uri, storage_options=options).version()
    record(
        zone,
        AuditRecord(
            zone=zone_name.value,
            table=dataset if to is None else uri,
            operation="restore",
            rows=frame.height,
            version=written,
            app_id=f"{location.url}/{dataset}",
            txn_version=backup.version(),
            pipeline="",
            run_id=run_id,
            load_id="",
        ),
    )
    return Restored(dataset, backup.version(), uri, written, frame.height)


def _backup_table(location: Location, dataset: str, version: int | None, zone: ZoneName) -> DeltaTable:
    uri = f"{location.url}/{dataset}"
    latest = _table(uri, delta_options(location))
    if latest is None:
        raise BackupError(f"no backup of {zone.value}/{dataset} at {uri}; run 'lakegate backup' first")
    if version is None:
        return latest
    try:
        return DeltaTable(uri, version=version, storage_options=delta_options(location))
    except DeltaError:
        raise BackupError(
            f"the backup of {zone.value}/{dataset} has no version {version}; the latest is {latest.version()}"
        ) from None


def _table(uri: str, options: dict[str, str]) -> DeltaTable | None:
    try:
        return DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        return None


__all__ = ["BackedUp", "BackupError", "Restored", "backup_dataset", "backup_zone", "datasets", "restore"]
