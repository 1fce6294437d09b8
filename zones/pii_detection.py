"""PII found by content: recognizers that validate, run vectorized over the string columns of a batch.

Coverage follows Microsoft Presidio's pattern recognizers (without its NLP pipeline or any model):

================  ==========================================================================================
recognizer        finds (and validates)
================  ==========================================================================================
``email``         ASCII e-mail addresses (no leading/trailing/double dot in the local part)
``iban``          IBANs, compact or grouped by four: the country's registry length, ISO 7064 mod 97
``card``          payment cards, 13-19 digits, plain or grouped by spaces/dashes: issuer 2-6, Luhn
``ipv6``          IPv6 addresses (incl. ``::`` and IPv4-mapped forms), as parsed by ``ipaddress``; a network
                  in CIDR form (``2001:db8:1::/48``, what ``mask_ip``/``generalize`` write) is not one host
``ipv4``          dotted quads with octets 0-255 and no leading zeros (not ``1.2.3.4.5``, ``10.0.0.256``),
                  nor a network in CIDR form (``203.0.113.0/24``); ``/32`` is one host
``us_ssn``        US SSNs ``AAA-GG-SSSS`` / ``AAA GG SSSS``: SSA area/group/serial rules, no samples
``uk_nino``       UK National Insurance numbers: HMRC prefix letters, six digits, suffix A-D
``nl_bsn``        Dutch BSNs (11-test), only in a text naming it (``BSN``, ``burgerservicenummer``, ``sofi``)
``de_tax_id``     German Steuer-IDs (MOD 11,10, digit rule), only in a text naming it (``Steuer``, ``IdNr``)
``phone``         ``+``-international (E.164 length), NANP (US/CA) and trunk-``0`` national forms (UK, DE,
                  FR, NL...) written in groups; see :func:`zones._pii_checks.phone`
================  ==========================================================================================

How a column is scanned (no per-row Python): one regex pass keeps the rows that could hold anything;
on those, each recognizer extracts its candidates (``str.extract_all``), the *distinct* candidates are
validated in Python (they are few), and the validated spans are replaced in the rows that hold them by
one Aho-Corasick pass (``str.replace_many``). Recognizers run in the order above on the text the earlier
ones left, so a span is counted once (an IBAN's digits are not also a phone number). Bare 9- or
11-digit numbers are everywhere (order numbers), so BSN and Steuer-ID need their name in the same text,
the way Presidio's context words raise a weak pattern's score.

Tokens are the :class:`~zones.pii.Tokenizer`'s HMAC tokens of the span, so a detected e-mail gets the
same ``tok_...`` as the same e-mail in a declared PII column (joins and erasure find it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from lakegate import columns as col
from zones import _pii_checks as checks
from zones.pii import VAULT_COLUMNS, Tokenizer

_B = r"(?-u:\b)"  # an ASCII word boundary: keeps the regex engine on its fast DFA path
REPORT_MARKER = "[pii]"
"""What a found span becomes, internally, while only counting (``report``): no recognizer matches it."""


class PiiDetection(StrEnum):
    """What happens to PII found by content in a dataset's string columns."""

    TOKENIZE = "tokenize"
    """Replace each found span in place by its token; the plaintext goes to the pii zone."""
    QUARANTINE = "quarantine"
    """Send the whole record to quarantine, its spans tokenized and their plaintext vaulted."""
    REPORT = "report"
    """Only count findings (per column and recognizer); the data lands as received."""
    OFF = "off"
    """Do not scan."""


@dataclass(frozen=True)
class Recognizer:
    """One kind of PII: a regex proposing candidates and a validator keeping the real ones.

    Attributes:
        name: Reported name (``email``, ``iban``...).
        hint: A cheap regex every text holding this PII matches (``@`` for e-mails): texts without it
            skip the recognizer, and the union of all hints picks the texts worth scanning at all. For
            weak patterns it is a context word instead (the PII's name must appear in the text).
        pattern: Rust regex (no look-around) whose matches are candidates.
        validate: Candidate -> the PII span inside it, or ``None`` for a look-alike.
    """

    name: str
    hint: str
    pattern: str
    validate: Callable[[str], str | None]


_IBAN_LIKE = _B + r"[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?" + _B
# Without look-behind, look-alikes are kept out by matching them *whole* and refusing them in the
# validator: the IBAN alternative in ``card`` and ``phone`` swallows a bad IBAN (no card or phone starts
# inside it), ``ipv4`` takes a whole dotted run (``1.2.3.4.5``), ``ipv6`` the word around (``Foo::Bar``).
RECOGNIZERS: tuple[Recognizer, ...] = (
    Recognizer(
        "email",
        "@",
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}" + _B,
        checks.email,
    ),
    Recognizer("iban", "[A-Z]{2}[0-9]{2}", _IBAN_LIKE, checks.iban),
    Recognizer(
        "card",
        r"[0-9]{13}|[0-9]{4}[ \-][0-9]{3}",
        _IBAN_LIKE + "|" + _B + r"(?:[0-9]{13,19}|[0-9]{4}(?:[ \-][0-9]{3,6}){2,4}(?:[ \-][0-9]{1,2})?)" + _B,
        checks.card,
    ),
    Recognizer(
        "ipv6",
        ":[0-9A-Za-z_]*:",
        r"[0-9A-Za-z_]*(?::[0-9A-Za-z_]*){2,8}(?:\.[0-9]{1,3}){0,3}(?:/[0-9]{1,3})?",
        checks.ipv6,
    ),
    Recognizer(
        "ipv4",
        r"[0-9]\.[0-9]+\.[0-9]+\.[0-9]",
        _B + r"[0-9]+(?:\.[0-9]+){3,}(?:/[0-9]{1,2})?" + _B,
        checks.ipv4,
    ),
    Recognizer(
        "us_ssn",
        r"[0-9]{3}[\- ][0-9]{2}[\- ][0-9]{4}",
        _B + r"[0-9]{3}[\- ][0-9]{2}[\- ][0-9]{4}" + _B,
        checks.us_ssn,
    ),
    Recognizer(
        "uk_nino",
        "[A-Z]{2} ?[0-9]{2}",
        _B + r"[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]" + _B,
        checks.uk_nino,
    ),
    Recognizer(
        "nl_bsn",
        r"(?i-u)bsn|burgerservice|sofi",
        _B + r"[0-9]{4}\.?[0-9]{2}\.?[0-9]{3}" + _B,
        checks.nl_bsn,
    ),
    Recognizer(
        "de_tax_id",
        r"(?i-u)steuer|idnr|identifikationsnummer",
        _B + r"[1-9][0-9](?: ?[0-9]{3}){3}" + _B,
        checks.de_tax_id,
    ),
    Recognizer(
        "phone",
        r"\+[1-9]|[0-9]{3}[ .\-][0-9]{3}|\([2-9][0-9]{2}\)|0[1-9][0-9]{0,4}[ .\-/][0-9]{2}",
        _IBAN_LIKE
        + "|" + r"\+[1-9](?:[ .\-]?\(?[0-9]{1,4}\)?){2,7}" + _B
        + "|" + rf"(?:{_B}1[ .\-])?(?:\([2-9][0-9]{{2}}\) ?|{_B}[2-9][0-9]{{2}}[ .\-])"
        + rf"[2-9][0-9]{{2}}[ .\-][0-9]{{4}}{_B}"
        + "|" + _B + r"0[1-9][0-9]{0,4}(?:[ .\-/][0-9]{2,8}){1,4}" + _B,
        checks.phone,
    ),
)  # fmt: skip
RECOGNIZER_NAMES = tuple(r.name for r in RECOGNIZERS)
_ANY = "|".join(f"(?:{r.hint})" for r in RECOGNIZERS)
"""Union of the hints: one cheap pass finds the rows worth a closer look."""

Findings = dict[tuple[str, str], int]
"""Spans found per ``(column, recognizer)``; never values."""


@dataclass(frozen=True)
class Detected:
    """A batch after detection, for the write path.

    Attributes:
        frame: The batch, its found spans replaced by tokens (``tokenize``/``quarantine``) or as
            received (``report``/``off``).
        vault: ``(token, column, value)`` rows for the pii zone (empty for ``report``/``off``).
        findings: Spans found per ``(column, recognizer)``.
        reasons: Per row, where PII was found (``notes: email, phone; name: email``), null where nothing
            was: the quarantine reason under ``quarantine``. Names only, never a value.
    """

    frame: pl.DataFrame
    vault: pl.DataFrame
    findings: Findings
    reasons: pl.Series

    @property
    def flagged(self) -> pl.Series:
        """Per row, whether anything was found; under ``quarantine`` these rows go to quarantine."""
        return self.reasons.is_not_null().alias("flagged")


def string_columns(
    frame: pl.DataFrame, skip: Iterable[str] = (), declared: Mapping[str, str] | None = None
) -> list[str]:
    """The columns detection scans: every string column except ``skip`` (e.g. declared PII columns,
    already protected), columns ``declared`` with another type (numbers and dates still as text before
    the write path types them) and lakegate's lineage columns -- but the raw text of a rejected record is
    scanned (it is free text, bound for quarantine)."""
    skipped = set(skip) | {n for n, t in (declared or {}).items() if t != "string"}
    return [
        n
        for n, t in frame.schema.items()
        if t == pl.String and n not in skipped and (not n.startswith(col.PREFIX) or n == col.RAW_TEXT)
    ]


def may_hold_pii(values: pl.Series) -> bool:
    """Whether any of ``values`` could hold PII (the recognizers' cheap hints): ``False`` proves a text
    column (or a dictionary column's distinct values) holds none."""
    return bool(values.cast(pl.String).str.contains(_ANY).any())


def scan(frame: pl.DataFrame, columns: Sequence[str] | None = None) -> Findings:
    """Count the PII spans in ``columns`` (default: every string column), per column and recognizer."""
    return detect(frame, PiiDetection.REPORT, None, columns).findings


def replace_spans(
    frame: pl.DataFrame, columns: Sequence[str] | None, tokenizer: Tokenizer
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Replace every found span in ``columns`` by its token: ``(protected frame, vault rows)``."""
    detected = detect(frame, PiiDetection.TOKENIZE, tokenizer, columns)
    return detected.frame, detected.vault


def detect(
    frame: pl.DataFrame,
    mode: PiiDetection,
    tokenizer: Tokenizer | None,
    columns: Sequence[str] | None = None,
) -> Detected:
    """Detection on one batch, as the write path calls it (frame in; frame, vault rows, counts out).

    Args:
        frame: The batch.
        mode: See :class:`PiiDetection`.
        tokenizer: Keys the tokens; required for ``tokenize`` and ``quarantine``.
        columns: Columns to scan (default: :func:`string_columns`); non-string ones are skipped.

    Raises:
        ValueError: ``tokenize``/``quarantine`` without a tokenizer.
    """
    nothing = pl.Series("reasons", [None] * frame.height, pl.String)
    empty_vault = pl.DataFrame(schema=dict.fromkeys(VAULT_COLUMNS, pl.String))
    if mode is PiiDetection.OFF:
        return Detected(frame, empty_vault, {}, nothing)
    if mode is not PiiDetection.REPORT and tokenizer is None:
        raise ValueError(f"pii_detection: {mode} needs the token key; use report or off without one")
    wanted = string_columns(frame) if columns is None else [c for c in columns if c in string_columns(frame)]
    findings: Findings = {}
    vault_parts = []
    replaced = {}
    labels = []
    # The cheap pass over every column at once (polars runs the expressions in parallel).
    candidates = frame.select(pl.col(c).str.contains(_ANY).fill_null(False) for c in wanted)
    for name in wanted:
        if not candidates[name].any():
            continue
        result = _column(frame[name], candidates[name], None if mode is PiiDetection.REPORT else tokenizer)
        findings.update({(name, r): n for r, n in result.counts.items()})
        if result.spans.height:
            labels.append(result.labels)
            if mode is not PiiDetection.REPORT:
                replaced[name] = result.values
                vault_parts.append(result.spans.select("token", pl.lit(name).alias("column"), "value"))
    vault = pl.concat(vault_parts).unique(maintain_order=True) if vault_parts else empty_vault
    out = frame.with_columns(list(replaced.values())) if replaced else frame
    reasons = (
        pl.DataFrame(labels).select(
            pl.concat_str(pl.all(), separator="; ", ignore_nulls=True).replace("", None).alias("reasons")
        )["reasons"]
        if labels
        else nothing
    )
    return Detected(out, vault, findings, reasons)


@dataclass(frozen=True)
class _ColumnResult:
    values: pl.Series
    counts: dict[str, int]
    labels: pl.Series  # per row: "column: recognizer, ..." or null
    spans: pl.DataFrame  # distinct (value, token)


def _column(values: pl.Series, candidates: pl.Series, tokenizer: Tokenizer | None) -> _ColumnResult:
    no_spans = pl.DataFrame(schema={"value": pl.String, "token": pl.String})
    rows = candidates.arg_true()
    text = values.gather(rows)
    # Every hint in one select: polars runs the expressions in parallel.
    hints = pl.DataFrame({"text": text}).select(
        pl.col("text").str.contains(r.hint).alias(r.name) for r in RECOGNIZERS
    )
    where = []
    counts: dict[str, int] = {}
    span_parts = []
    for recognizer in RECOGNIZERS:
        found = _find(text, hints[recognizer.name], recognizer)
        if not found.height:
            continue
        counts[recognizer.name] = found.height
        spans = found.select(pl.col("span").alias("value")).unique()
        mapping = (
            tokenizer.token_map(spans["value"])
            if tokenizer is not None
            else spans.with_columns(pl.lit(REPORT_MARKER).alias("token"))
        )
        span_parts.append(mapping)
        # Longest first + leftmost: a span that is part of a longer one never cuts the longer one up.
        ordered = mapping.sort(pl.col("value").str.len_bytes(), descending=True)
        at = found["row"].unique()
        text = text.scatter(
            at,
            text.gather(at).str.replace_many(
                ordered["value"].to_list(), ordered["token"].to_list(), leftmost=True
            ),
        )
        where.append(at.to_frame("row").with_columns(pl.lit(recognizer.name).alias("recognizer")))
    spans = pl.concat(span_parts).unique() if span_parts else no_spans
    labels = pl.Series(values.name, [None] * len(values), pl.String)
    if where:
        per_row = (
            pl.concat(where).group_by("row", maintain_order=True).agg(pl.col("recognizer").str.join(", "))
        )
        labels = labels.scatter(rows.gather(per_row["row"]), f"{values.name}: " + per_row["recognizer"])
    protected = values.scatter(rows, text) if tokenizer is not None else values
    return _ColumnResult(protected, counts, labels, spans)


def _find(text: pl.Series, hinted: pl.Series, recognizer: Recognizer) -> pl.DataFrame:
    """``(row, span)`` of every validated match of ``recognizer`` in the ``hinted`` rows of ``text``
    (row: index in ``text``)."""
    at = hinted.arg_true()
    frame = pl.DataFrame({"row": at, "text": text.gather(at)})
    matches = (
        frame.select("row", pl.col("text").str.extract_all(recognizer.pattern).alias("match"))
        .explode("match")
        .drop_nulls("match")
    )
    if not matches.height:
        return pl.DataFrame(schema={"row": pl.UInt32, "span": pl.String})
    distinct = matches["match"].unique().to_list()
    valid = {m: s for m in distinct if (s := recognizer.validate(m)) is not None}
    if not valid:
        return pl.DataFrame(schema={"row": pl.UInt32, "span": pl.String})
    return matches.select(
        "row", pl.col("match").replace_strict(valid, default=None, return_dtype=pl.String).alias("span")
    ).drop_nulls("span")


def findings_metadata(findings: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Findings as flat ``column.recognizer -> count`` (for run metadata and the ``pii_undeclared``
    check): counts only, never a value."""
    return {f"{column}.{recognizer}": n for (column, recognizer), n in sorted(findings.items())}


__all__ = [
    "RECOGNIZERS",
    "RECOGNIZER_NAMES",
    "Detected",
    "Findings",
    "PiiDetection",
    "Recognizer",
    "detect",
    "findings_metadata",
    "may_hold_pii",
    "replace_spans",
    "scan",
    "string_columns",
]
