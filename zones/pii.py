"""PII split: declared PII columns leave ingestion as deterministic keyed tokens (or masks).

A token is ``tok_`` + the first 32 hex digits of HMAC-SHA256(key, value): the same value always gives
the same token (joins and dedupe still work on tokens) and nobody without the key can recompute it.
The plaintext goes to the ``pii`` zone only, keyed by token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from zones.errors import ZoneError

PII_KEY_ENV = "LAKEGATE_PII_KEY"
_MIN_KEY_CHARS = 16
_MASK_MIN_CHARS = 8
VAULT_COLUMNS = ("token", "column", "value")


class PiiMethod(StrEnum):
    """What happens to a declared PII column at ingestion."""

    TOKENIZE = "tokenize"
    """Replace by a keyed token; plaintext kept in the pii zone (re-identifiable by its holders)."""
    MASK = "mask"
    """Replace by ``****`` plus the last four characters (whole mask under nine characters); plaintext
    kept in the pii zone too."""


class PiiKeyError(ZoneError, ValueError):
    """The tokenization key is missing or too short."""


@dataclass(frozen=True)
class Tokenizer:
    """Keyed, deterministic tokenization of values."""

    key: bytes

    def __repr__(self) -> str:  # the key must never reach a log line
        return "Tokenizer(key=***)"

    @classmethod
    def from_key(cls, key: str | None, purpose: str) -> Tokenizer:
        """A tokenizer keyed by ``key``, or by ``$LAKEGATE_PII_KEY`` when ``key`` is ``None``.

        Args:
            key: The secret (e.g. from a Dagster resource bound to ``EnvVar("LAKEGATE_PII_KEY")``).
            purpose: What needs the key, quoted in the error (e.g. ``crm/customers: email, phone``).

        Raises:
            PiiKeyError: the key is missing or shorter than 16 characters (never quoted).
        """
        key = os.environ.get(PII_KEY_ENV, "") if key is None else key
        if len(key) < _MIN_KEY_CHARS:
            state = "is not set" if not key else f"is shorter than {_MIN_KEY_CHARS} characters"
            raise PiiKeyError(
                f"environment variable {PII_KEY_ENV} {state}; it keys the tokens of PII columns "
                f"({purpose}). Set it to a secret of at least {_MIN_KEY_CHARS} characters."
            )
        return cls(key.encode())

    def token_map(self, values: pl.Series) -> pl.DataFrame:
        """``value -> token`` for the distinct non-null values of ``values``.

        HMAC runs once per *distinct* value, so repeated values (the common case) cost nothing more.
        """
        distinct = values.drop_nulls().cast(pl.String).unique()
        tokens = [
            "tok_" + hmac.new(self.key, v.encode(), hashlib.sha256).hexdigest()[:32]
            for v in distinct.to_list()
        ]
        return pl.DataFrame({"value": distinct, "token": pl.Series(tokens, dtype=pl.String)})


def split_pii(
    frame: pl.DataFrame, pii: Mapping[str, PiiMethod], tokenizer: Tokenizer
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Replace the PII columns of ``frame`` and return ``(protected frame, vault rows)``.

    Vault rows are ``(token, column, value)``; a masked column's vault token is the same keyed token,
    so holders of the PII attribute can still find the plaintext behind a masked row's source record.
    """
    vault_parts = []
    replacements = []
    for column, method in pii.items():
        if column not in frame.columns:
            continue
        mapping = tokenizer.token_map(frame[column])
        vault_parts.append(mapping.select("token", pl.lit(column).alias("column"), "value"))
        if method is PiiMethod.TOKENIZE:
            lookup = dict(zip(mapping["value"].to_list(), mapping["token"].to_list(), strict=True))
            replacements.append(pl.col(column).cast(pl.String).replace_strict(lookup, default=None))
        else:
            text = pl.col(column).cast(pl.String)
            # Short values would be fully revealed by their last four characters: mask them whole.
            replacements.append(
                pl.when(text.is_null())
                .then(None)
                .when(text.str.len_chars() > _MASK_MIN_CHARS)
                .then(pl.concat_str(pl.lit("****"), text.str.slice(-4)))
                .otherwise(pl.lit("****"))
                .alias(column)
            )
    vault = (
        pl.concat(vault_parts)
        if vault_parts
        else pl.DataFrame(schema=dict.fromkeys(VAULT_COLUMNS, pl.String))
    )
    return (frame.with_columns(replacements) if replacements else frame), vault
