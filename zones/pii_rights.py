"""Who acts on PII, and the audited re-identification of a token (``lakegate reveal``).

A *principal* is who runs a command: ``--as NAME``, else ``$LAKEGATE_PRINCIPAL``, else the OS user.
The principals holding the ``pii`` role are listed in ``lakegate.yaml`` (``access: {pii: [alice]}``).
This is lakegate's policy and audit layer; the hard boundary is the pii zone's storage credentials
(DESIGN.md, zones table): whoever holds them can read the vault directly, so give them only to holders
of the role.

Every reveal, refusal, erasure and key rotation is one row of the pii zone's rights log
(``<pii zone>/_lakegate/pii_rights``): who, when, why, what, on which dataset and token -- never a value.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from zones.audit import append_record, read_records
from zones.config import LakegateConfig, ZoneName
from zones.errors import ZoneError
from zones.storage import Zone, open_zone

PRINCIPAL_ENV = "LAKEGATE_PRINCIPAL"
PII_ROLE = "pii"
RIGHTS_LOG = "_lakegate/pii_rights"
_TOKEN_CHARS = 36  # "tok_" + 32 hex digits


class PiiAccessDenied(ZoneError, PermissionError):
    """The principal does not hold the pii role (the refusal is audited)."""


class RevealError(ZoneError, LookupError):
    """The token is malformed or not in the dataset's vault (audited)."""


def principal(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Who is acting: ``explicit`` (``--as``), else ``$LAKEGATE_PRINCIPAL``, else the OS user."""
    env = os.environ if env is None else env
    if explicit or env.get(PRINCIPAL_ENV):
        return explicit or env[PRINCIPAL_ENV]
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # a container user without a name
        return f"uid:{os.getuid()}"


def holds_pii_role(config: LakegateConfig, who: str) -> bool:
    """True when ``who`` is listed under ``access.pii`` in ``lakegate.yaml``."""
    return who in config.access.pii


@dataclass(frozen=True)
class RightsRecord:
    """One audited act on PII. Never holds a value: tokens, counts and places only."""

    principal: str
    action: str
    """``reveal``, ``erase``, ``erase-dry-run`` or ``rotate-key``."""
    outcome: str
    """``granted``, ``refused``, ``not_found``, ``done``, ``resumed``..."""
    reason: str
    dataset: str
    token: str
    details: str = "{}"
    """JSON: what was found and done (places and counts)."""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def record_rights(zone: Zone, entry: RightsRecord) -> None:
    """Append ``entry`` to the pii zone's rights log."""
    append_record(zone, RIGHTS_LOG, entry)


def read_rights(config: LakegateConfig) -> pl.DataFrame:
    """The pii zone's rights log (empty when nothing was revealed, erased or rotated yet)."""
    return read_records(open_zone(ZoneName.PII, config), RIGHTS_LOG)


def details(**what: Any) -> str:
    """``what`` as the compact JSON a :class:`RightsRecord` carries."""
    return json.dumps(what, default=str, sort_keys=True)


def reveal(config: LakegateConfig, dataset: str, token: str, reason: str, who: str) -> str:
    """The plaintext behind ``token`` in ``dataset``'s vault, for a holder of the pii role only.

    Granted, refused and not-found attempts are each audited in the pii zone (who, when, why, dataset,
    token; never the value). A refusal is checked before the vault is read.

    Raises:
        PiiAccessDenied: ``who`` does not hold the pii role.
        RevealError: ``reason`` is empty, ``dataset`` is not ``DOMAIN/DATASET``, or the token is not in
            the vault.
    """
    domain, _, name = dataset.partition("/")
    if not domain or not name or "/" in name:
        raise RevealError(f"dataset '{dataset}' must be DOMAIN/DATASET, e.g. crm/customers")
    if not reason.strip():
        raise RevealError("--reason is required: say why the plaintext is needed (it is audited)")
    zone = open_zone(ZoneName.PII, config)

    def audit(outcome: str) -> None:
        record_rights(zone, RightsRecord(who, "reveal", outcome, reason, dataset, token))

    if not holds_pii_role(config, who):
        audit("refused")
        raise PiiAccessDenied(
            f"principal '{who}' does not hold the pii role (access.pii in {config.source}); "
            "refused and audited"
        )
    table = zone.delta_table(domain, name)
    found: list[str] = []
    if table is not None and token.startswith("tok_") and len(token) == _TOKEN_CHARS:
        hits = pl.scan_delta(table).filter(pl.col("token") == token).select("value").head(1).collect()
        found = [str(v) for v in hits["value"].to_list()]
    if not found:
        audit("not_found")
        raise RevealError(f"token {token} is not in the vault of {dataset} (attempt audited)")
    audit("granted")
    return found[0]


__all__ = [
    "PII_ROLE",
    "PRINCIPAL_ENV",
    "PiiAccessDenied",
    "RevealError",
    "RightsRecord",
    "details",
    "holds_pii_role",
    "principal",
    "read_rights",
    "record_rights",
    "reveal",
]
