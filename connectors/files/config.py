"""Configuration of the ``files`` connector."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from connectors._contract import ConnectorConfig, ConnectorConfigError

FileFormat = Literal["csv", "ndjson", "json", "parquet"]

_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class FilesConfig(ConnectorConfig):
    """Where the files are and how to read them.

    Attributes:
        url: fsspec URL with a glob, e.g. ``s3://drops/sales/*.csv`` or ``file:///data/in/*.ndjson``.
        format: ``csv``, ``ndjson``, ``json`` or ``parquet``; inferred from the file suffix when omitted.
        storage_options: fsspec options for the URL's filesystem (credentials resolved by the caller).
        delimiter: CSV field separator.
        encoding: Text encoding of CSV/JSON files.
        batch_rows: Rows per Arrow table handed to dlt; bounds memory on large files.
        resume: Filled by lakegate: the files committed in the zones (``file:<identity>`` -> commit day
            as ``YYYYMMDD``); they are skipped.
        archive: Filled by lakegate when ``url`` is in the landing zone: the folder committed files are
            moved to (``<landing>/_archive/<domain>/<dataset>``). Files elsewhere are never moved.
        columns: Declared column types (``defs.yaml`` type names, set by the pipeline): CSV values are
            typed as they are parsed; a value not read there stays text for the zone to cast or quarantine.
        run_id: Filled by lakegate when the rows' lineage is stamped at extract (appends): CSV chunks are
            then typed on all cores into Parquet load files the zone can adopt as they are.
    """

    url: str = Field(min_length=1)
    format: FileFormat | None = None
    storage_options: dict[str, Any] = Field(default_factory=dict, repr=False)  # may hold credentials
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf8"
    batch_rows: int = Field(default=100_000, ge=1_000, le=5_000_000)
    resume: dict[str, int] = Field(default_factory=dict)
    archive: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    run_id: str | None = None

    @field_validator("url")
    @classmethod
    def _no_credentials_in_url(cls, url: str) -> str:
        _scheme, sep, rest = url.partition("://")
        if sep and "@" in rest.split("/", 1)[0]:
            raise ValueError("must not embed credentials; pass them through storage_options")
        return url

    @staticmethod
    def is_tsv(path: str) -> bool:
        """Whether the file's suffix says tab-separated (a ``.tsv`` file, compressed or not)."""
        return path.lower().removesuffix(".gz").removesuffix(".zst").endswith(".tsv")

    def format_of(self, path: str) -> FileFormat:
        """The declared format, or the one the file's suffix implies.

        Raises:
            ConnectorConfigError: the format is not declared and the suffix is not one we know (the
                run stops before anything of the glob is marked ingested).
        """
        if self.format:
            return self.format
        name = path.lower().removesuffix(".gz").removesuffix(".zst")
        for suffix, fmt in _SUFFIXES.items():
            if name.endswith(suffix):
                return fmt
        known = ", ".join(sorted(_SUFFIXES))
        raise ConnectorConfigError(
            f"{path}: cannot tell the file format from its name (known: {known}); set config.format"
        )
