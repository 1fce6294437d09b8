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
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lakegate.registry import suggest
from zones._durations import parse_duration
from zones._stores import STORES, check_settings
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
    "retention_days": "retention is written as a duration: use 'retention: 30d'",
    "region": "residency checks arrive with the zone policies; a storage region goes under 'storage'",
}


class Location(BaseModel):
    """Where a Delta tree lives and how to reach it (a zone's root or its backup).

    Attributes:
        url: ``file://``, ``s3://`` or ``gs://`` URL of the root.
        storage: Settings of the URL's store, each a literal or ``{env: VARIABLE}`` (credentials only
            the latter); the accepted names per scheme and the options they become are in
            :data:`zones._stores.STORES`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str
    storage: dict[str, str | EnvRef] = Field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme not in STORES:
            raise ValueError(f"'{url}' must start with file://, s3:// or gs://")
        return url.rstrip("/")

    @field_validator("storage", mode="before")
    @classmethod
    def _numbers_as_text(cls, storage: Any) -> Any:
        # ``timeout: 30`` reads as a number in YAML; every setting is text to the stores.
        if isinstance(storage, dict):
            return {
                k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for k, v in storage.items()
            }
        return storage

    @model_validator(mode="after")
    def _known_settings(self) -> Location:
        check_settings(self.scheme, self.storage, lambda value: isinstance(value, EnvRef))
        return self

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
                        f"environment variable {value.env} is not set (storage option '{key}' "
                        f"for {self.url}); export it or remove the option"
                    )
                resolved[key] = os.environ[value.env]
            else:
                resolved[key] = value
        return resolved


class BackupConfig(Location):
    """Where a zone's backup lives (see :class:`Location`) and when it runs.

    Attributes:
        schedule: Cron schedule of the backup job (default: daily at 03:00 UTC).
    """

    schedule: str = "0 3 * * *"


class ZoneConfig(Location):
    """One zone.

    Attributes:
        url, storage: The zone's root and how to reach it (see :class:`Location`).
        classification: ``external``, ``internal`` or ``restricted``; policies key on it.
        retention: Default retention of the zone's datasets (e.g. ``30d``); ``None`` keeps data forever.
            A pipeline's ``retention:`` overrides it per zone.
        time_travel: How long old versions stay readable: vacuum keeps files, and the log keeps
            commits, for this long; idempotent replays are recognised for this long too.
        min_retention: No retention (zone default or pipeline) may be shorter than this.
        backup: Where ``lakegate backup`` copies the zone's Delta versions (``None``: no backup).
    """

    classification: str = "internal"
    retention: str | None = None
    time_travel: str = "7d"
    min_retention: str | None = None
    backup: BackupConfig | None = None

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

    @field_validator("retention", "time_travel", "min_retention")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)  # raises ValueError naming the accepted forms
        return value

    @model_validator(mode="after")
    def _retention_fits(self) -> ZoneConfig:
        if self.retention is not None:
            retention_conflict(self, self.retention_period or timedelta(0))
        return self

    @property
    def retention_period(self) -> timedelta | None:
        """``retention`` as a duration (``None``: kept forever)."""
        return None if self.retention is None else parse_duration(self.retention)

    @property
    def time_travel_window(self) -> timedelta:
        """``time_travel`` as a duration."""
        return parse_duration(self.time_travel)


def retention_conflict(zone: ZoneConfig, retention: timedelta) -> None:
    """Refuse a retention the zone cannot honour.

    A retention shorter than the time-travel window would keep "deleted" rows readable (through old
    versions) for longer than the retention promises; one below ``min_retention`` breaks a declared floor.

    Raises:
        ValueError: naming the conflict and the fix.
    """
    if retention < zone.time_travel_window:
        raise ValueError(
            f"retention {_days(retention)} is shorter than the zone's time_travel {zone.time_travel}; "
            "lengthen the retention or shorten time_travel"
        )
    if zone.min_retention is not None and retention < parse_duration(zone.min_retention):
        raise ValueError(
            f"retention {_days(retention)} is shorter than the zone's min_retention {zone.min_retention}"
        )


def _days(duration: timedelta) -> str:
    hours = int(duration.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


class Hold(BaseModel):
    """A legal hold: the dataset's rows (optionally only the ingest dates ``from``..``to``, inclusive,
    and only in one zone) are never deleted by retention, whatever the policy says.

    Attributes:
        dataset: ``DOMAIN/DATASET``.
        zone: Only this zone (default: every zone of the dataset).
        reason, who, when: Why, on whose authority and since when the hold applies (all required).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    dataset: str
    zone: ZoneName | None = None
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    reason: str
    who: str
    when: date

    def covers(self, zone: ZoneName, dataset: str, day: date) -> bool:
        """True when this hold protects ``day``'s partition of ``zone``/``dataset``."""
        return (
            self.dataset == dataset
            and self.zone in (None, zone)
            and (self.from_ is None or day >= self.from_)
            and (self.to is None or day <= self.to)
        )

    def describe(self) -> str:
        """``hold by WHO since WHEN: REASON`` (for plans and audit)."""
        return f"hold by {self.who} since {self.when}: {self.reason}"


class AccessConfig(BaseModel):
    """``access:`` -- which principals hold which role (today: ``pii``, re-identification and erasure).

    This is lakegate's policy and audit layer: ``lakegate reveal`` refuses (and audits) a principal
    without the role. The hard boundary stays the pii zone's storage credentials: whoever holds them can
    read the vault whatever this list says, so give them only to the holders of the role.

    Attributes:
        pii: Principals (``--as`` / ``$LAKEGATE_PRINCIPAL``, default the OS user) holding the pii role.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    pii: tuple[str, ...] = ()


class LakegateConfig(BaseModel):
    """The zones of one deployment, its legal holds and its access roles."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    home: str
    zones: dict[ZoneName, ZoneConfig]
    holds: tuple[Hold, ...] = ()
    access: AccessConfig = Field(default_factory=AccessConfig)
    source: str = "embedded default"
    """The file the configuration came from (named in load-time errors)."""

    def zone(self, name: ZoneName | str) -> ZoneConfig:
        """The config of zone ``name``."""
        try:
            return self.zones[ZoneName(name)]
        except ValueError:
            names = [z.value for z in ZoneName]
            hint = suggest(str(name), names)
            raise ZoneConfigError(f"unknown zone '{name}'{hint}; zones are: {', '.join(names)}") from None


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
    holds: list[Any] = []
    access: Any = {}
    if file.exists():
        zones, holds = _merge_file(file, zones)
        access = _section(file, "access")
    elif path or env.get("LAKEGATE_CONFIG"):
        raise ZoneConfigError(
            f"{file}: lakegate config file not found (set LAKEGATE_CONFIG to an existing file)"
        )
    for zone in ZoneName:
        override = env.get(f"LAKEGATE_ZONE_{zone.value.upper()}_URL")
        if override:
            zones[zone.value]["url"] = override
    built = {}
    for name, settings in zones.items():
        try:
            built[ZoneName(name)] = ZoneConfig(**settings)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join([name, *(str(p) for p in err["loc"])])
            raise ZoneConfigError(f"{file}: zones.{where}: {_message(err)}") from None
    parsed = []
    for index, hold in enumerate(holds):
        try:
            parsed.append(Hold.model_validate(hold))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join([str(index), *(str(p) for p in err["loc"])])
            raise ZoneConfigError(f"{file}: holds.{where}: {_message(err)}") from None
    try:
        roles = AccessConfig.model_validate(access)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        hint = suggest(where, list(AccessConfig.model_fields)) if err["type"] == "extra_forbidden" else ""
        raise ZoneConfigError(f"{file}: access.{where}: {_message(err)}{hint}") from None
    return LakegateConfig(home=str(home), zones=built, holds=tuple(parsed), access=roles, source=str(file))


def _section(file: Path, name: str) -> Any:
    """One top-level section of ``file`` (already parsed once by :func:`_merge_file`), ``{}`` when absent."""
    document = yaml.safe_load(file.read_text()) or {}
    return document.get(name) or {}


def _message(err: Any) -> str:
    return str(err["msg"]).removeprefix("Value error, ")


def _merge_file(file: Path, zones: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[Any]]:
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
            hint = suggest(str(name), list(zones))
            raise ZoneConfigError(f"{file}: zones.{name}: unknown zone{hint}; zones are: {known}")
        if not isinstance(settings, dict):
            raise ZoneConfigError(f"{file}: zones.{name}: expected a mapping with at least 'url'")
        zones[name] = {**zones[name], **settings}
    holds = document.get("holds") or []
    if not isinstance(holds, list):
        raise ZoneConfigError(f"{file}: 'holds' must be a list of {{dataset, reason, who, when}} entries")
    return zones, holds
