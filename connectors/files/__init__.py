"""The ``files`` connector: CSV, NDJSON/JSON and Parquet files from any fsspec URL, by glob.

Each file is ingested once: its identity (path, size, modification stamp) is kept in the dlt resource
state, which dlt saves with the load package, so a file is only skipped after the run that read it.
See README.md beside this module for operations.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import dlt
import fsspec
import pyarrow as pa
from dlt.extract import DltResource

from connectors._contract import Connector, Kind
from connectors.files._readers import read_csv, read_json, read_parquet
from connectors.files.config import FilesConfig

__all__ = ["FilesConfig", "connector", "discover", "files_resource"]

log = logging.getLogger("lakegate.connectors.files")


def discover(config: FilesConfig) -> list[tuple[str, str]]:
    """List the files the URL matches as ``(url, identity)`` pairs, oldest path first."""
    fs, pattern = fsspec.core.url_to_fs(config.url, **config.storage_options)
    found = []
    for path, info in sorted(fs.glob(pattern, detail=True).items()):
        if info.get("type") == "directory":
            continue
        stamp = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("etag") or ""
        identity = hashlib.sha256(f"{path}|{info.get('size')}|{stamp}".encode()).hexdigest()[:32]
        found.append((fs.unstrip_protocol(path), identity))
    return found


def _read(config: FilesConfig, url: str) -> Iterator[pa.Table]:
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
    """A dlt resource yielding every not-yet-ingested file matched by ``config.url`` as Arrow tables."""

    @dlt.resource(name=name, write_disposition="append")
    def files() -> Iterator[pa.Table]:
        state: dict[str, Any] = dlt.current.resource_state()
        ingested: dict[str, str] = state.setdefault("ingested", {})
        todo = [(url, ident) for url, ident in discover(config) if ident not in ingested]
        log.info("files: %d new file(s) match %s", len(todo), config.url)
        for index, (url, identity) in enumerate(todo, start=1):
            rows = 0
            for table in _read(config, url):
                rows += table.num_rows
                yield table
            # Recorded only once the whole file has been handed to dlt: dlt persists this state with the
            # load package, and pending packages are loaded before anything new is extracted.
            ingested[identity] = url
            log.info("files: [%d/%d] %s: %d row(s) read", index, len(todo), url, rows)

    return files


connector: Connector[FilesConfig] = Connector(
    name="files",
    kind=Kind.BATCH,
    config_model=FilesConfig,
    factory=files_resource,
    description="CSV, NDJSON/JSON and Parquet files from any fsspec URL, each file ingested once",
    probe=lambda config: [identity for _, identity in discover(config)],
    kinds=frozenset({"fsspec"}),
    describe_source=lambda config: f"files at {config.url}",
    storage_options="fsspec",
)
