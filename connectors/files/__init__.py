"""The ``files`` connector: CSV, NDJSON/JSON and Parquet files from any fsspec URL, by glob.

Each file is ingested once. Its identity (path, size, modification stamp) travels with the load package
that read it and is committed in the zone with that package's data (``pos:file:<identity>``); lakegate
passes the committed identities back in ``resume``, so any machine skips them, whatever dlt's local
folder holds. Files of the landing zone are then moved to its archive (``archive``), where retention
expires them. See README.md beside this module for operations.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dlt
import fsspec
import fsspec.utils
import pyarrow as pa
from dlt.common.storages.exceptions import CurrentLoadPackageStateNotAvailable
from dlt.extract import DltResource
from dlt.extract.items import DataItemWithMeta
from dlt.pipeline.exceptions import PipelineNotActive

from connectors._contract import Connector, ConnectorError, Kind
from connectors.files._fastcsv import FastPath, Stamp
from connectors.files._readers import read_csv, read_json, read_parquet
from connectors.files.config import FilesConfig
from lakegate.package import STATE_KEY, UNITS
from lakegate.vetting import CHUNK_VETTER

__all__ = [
    "ArchiveError",
    "FilesConfig",
    "archive_committed",
    "connector",
    "discover",
    "file_source",
    "files_resource",
]

log = logging.getLogger("lakegate.connectors.files")


class ArchiveError(ConnectorError, OSError):
    """A committed landing file could not be moved to the archive (it stays; the next run retries)."""


def file_source(identity: str) -> str:
    """The source id of a file (its position is committed as ``pos:file:<identity>``)."""
    return f"file:{identity}"


def discover(config: FilesConfig) -> list[tuple[str, str]]:
    """List the files the URL matches as ``(url, identity)`` pairs, oldest path first (the archive
    folder excluded, should the glob reach it)."""
    fs, pattern = fsspec.core.url_to_fs(config.url, **config.storage_options)
    archived = None
    if config.archive:
        archived = fsspec.core.url_to_fs(config.archive, **config.storage_options)[1].rstrip("/") + "/"
    found = []
    for path, info in sorted(fs.glob(pattern, detail=True).items()):
        if info.get("type") == "directory" or (archived and path.startswith(archived)):
            continue
        stamp = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("etag") or ""
        identity = hashlib.sha256(f"{path}|{info.get('size')}|{stamp}".encode()).hexdigest()[:32]
        found.append((fs.unstrip_protocol(path), identity))
    return found


def _read(config: FilesConfig, url: str, fast: FastPath | None) -> Iterator[pa.Table | DataItemWithMeta]:
    fmt = config.format_of(url)
    delimiter = config.delimiter
    if "delimiter" not in config.model_fields_set and config.is_tsv(url):
        delimiter = "\t"
    with fsspec.open(url, "rb", compression="infer", **config.storage_options) as handle:
        if fmt == "csv":
            yield from read_csv(
                handle,
                url,
                delimiter=delimiter,
                encoding=config.encoding,
                batch_rows=config.batch_rows,
                columns=config.columns,
                fast=fast,
            )
        elif fmt == "parquet":
            yield from read_parquet(handle, url, batch_rows=config.batch_rows)
        else:
            yield from read_json(
                handle,
                url,
                encoding=config.encoding,
                batch_rows=config.batch_rows,
                lines_only=fmt == "ndjson",
            )


def files_resource(config: FilesConfig, name: str = "files") -> DltResource:
    """A dlt resource yielding every file matched by ``config.url`` and not committed in the zones
    (``config.resume``) as Arrow tables."""

    @dlt.resource(name=name, write_disposition="append")
    def files() -> Iterator[pa.Table | DataItemWithMeta]:
        todo = [(url, ident) for url, ident in discover(config) if file_source(ident) not in config.resume]
        log.info("files: %d new file(s) match %s", len(todo), config.url)
        for index, (url, identity) in enumerate(todo, start=1):
            rows = 0
            with _fast_path(config, url) as fast:
                for item in _read(config, url, fast):
                    rows += item.num_rows if isinstance(item, pa.Table) else item.meta.metrics.items_count
                    yield item
            # Only once the whole file is in the package: the destination commits the identity with the
            # package's last load job, so it is in the zone exactly when all of the file's rows are.
            _record_unit(file_source(identity), expires=config.archive is not None)
            log.info("files: [%d/%d] %s: %d row(s) read", index, len(todo), url, rows)

    return files


@contextmanager
def _fast_path(config: FilesConfig, url: str) -> Iterator[FastPath | None]:
    """The CSV fast path's grant for one file (see ``_fastcsv``) when lakegate stamps lineage (``run_id``)
    and a pipeline is extracting: a folder beside its load packages, removed once the file is extracted."""
    if config.run_id is None or fsspec.utils.infer_compression(url) is not None:
        yield None  # (a compressed stream that breaks off is read region by region, to its last line)
        return
    try:
        load_id = str(dlt.current.load_package_state()["load_id"])
        working_dir = dlt.current.pipeline().working_dir
    except (CurrentLoadPackageStateNotAvailable, PipelineNotActive):
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="lakegate-csv-", dir=working_dir))
    try:
        yield FastPath(Stamp.of(load_id, config.run_id), folder, CHUNK_VETTER.get())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _record_unit(source: str, *, expires: bool) -> None:
    """Note in the load package being extracted that it holds every row of ``source`` (nothing to note
    when the resource is iterated outside a pipeline)."""
    try:
        state = dlt.current.load_package_state()["state"]
    except CurrentLoadPackageStateNotAvailable:
        return
    state.setdefault(STATE_KEY, {}).setdefault(UNITS, {})[source] = expires  # type: ignore[typeddict-item]


def archive_committed(config: FilesConfig) -> int:
    """Move every matched file the zones hold (``config.resume``) to ``config.archive``; returns how
    many moved. Nothing happens without an archive (files outside the landing zone stay where they are).

    Layout: ``<archive>/<commit day>/<name>``; a different file of the same name archived the same day
    goes to ``<archive>/<commit day>/<identity>/<name>``.

    Raises:
        ArchiveError: a file could not be moved (it stays in place and is not ingested again).
    """
    if not config.archive:
        return 0
    fs, root = fsspec.core.url_to_fs(config.archive, **config.storage_options)
    moved = 0
    for url, identity in discover(config):
        position = config.resume.get(file_source(identity))
        if position is None:
            continue
        path = fsspec.core.url_to_fs(url, **config.storage_options)[1]
        day = f"{position // 10000:04d}-{position // 100 % 100:02d}-{position % 100:02d}"
        name = path.rsplit("/", 1)[-1]
        target = f"{root.rstrip('/')}/{day}/{name}"
        if fs.exists(target):
            target = f"{root.rstrip('/')}/{day}/{identity}/{name}"
        try:
            fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            fs.mv(path, target)
        except OSError as exc:
            raise ArchiveError(f"{url}: committed, but could not be moved to the archive: {exc}") from exc
        log.info("files: %s committed, archived to %s", url, fs.unstrip_protocol(target))
        moved += 1
    return moved


connector: Connector[FilesConfig] = Connector(
    name="files",
    kind=Kind.BATCH,
    config_model=FilesConfig,
    factory=files_resource,
    description="CSV, NDJSON/JSON and Parquet files from any fsspec URL, each file ingested once",
    probe=lambda config: [i for _, i in discover(config) if file_source(i) not in config.resume],
    kinds=frozenset({"fsspec"}),
    describe_source=lambda config: f"files at {config.url}",
    storage_options="fsspec",
    positions=lambda config: [file_source(identity) for _, identity in discover(config)],
    acknowledge=archive_committed,
)
