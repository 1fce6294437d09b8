"""Zone configuration: where each zone lives and how to reach it.

Resolution order, last wins:
1. the embedded default: every zone under ``$LAKEGATE_HOME/zones/<zone>`` (``LAKEGATE_HOME`` defaults to
   ``./.lakegate``), so a laptop needs no cloud;
2. ``lakegate.yaml`` (``$LAKEGATE_CONFIG``, else ``./lakegate.yaml`` when present);
3. environment overrides ``LAKEGATE_ZONE_<ZONE>_URL`` (e.g. ``LAKEGATE_ZONE_RAW_URL=s3://lake/raw``).

Credentials are never written in the file: ``storage`` maps an option to ``{env: VARIABLE}`` and is
resolved only when a zone is opened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from zones.errors import ZoneError


class ZoneName(StrEnum):
    """The zones every lakegate deployment has."""

    LANDING = "landing"
    RAW = "raw"
    CURATED = "curated"
    PII = "pii"
    QUARANTINE = "quarantine"


class ZoneConfigError(ZoneError, ValueError):
    """The zone configuration is invalid or incomplete; the message names the place and the fix."""


class EnvRef(BaseModel):
    """A value taken from an environment variable when the zone is opened."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    env: str


_CLASSIFICATION = {
    ZoneName.LANDING: "external",
    ZoneName.RAW: "internal",
    ZoneName.CURATED: "internal",
    ZoneName.PII: "restricted",
    ZoneName.QUARANTINE: "internal",
}


_NOT_ENFORCED = {
    "retention_days": "per-zone retention arrives with the retention sensors",
    "region": "residency checks arrive with the zone policies; a storage region goes under 'storage'",
}


class ZoneConfig(BaseModel):
    """One zone.

    Attributes:
        url: ``file://``, ``s3://`` or ``gs://`` URL of the zone's root.
        classification: ``external``, ``internal`` or ``restricted``; policies key on it.
        storage: Storage options (``key``, ``secret``, ``endpoint_url``, ``region``, ``token``),
            each a literal or ``{env: VARIABLE}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str
    classification: str = "internal"
    storage: dict[str, str | EnvRef] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _not_yet_enforced(cls, data: Any) -> Any:
        # Accepting a setting that does nothing would let people believe data is expired or kept in a
        # region: refuse it until it is enforced.
        if isinstance(data, dict):
            for key, why in _NOT_ENFORCED.items():
                if key in data:
                    raise ValueError(f"'{key}' is not enforced yet ({why}); remove it")
        return data

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme not in {"file", "s3", "gs", "gcs", "memory"}:
            raise ValueError(f"'{url}' must start with file://, s3:// or gs://")
        return url.rstrip("/")

    def resolved_storage(self) -> dict[str, str]:
        """Storage options with environment references resolved.

        Raises:
            ZoneConfigError: a referenced environment variable is not set (named, never its value).
        """
        resolved: dict[str, str] = {}
        for key, value in self.storage.items():
            if isinstance(value, EnvRef):
                if value.env not in os.environ:
                    raise ZoneConfigError(
                        f"environment variable {value.env} is not set (zone storage option '{key}' "
                        f"for {self.url}); export it or remove the option"
                    )
                resolved[key] = os.environ[value.env]
            else:
                resolved[key] = value
        return resolved


class LakegateConfig(BaseModel):
    """The zones of one deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    home: str
    zones: dict[ZoneName, ZoneConfig]

    def zone(self, name: ZoneName | str) -> ZoneConfig:
        """The config of zone ``name``."""
        try:
            return self.zones[ZoneName(name)]
        except ValueError:
            known = ", ".join(z.value for z in ZoneName)
            raise ZoneConfigError(f"unknown zone '{name}'; zones are: {known}") from None


def lakegate_home(env: Mapping[str, str] | None = None) -> Path:
    """``$LAKEGATE_HOME`` (default ``./.lakegate``) as an absolute path."""
    env = os.environ if env is None else env
    return Path(env.get("LAKEGATE_HOME") or ".lakegate").resolve()


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> LakegateConfig:
    """Load the zone configuration (embedded default, ``lakegate.yaml``, environment overrides).

    Raises:
        ZoneConfigError: naming the file and the field at fault.
    """
    env = os.environ if env is None else env
    home = lakegate_home(env)
    zones: dict[str, dict[str, Any]] = {
        z.value: {"url": (home / "zones" / z.value).as_uri(), "classification": _CLASSIFICATION[z]}
        for z in ZoneName
    }
    file = path or (Path(env["LAKEGATE_CONFIG"]) if env.get("LAKEGATE_CONFIG") else Path("lakegate.yaml"))
    if file.exists():
        zones = _merge_file(file, zones)
    elif path or env.get("LAKEGATE_CONFIG"):
        raise ZoneConfigError(
            f"{file}: lakegate config file not found (set LAKEGATE_CONFIG to an existing file)"
        )
    for zone in ZoneName:
        override = env.get(f"LAKEGATE_ZONE_{zone.value.upper()}_URL")
        if override:
            zones[zone.value]["url"] = override
    try:
        return LakegateConfig(home=str(home), zones={ZoneName(k): ZoneConfig(**v) for k, v in zones.items()})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ZoneConfigError(f"{file}: zones.{where}: {err['msg']}") from None


def _merge_file(file: Path, zones: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    try:
        document = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ZoneConfigError(f"{file}: not valid YAML ({exc})") from None
    declared = document.get("zones", {}) if isinstance(document, dict) else None
    if not isinstance(declared, dict):
        raise ZoneConfigError(f"{file}: 'zones' must be a mapping of zone name to settings")
    for name, settings in declared.items():
        if name not in zones:
            known = ", ".join(zones)
            raise ZoneConfigError(f"{file}: zones.{name}: unknown zone; zones are: {known}")
        if not isinstance(settings, dict):
            raise ZoneConfigError(f"{file}: zones.{name}: expected a mapping with at least 'url'")
        zones[name] = {**zones[name], **settings}
    return zones
