"""PII split: declared PII columns leave ingestion protected by one operator each.

A token is ``tok_`` + the first 32 hex digits of HMAC-SHA256(key, value): the same value always gives
the same token (joins and dedupe still work on tokens) and nobody without the key can recompute it.
The plaintext goes to the ``pii`` zone only, keyed by token -- for the operators in :data:`VAULTED`
(``tokenize``, ``mask``). ``hash``, ``redact`` and ``generalize`` are irreversible by design and vault
nothing; ``encrypt`` is reversible with its own key, so it needs no vault either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from zones.errors import ZoneError

PII_KEY_ENV = "LAKEGATE_PII_KEY"
ENCRYPTION_KEY_ENV = "LAKEGATE_PII_ENCRYPTION_KEY"
_MIN_KEY_CHARS = 16
_MASK_MIN_CHARS = 8
VAULT_COLUMNS = ("token", "column", "value")
REDACTED = "[redacted]"
"""What ``redact`` writes (and ``generalize`` writes for text it cannot generalize)."""
_HASH_KEY_LABEL = b"lakegate/pii/hash/v1"
_ENCRYPTION_KEY_LABEL = b"lakegate/pii/encrypt/aes-siv/v1"


class PiiMethod(StrEnum):
    """What happens to a declared PII column at ingestion (README: "PII operators")."""

    TOKENIZE = "tokenize"
    """Replace by a keyed token; plaintext kept in the pii zone (re-identifiable by its holders)."""
    MASK = "mask"
    """Replace by ``****`` plus the last four characters (whole mask under nine characters); plaintext
    kept in the pii zone too."""
    HASH = "hash"
    """Replace by ``hsh_`` + a keyed HMAC (a key derived from the token key, so a hash never equals the
    value's token); irreversible: no vault entry."""
    REDACT = "redact"
    """Replace by the fixed marker ``[redacted]``; nothing kept."""
    GENERALIZE = "generalize"
    """Coarsen: IPv4 -> its /24, IPv6 -> its /48, date/datetime -> first day of its month, number ->
    its band (see :func:`number_band`); nothing kept."""
    ENCRYPT = "encrypt"
    """Replace by ``enc_`` + deterministic AES-SIV ciphertext under ``$LAKEGATE_PII_ENCRYPTION_KEY``
    (a key separate from the token key); reversible with that key, so nothing is vaulted."""


VAULTED = frozenset({PiiMethod.TOKENIZE, PiiMethod.MASK})
"""Operators whose plaintext goes to the pii zone: the ones whose holders may re-identify by vault."""
TEXT_METHODS = frozenset(set(PiiMethod) - {PiiMethod.GENERALIZE})
"""Operators that write text (tokens, masks, hashes, markers, ciphertexts): the column must be a string."""
GENERALIZE_TYPES = ("string", "date", "datetime", "int32", "int64", "float32", "float64", "decimal")
"""Declared types ``generalize`` keeps (a string column holds IP addresses)."""


class PiiKeyError(ZoneError, ValueError):
    """A PII key (token or encryption) is missing, too short or reused."""


def _key_from(key: str | None, env: str, what: str, purpose: str) -> str:
    key = os.environ.get(env, "") if key is None else key
    if len(key) < _MIN_KEY_CHARS:
        state = "is not set" if not key else f"is shorter than {_MIN_KEY_CHARS} characters"
        raise PiiKeyError(
            f"environment variable {env} {state}; it keys {what} ({purpose}). "
            f"Set it to a secret of at least {_MIN_KEY_CHARS} characters."
        )
    return key


@dataclass(frozen=True)
class Tokenizer:
    """Keyed, deterministic tokenization (and keyed hashing) of values."""

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
        return cls(_key_from(key, PII_KEY_ENV, "the tokens of PII columns", purpose).encode())

    def token_map(self, values: pl.Series) -> pl.DataFrame:
        """``value -> token`` for the distinct non-null values of ``values``.

        HMAC runs once per *distinct* value, so repeated values (the common case) cost nothing more.
        """
        return _keyed_map(values, self.key, "tok_", "token")

    def hash_map(self, values: pl.Series) -> pl.DataFrame:
        """``value -> hash`` (``hsh_`` + 32 hex) for the distinct non-null values of ``values``.

        The HMAC key is derived from the token key under its own label: a hash is stable across runs and
        datasets (joins, grouping) but never equals the value's token, so it cannot be looked up in the
        vault.
        """
        derived = hmac.new(self.key, _HASH_KEY_LABEL, hashlib.sha256).digest()
        return _keyed_map(values, derived, "hsh_", "hash")


def _keyed_map(values: pl.Series, key: bytes, prefix: str, name: str) -> pl.DataFrame:
    distinct = values.drop_nulls().cast(pl.String).unique()
    out = [prefix + hmac.new(key, v.encode(), hashlib.sha256).hexdigest()[:32] for v in distinct.to_list()]
    return pl.DataFrame({"value": distinct, name: pl.Series(out, dtype=pl.String)})


@dataclass(frozen=True)
class Encryptor:
    """Deterministic, reversible encryption of values (AES-SIV, RFC 5297, via ``cryptography``).

    Deterministic on purpose: the same value always gives the same ciphertext, so joins, grouping and
    dedupe work on encrypted columns -- and equal values are visible as equal (frequency analysis), the
    price of that. SIV stays safe under this reuse (no nonce to repeat). The 512-bit key is derived by
    HKDF-SHA256 from ``$LAKEGATE_PII_ENCRYPTION_KEY``.
    """

    key: bytes

    def __repr__(self) -> str:
        return "Encryptor(key=***)"

    @classmethod
    def from_key(cls, key: str | None, purpose: str, token_key: bytes | None = None) -> Encryptor:
        """An encryptor keyed by ``key``, or by ``$LAKEGATE_PII_ENCRYPTION_KEY`` when ``None``.

        Raises:
            PiiKeyError: the key is missing, shorter than 16 characters or the token key itself (the
                two must be separate secrets); never quoted.
        """
        secret = _key_from(key, ENCRYPTION_KEY_ENV, "the encrypted PII columns", purpose).encode()
        if token_key is not None and hmac.compare_digest(secret, token_key):
            raise PiiKeyError(
                f"{ENCRYPTION_KEY_ENV} equals {PII_KEY_ENV} ({purpose}); encryption needs its own secret: "
                "set a different one."
            )
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_ENCRYPTION_KEY_LABEL)
        return cls(derived.derive(secret))

    def encrypt_map(self, values: pl.Series) -> pl.DataFrame:
        """``value -> ciphertext`` (``enc_`` + URL-safe base64) for the distinct non-null values."""
        from cryptography.hazmat.primitives.ciphers.aead import AESSIV

        siv = AESSIV(self.key)
        distinct = values.drop_nulls().cast(pl.String).unique()
        out = [
            "enc_" + base64.urlsafe_b64encode(siv.encrypt(v.encode(), None)).decode().rstrip("=")
            for v in distinct.to_list()
        ]
        return pl.DataFrame({"value": distinct, "encrypted": pl.Series(out, dtype=pl.String)})

    def decrypt(self, text: str) -> str:
        """The plaintext of one ``enc_...`` value.

        Raises:
            PiiKeyError: not a ciphertext of this key (wrong key, or altered data).
        """
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESSIV

        body = text.removeprefix("enc_")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return AESSIV(self.key).decrypt(raw, None).decode()
        except (InvalidTag, ValueError) as exc:
            raise PiiKeyError(f"value is not a ciphertext of {ENCRYPTION_KEY_ENV}'s key") from exc


def number_band(value: pl.Expr) -> pl.Expr:
    """The lower bound of ``value``'s band: its leading digit kept, bands at least 10 wide.

    ``7 -> 0``, ``37 -> 30``, ``1299.5 -> 1000``, ``52340 -> 50000``, ``-37 -> -40``: a scale-free default
    (an age, a salary and an amount all keep about one significant digit), in the column's own type.
    """
    magnitude = value.abs().cast(pl.Float64).log10().floor().clip(lower_bound=1)
    width = pl.lit(10.0).pow(magnitude)
    return ((value.cast(pl.Float64) / width).floor() * width).fill_nan(0.0)


def _generalize(frame: pl.DataFrame, column: str) -> pl.Expr:
    dtype = frame.schema[column]
    value = pl.col(column)
    if dtype in (pl.Date, pl.Datetime) or isinstance(dtype, pl.Datetime):
        return value.dt.truncate("1mo")
    if dtype.is_numeric():
        return number_band(value).cast(dtype)
    return _generalize_text(frame[column].cast(pl.String)).alias(column)


def _generalize_text(values: pl.Series) -> pl.Expr:
    """Text as received (before typing): IPs, ISO dates/datetimes and numbers; anything else redacted."""
    text = pl.col(values.name).cast(pl.String).str.strip_chars()
    distinct = values.drop_nulls().str.strip_chars().unique()
    v6_map = {v: n for v in distinct.filter(distinct.str.contains(":")).to_list() if (n := _ipv6_48(v))}
    number = text.cast(pl.Float64, strict=False)
    return (
        pl.when(text.is_null())
        .then(None)
        .when(text.str.contains(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"))
        .then(text.str.replace(r"\.[0-9]+$", ".0/24"))
        .when(text.is_in(list(v6_map)))
        .then(text.replace_strict(v6_map, default=None, return_dtype=pl.String))
        .when(text.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
        .then(text.str.slice(0, 8) + "01")
        .when(text.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}"))
        .then(text.str.slice(0, 8) + "01" + text.str.slice(10, 1) + "00:00:00" + _zone_suffix(text))
        .when(text.str.contains(r"^-?[0-9]+$"))
        .then(number_band(number).cast(pl.Int64).cast(pl.String))
        .when(number.is_not_null())
        .then(number_band(number).cast(pl.String))
        .otherwise(pl.lit(REDACTED))
    )


def _zone_suffix(text: pl.Expr) -> pl.Expr:
    return text.str.extract(r"(Z|[+\-][0-9]{2}:?[0-9]{2})$").fill_null("")


def _ipv6_48(text: str) -> str | None:
    try:
        return str(ipaddress.IPv6Network(f"{text}/48", strict=False))
    except ValueError:
        return None


def split_pii(
    frame: pl.DataFrame,
    pii: Mapping[str, PiiMethod],
    tokenizer: Tokenizer,
    encryptor: Encryptor | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Replace the PII columns of ``frame`` and return ``(protected frame, vault rows)``.

    Vault rows are ``(token, column, value)`` for the :data:`VAULTED` operators only; a masked column's
    vault token is the same keyed token, so holders of the PII attribute can still find the plaintext
    behind a masked row's source record.

    Args:
        encryptor: Keys ``encrypt`` columns; when ``None`` and one is declared, built from
            ``$LAKEGATE_PII_ENCRYPTION_KEY``.

    Raises:
        PiiKeyError: an ``encrypt`` column and no (or a reused) encryption key.
    """
    vault_parts = []
    replacements = []
    for column, method in pii.items():
        if column not in frame.columns:
            continue
        text = pl.col(column).cast(pl.String)
        if method in VAULTED:
            mapping = tokenizer.token_map(frame[column])
            vault_parts.append(mapping.select("token", pl.lit(column).alias("column"), "value"))
        if method is PiiMethod.TOKENIZE:
            replacements.append(_lookup(text, mapping, "token"))
        elif method is PiiMethod.MASK:
            # Short values would be fully revealed by their last four characters: mask them whole.
            replacements.append(
                pl.when(text.is_null())
                .then(None)
                .when(text.str.len_chars() > _MASK_MIN_CHARS)
                .then(pl.concat_str(pl.lit("****"), text.str.slice(-4)))
                .otherwise(pl.lit("****"))
                .alias(column)
            )
        elif method is PiiMethod.HASH:
            replacements.append(_lookup(text, tokenizer.hash_map(frame[column]), "hash"))
        elif method is PiiMethod.REDACT:
            replacements.append(pl.when(text.is_null()).then(None).otherwise(pl.lit(REDACTED)).alias(column))
        elif method is PiiMethod.GENERALIZE:
            replacements.append(_generalize(frame, column))
        else:
            if encryptor is None:
                encrypted = [c for c, m in pii.items() if m is PiiMethod.ENCRYPT]
                encryptor = Encryptor.from_key(None, f"columns {', '.join(encrypted)}", tokenizer.key)
            replacements.append(_lookup(text, encryptor.encrypt_map(frame[column]), "encrypted"))
    vault = (
        pl.concat(vault_parts)
        if vault_parts
        else pl.DataFrame(schema=dict.fromkeys(VAULT_COLUMNS, pl.String))
    )
    return (frame.with_columns(replacements) if replacements else frame), vault


def _lookup(text: pl.Expr, mapping: pl.DataFrame, name: str) -> pl.Expr:
    lookup = dict(zip(mapping["value"].to_list(), mapping[name].to_list(), strict=True))
    return text.replace_strict(lookup, default=None, return_dtype=pl.String)
