"""PII key rotation: every token (and keyed hash) of every zone re-keyed, resumably, Dagster-free.

During a rotation both keys are set: ``$LAKEGATE_PII_KEY`` (old) and ``$LAKEGATE_PII_KEY_NEW``. The map
``old token -> new token`` is computed from the plaintext values of every vault (the same value gives the
same new token in every dataset, so joins still match); tokens inside free text are replaced too. Keyed
hashes (``hsh_``) are re-keyed for the values some vault holds; the others cannot be (hashing keeps no
plaintext) and are counted in the result.

Each table is rewritten by one Delta commit carrying the app transaction
``lakegate:rotate-key:<new key id>`` (an HMAC of a label under the new key, never the key): the rewrite
and its progress mark are one atomic commit, so a rotation killed anywhere resumes by skipping the
tables already marked. A token with no vault entry stops the rotation before its table is written
(nothing lost). Stop the pipelines during a rotation and switch ``LAKEGATE_PII_KEY`` to the new key
afterwards; keep the old one as ``$LAKEGATE_PII_KEY_OLD`` while older Delta versions (time travel,
backups) still hold old tokens, so ``lakegate erase`` finds them there too.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import asdict, dataclass

import polars as pl
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from zones.config import LakegateConfig, ZoneName
from zones.erasure import ERASABLE_ZONES
from zones.errors import ZoneError
from zones.pii import PII_KEY_ENV, Tokenizer
from zones.pii_rights import RightsRecord, details, record_rights
from zones.storage import open_zone

NEW_KEY_ENV = "LAKEGATE_PII_KEY_NEW"
OLD_KEY_ENV = "LAKEGATE_PII_KEY_OLD"
ROTATION_APP = "lakegate:rotate-key:"
_KEY_ID_LABEL = b"lakegate/pii/key-id/v1"
_KEYED = r"(?:tok|hsh)_[0-9a-f]{32}"
_INTERNAL = "_lakegate/"


class RotationError(ZoneError, RuntimeError):
    """A rotation cannot proceed; the message names the table and column (never a value)."""


def key_id(tokenizer: Tokenizer) -> str:
    """A public identifier of a token key: 16 hex digits of an HMAC of a fixed label under it."""
    return hmac.new(tokenizer.key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Rotated:
    """One table of one zone: rewritten under the new key now, or already before (a resumed rotation)."""

    zone: str
    dataset: str
    status: str
    """``rotated``, ``already rotated`` or ``no tokens`` (read, left as it is)."""
    tokens: int = 0
    """Distinct tokens re-keyed in the table."""
    unmapped_hashes: int = 0
    """Distinct keyed hashes left under the old key (their values are in no vault)."""


def rotate_key(config: LakegateConfig, old: Tokenizer, new: Tokenizer, who: str) -> list[Rotated]:
    """Re-key every token of the vault and of raw, curated and quarantine from ``old`` to ``new``.

    Raises:
        RotationError: the keys are equal, or a table holds a token no vault can map (that table and
            the ones after it stay untouched; the ones before stay rotated and are skipped next time).
    """
    if hmac.compare_digest(old.key, new.key):
        raise RotationError(f"{NEW_KEY_ENV} equals {PII_KEY_ENV}; set a new secret to rotate to")
    app = ROTATION_APP + key_id(new)
    values = _vault_values(config)
    tokens = _rekey(values, old.token_map, new.token_map, "token")
    hashes = _rekey(values, old.hash_map, new.hash_map, "hash")
    known = set(tokens.values())
    done = []
    for zone_name in ERASABLE_ZONES:
        zone = open_zone(zone_name, config)
        for name in _datasets(config, zone_name):
            uri = f"{zone.config.url}/{name}"
            table = DeltaTable(uri, storage_options=zone.delta_options())
            if (table.transaction_version(app) or 0) >= 1:
                done.append(Rotated(zone_name.value, name, "already rotated"))
                continue
            frame = pl.read_delta(table)
            rewritten, count, unmapped = _rewrite(frame, tokens, hashes, known, f"{zone_name.value} {name}")
            if rewritten is frame:  # no token nor hash: nothing to re-key, no rewrite
                done.append(Rotated(zone_name.value, name, "no tokens"))
                continue
            write_deltalake(
                uri,
                rewritten.to_arrow(),
                mode="overwrite",
                partition_by=list(table.metadata().partition_columns) or None,
                storage_options=zone.delta_options(),
                commit_properties=CommitProperties(app_transactions=[Transaction(app, 1)]),
            )
            done.append(Rotated(zone_name.value, name, "rotated", count, unmapped))
    record_rights(
        open_zone(ZoneName.PII, config),
        RightsRecord(
            who,
            "rotate-key",
            "done",
            "",
            "*",
            "",
            details(new_key_id=key_id(new), old_key_id=key_id(old), tables=[asdict(r) for r in done]),
        ),
    )
    return done


def _datasets(config: LakegateConfig, zone: ZoneName) -> list[str]:
    from zones.backup import datasets

    return [n for n in datasets(open_zone(zone, config)) if not n.startswith(_INTERNAL)]


def _vault_values(config: LakegateConfig) -> pl.Series:
    pii = open_zone(ZoneName.PII, config)
    parts = [pii.read(*_split(name))["value"] for name in _datasets(config, ZoneName.PII)]
    return pl.concat(parts).unique() if parts else pl.Series("value", [], dtype=pl.String)


def _split(name: str) -> tuple[str, str]:
    domain, _, dataset = name.partition("/")
    return domain, dataset


def _rekey(
    values: pl.Series,
    old: Callable[[pl.Series], pl.DataFrame],
    new: Callable[[pl.Series], pl.DataFrame],
    name: str,
) -> dict[str, str]:
    before, after = old(values), new(values)
    joined = before.join(after, on="value", suffix="_new")
    return dict(zip(joined[name].to_list(), joined[f"{name}_new"].to_list(), strict=True))


def _rewrite(
    frame: pl.DataFrame, tokens: dict[str, str], hashes: dict[str, str], known: set[str], where: str
) -> tuple[pl.DataFrame, int, int]:
    """``frame`` with every mapped token/hash replaced (whole values and inside text); counts.

    Whole values are looked up in the map (a hash join); only the tokens found inside longer text are
    replaced as substrings, with an automaton of just those.

    Raises:
        RotationError: a token of ``frame`` is in no vault (it would be lost).
    """
    mapping = {**tokens, **hashes}
    new_hashes = set(hashes.values())
    replaced, count, unmapped = [], 0, 0
    for column, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        values = frame[column]
        found = values.str.extract_all(_KEYED).explode().drop_nulls().unique().to_list()
        if not found:
            continue
        olds = [t for t in found if t in mapping]
        stray = [t for t in found if t.startswith("tok_") and t not in mapping and t not in known]
        if stray:
            raise RotationError(
                f"{where}: column {column} holds {len(stray)} token(s) in no vault; the rotation stopped "
                "before rewriting it (restore the vault, or erase those rows)"
            )
        count += sum(1 for t in olds if t.startswith("tok_"))
        unmapped += sum(1 for t in found if t.startswith("hsh_") and t not in mapping and t not in new_hashes)
        inside = values.filter(~values.str.contains(f"^(?:{_KEYED})$"))
        embedded = [t for t in inside.str.extract_all(_KEYED).explode().drop_nulls().unique() if t in mapping]
        expr = pl.col(column).replace({t: mapping[t] for t in olds})
        if embedded:
            expr = expr.str.replace_many(embedded, [mapping[t] for t in embedded])
        if olds:
            replaced.append(expr)
    return (frame.with_columns(replaced) if replaced else frame), count, unmapped


__all__ = ["NEW_KEY_ENV", "OLD_KEY_ENV", "Rotated", "RotationError", "key_id", "rotate_key"]
