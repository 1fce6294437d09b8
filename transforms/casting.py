"""``cast_schema``: cast columns to their declared types and record, per row, which casts failed."""

from __future__ import annotations

from typing import Final

import polars as pl

from lakegate import columns
from transforms._types import TransformContext, canonical_type_name, dtype_of

CAST_ERRORS: Final = columns.CAST_ERRORS
"""String column listing, per row, the declared columns whose value failed to cast; null when none failed."""

_BOOL_WORDS: Final = {
    "true": True,
    "t": True,
    "yes": True,
    "1": True,
    "false": False,
    "f": False,
    "no": False,
    "0": False,
}
# Prefix of the scratch columns that live only while cast_schema runs.
_SCRATCH: Final = f"{columns.PREFIX}cast_scratch_"
# What may follow the fixed-width date and time: a fraction of a second, then "Z" or an offset of ±HH[[:]MM].
_ISO_TAIL: Final = r"^(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)?$"
# Length and format of each fixed-width head: "YYYY-MM-DD", "YYYY-MM-DDTHH:MM", "YYYY-MM-DDTHH:MM:SS".
_ISO_HEADS: Final = ((10, "%Y-%m-%d"), (16, "%Y-%m-%dT%H:%M"), (19, "%Y-%m-%dT%H:%M:%S"))


def _parse_iso_datetimes(lf: pl.LazyFrame, columns: list[str]) -> pl.LazyFrame:
    """Replace the ISO 8601 text in ``columns`` with UTC datetimes; text that is not ISO 8601 becomes null."""
    # Polars parses fixed-width formats about ten times faster than formats with a fraction or an offset,
    # which go through chrono. So only the fixed-width head is parsed, and the fraction and the offset are
    # added from string slices of the tail. The pieces go into scratch columns because polars does not reuse
    # nested common subexpressions, and every piece is used several times.
    scratch = {column: f"{_SCRATCH}iso_{index}_" for index, column in enumerate(columns)}
    pieces: list[pl.Expr] = []
    for column, prefix in scratch.items():
        text = pl.col(column)
        has_seconds = text.str.slice(16, 1) == ":"
        head_length = pl.when(text.str.len_chars() == 10).then(10).when(has_seconds).then(19).otherwise(16)
        tail = text.str.slice(head_length)
        pieces += [
            # ISO 8601 allows a space instead of "T" between date and time.
            text.str.head(head_length).str.replace(" ", "T", literal=True).alias(f"{prefix}head"),
            tail.alias(f"{prefix}tail"),
            tail.str.strip_chars_start(".0123456789").alias(f"{prefix}zone"),
        ]

    parsed: list[pl.Expr] = []
    for column, prefix in scratch.items():
        head, tail, zone = pl.col(f"{prefix}head"), pl.col(f"{prefix}tail"), pl.col(f"{prefix}zone")
        # Each head goes only to the parse for its length (the others see null), so each row is parsed once.
        local = pl.coalesce(
            [
                pl.when(head.str.len_chars() == length)
                .then(head)
                .str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False, cache=False)
                for length, fmt in _ISO_HEADS
            ]
        )
        # Digits past the sixth are cut off, as polars does for finer-than-microsecond text.
        fraction = tail.str.strip_suffix(zone).str.slice(1, 6).str.pad_end(6, "0")
        microseconds = fraction.cast(pl.Int64, strict=False).fill_null(0)
        sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
        hours = zone.str.slice(1, 2).cast(pl.Int64, strict=False).fill_null(0)
        minutes = pl.when(zone.str.len_chars() > 3).then(zone.str.slice(-2).cast(pl.Int64)).otherwise(0)
        offset = sign * (hours * 60 + minutes)
        # A fraction only makes sense after seconds; without an offset the time is read as UTC.
        valid = tail.str.contains(_ISO_TAIL) & ((head.str.len_chars() == 19) | ~tail.str.starts_with("."))
        utc = local + pl.duration(microseconds=microseconds, minutes=-offset)
        parsed.append(pl.when(valid).then(utc).alias(column))

    return lf.with_columns(pieces).with_columns(parsed).drop([piece.meta.output_name() for piece in pieces])


def _parse_text(text: pl.Expr, target: pl.DataType) -> pl.Expr:
    """Parse stripped, non-empty text (or null) into ``target``; text that does not parse becomes null."""
    if target == pl.Boolean:
        return text.str.to_lowercase().replace_strict(_BOOL_WORDS, default=None, return_dtype=pl.Boolean)
    if target == pl.Date:
        return text.str.to_date("%Y-%m-%d", strict=False)
    # Numbers and decimals; a decimal with more fractional digits than the scale is rounded, as SQL does.
    return text.cast(target, strict=False)


def _cast(column: str, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    """Cast a typed ``column`` to ``target``; a value that can't be cast becomes null."""
    value = pl.col(column)
    if source.is_float() and target.is_integer():
        # A plain cast truncates 1.5 to 1; a fractional value is a failed cast, not a silent rounding.
        value = pl.when(value == value.round()).then(value)
    return value.cast(target, strict=False)


def cast_schema(lf: pl.LazyFrame, ctx: TransformContext) -> pl.LazyFrame:
    """Cast every column declared in ``ctx.schema`` to its type and add the ``CAST_ERRORS`` column.

    Strings are stripped and parsed: numbers, decimals, booleans (true/false/t/f/yes/no/1/0, any case), ISO
    dates (``YYYY-MM-DD``) and ISO datetimes (``T`` or space, optional fractional seconds and ``Z``/``±HH:MM``
    offset; converted to UTC, values without offset read as UTC). Empty and blank strings become null without
    error, and a string declared ``string`` is left as it is. Already-typed columns are cast with polars,
    except that a float with a fraction declared as an integer is an error rather than truncated.

    A row's ``CAST_ERRORS`` is null when every cast worked, otherwise ``"; "``-joined messages such as
    ``column 'amount' is not a valid float64``, one per column whose non-empty input became null. Messages
    never include the value, which may be personal data; errors already in an input ``CAST_ERRORS`` come
    first.

    Declared columns absent from the input are added as all-null columns of their type. All other columns and
    the column order are kept.

    Raises:
        ValueError: A declared type name is not supported.
    """
    targets = {column: dtype_of(type_name) for column, type_name in ctx.schema.items()}
    source_schema = lf.collect_schema()
    to_cast = {
        column: (source_schema[column], target)
        for column, target in targets.items()
        if column in source_schema and source_schema[column] != target
    }
    texts = [column for column, (source, _) in to_cast.items() if source == pl.String]
    iso = [column for column in texts if isinstance(to_cast[column][1], pl.Datetime)]
    had_value = {column: f"{_SCRATCH}had_value_{index}" for index, column in enumerate(to_cast)}

    # Each step reads what the previous one wrote: text is cleaned in place first, so that "had a value" and
    # the parses all see the cleaned text without computing it again.
    stripped = pl.col(texts).str.strip_chars()
    lf = lf.with_columns(pl.when(stripped != "").then(stripped))
    lf = lf.with_columns(pl.col(column).is_not_null().alias(flag) for column, flag in had_value.items())
    lf = _parse_iso_datetimes(lf, iso)
    missing = [
        pl.lit(None, dtype=target).alias(column)
        for column, target in targets.items()
        if column not in source_schema
    ]
    lf = lf.with_columns(
        [
            _parse_text(pl.col(column), target) if source == pl.String else _cast(column, source, target)
            for column, (source, target) in to_cast.items()
            if column not in iso
        ]
        + missing
    )

    failures = [pl.col(CAST_ERRORS)] if CAST_ERRORS in source_schema else []
    for column, flag in had_value.items():
        message = f"column '{column}' is not a valid {canonical_type_name(ctx.schema[column])}"
        failures.append(pl.when(pl.col(flag) & pl.col(column).is_null()).then(pl.lit(message)))
    errors = (
        pl.concat_str(failures, separator="; ", ignore_nulls=True).replace("", None)
        if failures
        else pl.lit(None, dtype=pl.String)
    )
    return lf.with_columns(errors.alias(CAST_ERRORS)).drop(had_value.values())
