"""Per-batch record handling on the write path: reject split, PII protection, typing, lineage.

Everything here is vectorised polars; no per-row Python on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from lakegate import columns as col
from transforms import CAST_ERRORS, TransformContext, get_transform
from zones._fastcast import fast_cast
from zones.pii import VAULT_COLUMNS, PiiMethod, Tokenizer, split_pii
from zones.pii_detection import Findings, PiiDetection, detect, string_columns

READ_BATCH_ROWS = 100_000
"""Rows read from a load file at a time: bounds the write path's memory."""

QUARANTINE_SCHEMA = pl.Schema(
    {
        col.RULE: pl.String(),
        col.REASON: pl.String(),
        col.DATASET: pl.String(),
        col.SOURCE: pl.String(),
        col.POSITION: pl.Int64(),
        col.RAW_TEXT: pl.String(),
    }
)


@dataclass(frozen=True)
class DatasetSpec:
    """What the zone destination needs to know about one dataset.

    Attributes:
        domain: Business domain; the table lives at ``<zone>/<domain>/<name>``.
        name: Dataset (and dlt table) name.
        schema: Declared column types (see ``transforms.TYPE_NAMES``); values that do not cast are
            quarantined. Empty: keep the types as received.
        primary_key: Key columns for merges and uniqueness checks.
        pii: PII columns and how each is protected.
        order_by: What "latest" means when rows share a key (merges keep the greatest); default arrival.
        pii_detection: What happens to PII found by content in the string columns (see
            :mod:`zones.pii_detection`); declared PII columns are protected by their operator instead.
    """

    domain: str
    name: str
    schema: Mapping[str, str] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    pii: Mapping[str, PiiMethod] = field(default_factory=dict)
    order_by: tuple[str, ...] = ()
    pii_detection: PiiDetection = PiiDetection.TOKENIZE

    @property
    def path(self) -> str:
        return f"{self.domain}/{self.name}"

    @property
    def protects_found_pii(self) -> bool:
        """Whether PII found by content is tokenized (``tokenize``/``quarantine``): needs the token key."""
        return self.pii_detection in (PiiDetection.TOKENIZE, PiiDetection.QUARANTINE)


@dataclass(frozen=True)
class Lineage:
    """Constant lineage values stamped on every row of one load, and the source positions it covers.

    ``positions`` (ordered sources only) are committed as Delta app transactions ``pos:<source>`` =
    the highest position of the load, with its data and quarantine commits.
    """

    load_id: str
    run_id: str
    ingested_at: datetime
    positions: tuple[tuple[str, int], ...] = ()

    def columns(self) -> list[pl.Expr]:
        return [
            pl.lit(self.load_id, pl.String).alias(col.LOAD_ID),
            pl.lit(self.run_id, pl.String).alias(col.RUN_ID),
            pl.lit(self.ingested_at, pl.Datetime("us", "UTC")).alias(col.INGESTED_AT),
            pl.lit(self.ingested_at.date(), pl.Date).alias(col.INGEST_DATE),
        ]


@dataclass
class SplitBatch:
    """One input batch after the write-path rules: rows to commit and rows to quarantine."""

    good: pl.DataFrame
    rejected: pl.DataFrame


def vault_rows(frame: pl.DataFrame, spec: DatasetSpec, tokenizer: Tokenizer) -> pl.DataFrame:
    """The ``(token, column, value)`` rows a batch adds to the pii zone (PII columns and raw rejects)."""
    _, vault = split_pii(frame, _pii_with_raw(frame, spec), tokenizer)
    return vault


def _pii_with_raw(frame: pl.DataFrame, spec: DatasetSpec) -> dict[str, PiiMethod]:
    # A record that could not be parsed may hold PII anywhere in its raw text: vault it whole.
    extra = {col.RAW_TEXT: PiiMethod.TOKENIZE} if spec.pii and col.RAW_TEXT in frame.columns else {}
    return {**spec.pii, **extra}


def detection_columns(frame: pl.DataFrame, spec: DatasetSpec) -> list[str]:
    """The columns of ``frame`` detection scans: string columns, but not declared PII (protected by their
    operator), columns declared with another type, lineage columns, nor -- with declared PII -- a
    rejected record's raw text (vaulted whole then)."""
    if spec.pii_detection is PiiDetection.OFF:
        return []
    skip = [*spec.pii, col.RAW_TEXT] if spec.pii else []
    return string_columns(_as_text(frame), skip=skip, declared=spec.schema)


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Dictionary-encoded text (categoricals) as plain strings, so detection scans it too."""
    coded = [n for n, t in frame.schema.items() if isinstance(t, pl.Categorical | pl.Enum)]
    return frame.with_columns(pl.col(coded).cast(pl.String)) if coded else frame


@dataclass
class Scanned:
    """What the scan of a load job (before anything is written) found: vault rows and counts."""

    vault: pl.DataFrame
    findings: Findings


def scan_batch(frame: pl.DataFrame, spec: DatasetSpec, tokenizer: Tokenizer | None) -> Scanned:
    """The pii zone's rows of one batch (declared PII columns, and spans found by content when they are
    tokenized) and the spans found per ``(column, recognizer)``."""
    parts = [vault_rows(frame, spec, tokenizer)] if spec.pii and tokenizer is not None else []
    findings: Findings = {}
    columns = detection_columns(frame, spec)
    if columns:
        frame = _as_text(frame)
        protect = spec.protects_found_pii and tokenizer is not None
        mode = spec.pii_detection if protect else PiiDetection.REPORT
        found = detect(frame, mode, tokenizer if protect else None, columns)
        findings = found.findings
        parts.append(found.vault)
    empty = pl.DataFrame(schema=dict.fromkeys(VAULT_COLUMNS, pl.String))
    return Scanned(pl.concat([empty, *parts]), findings)


def split_batch(
    batch: pa.RecordBatch, spec: DatasetSpec, tokenizer: Tokenizer | None, *, detected: bool = False
) -> SplitBatch:
    """Apply the write-path rules to one batch (no lineage columns yet).

    The common case — nothing rejected, every value casts — copies no rows: filters run only when a
    row has to leave, and clean text columns are typed by pyarrow (see ``zones._fastcast``).
    ``detected``: the job's scan found PII by content, so spans are tokenized here (or, under
    ``quarantine``, their rows sent to quarantine); their plaintext was vaulted by the scan.
    """
    table = pa.Table.from_batches([batch])
    rejected_parts: list[pl.DataFrame] = []
    protect = detected and spec.protects_found_pii and tokenizer is not None
    if col.REJECT_REASON in table.column_names:
        if table.column(col.REJECT_REASON).null_count < table.num_rows:
            marked = _frame(table).select(pl.col(col.REJECT_REASON).is_not_null()).to_series()
            rejects = _frame(table).filter(marked)
            if protect and not spec.pii and tokenizer is not None:  # free text bound for quarantine
                rejects = detect(rejects, PiiDetection.TOKENIZE, tokenizer, [col.RAW_TEXT]).frame
            rejected_parts.append(_quarantine_from_marked(rejects, spec, tokenizer))
            table = table.filter(pa.array((~marked).to_arrow()))
        table = table.drop_columns(
            [c for c in (col.REJECT_REASON, col.REJECT_RULE, col.RAW_TEXT) if c in table.column_names]
        )
    if spec.pii and table.num_rows and (missing := [c for c in spec.pii if c not in table.column_names]):
        # Fail closed: a renamed PII column would otherwise land in plaintext under its new name.
        reason = (
            f"declared PII column(s) {', '.join(missing)} missing; row kept out, values stay in the source"
        )
        rejected_parts.append(_withheld(table, spec, "pii_column_missing", reason))
        table = table.slice(0, 0)
    if spec.pii and tokenizer is not None:
        protected, _ = split_pii(_frame(table), spec.pii, tokenizer)
        table = protected.to_arrow()
    if protect and tokenizer is not None and table.num_rows:
        table = _protect_found(_frame(table), spec, tokenizer, rejected_parts).to_arrow()
    left = dict(spec.schema)
    if left:
        table, left = fast_cast(table, spec.schema)
    frame = _frame(table)
    if left:
        typed = get_transform("cast_schema")(frame.lazy(), TransformContext(schema=left)).collect()
        failed = typed[CAST_ERRORS].is_not_null()
        if failed.any():
            rejected_parts.append(_quarantine_from_cast(frame.filter(failed), typed.filter(failed), spec))
            typed = typed.filter(~failed)
        frame = typed.drop(CAST_ERRORS)
    if spec.primary_key and frame.height:
        null_key_expr = pl.any_horizontal(pl.col(k).is_null() for k in spec.primary_key)
        if col.OP in frame.columns:  # a truncate is a change of the whole table: it has no key
            null_key_expr = null_key_expr & (pl.col(col.OP).fill_null("") != col.OP_TRUNCATE)
        null_key = frame.select(null_key_expr).to_series()
        if null_key.any():
            rejected_parts.append(
                quarantine_rows(frame.filter(null_key), spec, "primary_key_null", "a key column is null")
            )
            frame = frame.filter(~null_key)
    rejected = (
        pl.concat(rejected_parts, how="vertical")
        if rejected_parts
        else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    )
    return SplitBatch(good=frame, rejected=rejected)


def _protect_found(
    frame: pl.DataFrame, spec: DatasetSpec, tokenizer: Tokenizer, rejected_parts: list[pl.DataFrame]
) -> pl.DataFrame:
    """Spans found by content replaced by their tokens; under ``quarantine`` the rows holding any leave
    for quarantine (tokenized too), with where PII was found (names, never values) as the reason."""
    found = detect(_as_text(frame), spec.pii_detection, tokenizer, detection_columns(frame, spec))
    if spec.pii_detection is not PiiDetection.QUARANTINE:
        return found.frame
    flagged = found.flagged
    if not flagged.any():
        return found.frame
    reasons = f"{spec.path}: PII found by content in " + found.reasons.filter(flagged)
    records = quarantine_rows(found.frame.filter(flagged), spec, PII_RULE, "")
    rejected_parts.append(records.with_columns(reasons.alias(col.REASON)))
    return found.frame.filter(~flagged)


PII_RULE = "pii_detected"
"""The quarantine rule of records sent there by ``pii_detection: quarantine``."""


def _withheld(table: pa.Table, spec: DatasetSpec, rule: str, reason: str) -> pl.DataFrame:
    """Quarantine records for rows whose values must not be stored anywhere (no raw text)."""
    frame = _frame(table.select([c for c in (col.SOURCE, col.POSITION) if c in table.column_names]))
    return frame.select(
        pl.lit(rule).alias(col.RULE),
        pl.lit(f"{spec.path}: {reason}").alias(col.REASON),
        pl.lit(spec.path).alias(col.DATASET),
        _or_null(frame, col.SOURCE, pl.String),
        _or_null(frame, col.POSITION, pl.Int64),
        pl.lit(None, pl.String).alias(col.RAW_TEXT),
    ).cast(QUARANTINE_SCHEMA)


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _quarantine_from_marked(
    frame: pl.DataFrame, spec: DatasetSpec, tokenizer: Tokenizer | None
) -> pl.DataFrame:
    if spec.pii and tokenizer is not None:
        frame, _ = split_pii(frame, {col.RAW_TEXT: PiiMethod.TOKENIZE}, tokenizer)
    return frame.select(
        pl.col(col.REJECT_RULE).alias(col.RULE),
        pl.col(col.REJECT_REASON).alias(col.REASON),
        pl.lit(spec.path).alias(col.DATASET),
        _or_null(frame, col.SOURCE, pl.String),
        _or_null(frame, col.POSITION, pl.Int64),
        pl.col(col.RAW_TEXT),
    ).cast(QUARANTINE_SCHEMA)


def _quarantine_from_cast(received: pl.DataFrame, typed: pl.DataFrame, spec: DatasetSpec) -> pl.DataFrame:
    # The raw text is the record as received, PII columns already replaced by their tokens.
    raw = quarantine_rows(received, spec, "cast_schema", "")
    where = pl.concat_str(pl.col(col.SOURCE), pl.lit(" row "), pl.col(col.POSITION).cast(pl.String))
    return raw.with_columns(
        pl.concat_str(where.fill_null(pl.lit(spec.path)), pl.lit(": "), typed[CAST_ERRORS]).alias(col.REASON)
    )


def quarantine_rows(frame: pl.DataFrame, spec: DatasetSpec, rule: str, reason: str) -> pl.DataFrame:
    """Quarantine records for rows of ``frame`` that broke ``rule`` (raw text: the data columns as JSON)."""
    data_columns = [c for c in frame.columns if not c.startswith(col.PREFIX)]
    return frame.select(
        pl.lit(rule, pl.String).alias(col.RULE),
        pl.lit(reason, pl.String).alias(col.REASON),
        pl.lit(spec.path, pl.String).alias(col.DATASET),
        _or_null(frame, col.SOURCE, pl.String),
        _or_null(frame, col.POSITION, pl.Int64),
        pl.struct(data_columns).struct.json_encode().alias(col.RAW_TEXT),
    ).cast(QUARANTINE_SCHEMA)


def _or_null(frame: pl.DataFrame, name: str, dtype: type[pl.DataType]) -> pl.Expr:
    return pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)


def stamp(frame: pl.DataFrame, lineage: Lineage) -> pl.DataFrame:
    """Add the load's lineage columns."""
    return frame.with_columns(lineage.columns())


def unloadable_rows(parquet: pq.ParquetFile, spec: DatasetSpec, reason: str) -> pl.DataFrame:
    """One quarantine record per row of a job that could not be stored; values stay in the landing file."""
    parts = []
    for batch in parquet.iter_batches(
        batch_size=READ_BATCH_ROWS, columns=_columns_present(parquet, col.SOURCE, col.POSITION)
    ):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        parts.append(
            frame.select(
                pl.lit("load_failed").alias(col.RULE),
                pl.lit(f"{spec.path}: {reason}").alias(col.REASON),
                pl.lit(spec.path).alias(col.DATASET),
                *[
                    pl.col(c) if c in frame.columns else pl.lit(None).alias(c)
                    for c in (col.SOURCE, col.POSITION)
                ],
                pl.lit(None, pl.String).alias(col.RAW_TEXT),
            ).cast(QUARANTINE_SCHEMA)
        )
    return concat_rejects(parts)


def _columns_present(parquet: pq.ParquetFile, *names: str) -> list[str]:
    return [n for n in names if n in parquet.schema_arrow.names]


def concat_rejects(parts: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame(schema=QUARANTINE_SCHEMA)
