"""Zone storage: the Delta table of a dataset and the options every library needs to reach it.

One zone config yields both option dialects (deltalake/polars ``aws_*``/``google_*`` names and fsspec's
``key``/``secret``/``token``), so the two never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from zones.config import LakegateConfig, Location, ZoneConfig, ZoneName, load_config


@dataclass(frozen=True)
class Zone:
    """A zone opened for reading and writing."""

    name: ZoneName
    config: ZoneConfig

    @property
    def scheme(self) -> str:
        return self.config.scheme

    def table_uri(self, domain: str, dataset: str) -> str:
        """``<zone url>/<domain>/<dataset>``: the Delta table of one dataset."""
        return f"{self.config.url}/{domain}/{dataset}"

    def delta_options(self) -> dict[str, str]:
        """Storage options in deltalake/polars (object_store) naming."""
        return delta_options(self.config)

    def fsspec_options(self) -> dict[str, Any]:
        """Storage options in fsspec naming."""
        return fsspec_options(self.config)

    def delta_table(self, domain: str, dataset: str, version: int | None = None) -> DeltaTable | None:
        """The dataset's Delta table, or ``None`` when nothing was ever committed to it."""
        try:
            return DeltaTable(
                self.table_uri(domain, dataset), version=version, storage_options=self.delta_options()
            )
        except TableNotFoundError:
            return None

    def read(self, domain: str, dataset: str, version: int | None = None) -> pl.DataFrame:
        """Read a dataset (optionally as of a version); an empty frame when the table does not exist."""
        table = self.delta_table(domain, dataset, version)
        if table is None:
            return pl.DataFrame()
        return pl.read_delta(table)


def open_zone(name: ZoneName | str, config: LakegateConfig | None = None) -> Zone:
    """Open zone ``name`` from ``config`` (default: :func:`zones.config.load_config`)."""
    config = config or load_config()
    zone_config = config.zone(name)  # raises ZoneConfigError listing the zones for an unknown name
    return Zone(ZoneName(name), zone_config)


def delta_options(location: Location) -> dict[str, str]:
    """Storage options of ``location`` in deltalake/polars (object_store) naming."""
    opts = location.resolved_storage()
    if location.scheme == "s3":
        mapped = {
            "aws_access_key_id": opts.get("key"),
            "aws_secret_access_key": opts.get("secret"),
            "aws_endpoint_url": opts.get("endpoint_url"),
            "aws_region": opts.get("region") or "us-east-1",
            # Without a lock provider concurrent S3 writers could clobber a commit; lakegate
            # serialises writes per table (one destination job at a time), so opt in explicitly.
            "aws_s3_allow_unsafe_rename": "true",
        }
        if (opts.get("endpoint_url") or "").startswith("http://"):
            mapped["aws_allow_http"] = "true"
        return {k: v for k, v in mapped.items() if v}
    if location.scheme in {"gs", "gcs"}:
        mapped = {
            "google_service_account": opts.get("service_account"),
            "gcs_base_url": opts.get("endpoint_url"),
        }
        return {k: v for k, v in mapped.items() if v}
    return {}


def fsspec_options(location: Location) -> dict[str, Any]:
    """Storage options of ``location`` in fsspec naming."""
    opts = location.resolved_storage()
    if location.scheme == "s3":
        mapped = {
            "key": opts.get("key"),
            "secret": opts.get("secret"),
            "endpoint_url": opts.get("endpoint_url"),
        }
        return {k: v for k, v in mapped.items() if v}
    if location.scheme in {"gs", "gcs"}:
        mapped = {
            "token": opts.get("token") or opts.get("service_account"),
            "endpoint_url": opts.get("endpoint_url"),
        }
        return {k: v for k, v in mapped.items() if v}
    return {}
