"""Messages of one batch -> an Arrow table of data rows and one of reject rows.

The hot path is vectorized: the values of a whole batch are joined into one newline-delimited buffer and
parsed by pyarrow's JSON reader in one call. Only a batch that does not parse that way (a poison message,
a value spanning lines, a field whose type changes between messages) is classified message by message,
and its good messages go back through the vectorized path.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any, cast

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from jsonschema import Draft202012Validator

from connectors.kafka.config import KafkaConfig
from lakegate.columns import POSITION, PREFIX, RAW_TEXT, REJECT_REASON, REJECT_RULE, SOURCE

KEY = "kafka_key"
"""The message key as text (bytes that are not UTF-8 written as ``\\xNN``)."""
TIMESTAMP = "kafka_timestamp"
"""The message timestamp (UTC, milliseconds)."""
HEADERS = "kafka_headers"
"""The message headers as a JSON list of ``[name, value]`` pairs; null when there are none."""
VALUE = "value"
"""The message value, binary (``format: bytes``)."""
METADATA = (KEY, TIMESTAMP, HEADERS)


@dataclass(frozen=True)
class Messages:
    """The messages of one batch, column by column (several partitions may be mixed)."""

    sources: list[str]
    offsets: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]
    timestamps: list[int]
    headers: list[list[tuple[str, bytes]] | None]

    def __len__(self) -> int:
        return len(self.offsets)

    def take(self, rows: list[int]) -> Messages:
        return Messages(*([column[i] for i in rows] for column in self._columns()))

    def _columns(self) -> tuple[list[Any], ...]:
        return (self.sources, self.offsets, self.keys, self.values, self.timestamps, self.headers)


class Decoder:
    """Decodes batches of messages for one config."""

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self.schema = Draft202012Validator(config.json_schema) if config.json_schema is not None else None

    def decode(self, messages: Messages) -> list[pa.Table]:
        """The data table and (when any) the reject table of ``messages``."""
        rejects: list[tuple[int, str, str]] = []  # (row, rule, why)
        values = pa.array(messages.values, pa.binary())
        rows: list[int] | None = None  # rows of ``messages`` in ``subset``; None: all of them
        subset = messages
        if not _all_fit(values, self.config.max_message_bytes):  # the usual batch skips this bookkeeping
            rows = self._sized(pc.binary_length(values).to_pylist(), rejects)
            subset = messages.take(rows)
        if self.config.format == "bytes":
            data = self._bytes_table(subset)
        else:
            columns, good, bad = self._json(subset)
            rejects += [(i if rows is None else rows[i], rule, why) for i, rule, why in bad]
            data = _with_metadata(columns, subset if len(good) == len(subset) else subset.take(good))
        tables = [data] if data.num_rows else []
        if rejects:
            tables.append(_reject_table(messages, sorted(rejects)))
        return tables

    def _sized(self, sizes: list[int | None], rejects: list[tuple[int, str, str]]) -> list[int]:
        """The rows whose value size is acceptable; the others (oversize, empty JSON) into ``rejects``."""
        limit = self.config.max_message_bytes
        rejects += [
            (i, "message_oversize", f"{n} bytes > {limit}") for i, n in enumerate(sizes) if n and n > limit
        ]
        if self.config.format == "bytes":
            return [i for i, n in enumerate(sizes) if n is None or n <= limit]
        rejects += [
            (i, "empty_message", "the value is empty (a tombstone?)") for i, n in enumerate(sizes) if not n
        ]
        return [i for i, n in enumerate(sizes) if n and n <= limit]

    def _bytes_table(self, messages: Messages) -> pa.Table:
        return _with_metadata(pa.table({VALUE: pa.array(messages.values, pa.binary())}), messages)

    def _json(self, messages: Messages) -> tuple[pa.Table, list[int], list[tuple[int, str, str]]]:
        """Text columns of the good values' top-level fields, their rows, and the rejects (by row)."""
        values = cast(list[bytes], messages.values)  # the caller passes non-empty values only
        everything = list(range(len(values)))
        if self.schema is None and (table := _parse_joined(values)) is not None:
            return table, everything, []
        bad = _classify(values)
        if self.schema is not None:
            failed = {i for i, _, _ in bad}
            bad += self._schema_failures(values, [i for i in everything if i not in failed])
        failed = {i for i, _, _ in bad}
        good = [i for i in everything if i not in failed]
        # A newline outside a string is whitespace (inside one it must be escaped): safe to flatten.
        flat = [values[i].replace(b"\n", b" ").replace(b"\r", b" ") for i in good]
        parsed = _parse_joined(flat)
        if parsed is None:  # a field changes type between messages: decode them one by one
            parsed = _parse_each(flat)
        return parsed, good, bad

    def _schema_failures(self, values: list[bytes], rows: list[int]) -> list[tuple[int, str, str]]:
        assert self.schema is not None
        failures = []
        for i in rows:
            error = next(iter(self.schema.iter_errors(json.loads(values[i]))), None)
            if error is not None:  # name the place and the keyword, never the value
                where = "/".join(str(p) for p in error.absolute_path) or "the value"
                failures.append((i, "json_schema", f"{where} fails the schema's '{error.validator}'"))
        return failures


def _all_fit(values: pa.BinaryArray, limit: int) -> bool:
    """Whether every value is present, non-empty and at most ``limit`` bytes."""
    if values.null_count:
        return False
    sizes = pc.min_max(pc.binary_length(values))
    return len(values) == 0 or (sizes["min"].as_py() > 0 and sizes["max"].as_py() <= limit)


def _parse_joined(values: list[bytes]) -> pa.Table | None:
    """Parse every value in one pyarrow call, fields as text; ``None`` when the batch needs a closer look."""
    if not values:
        return pa.table({})
    buffer = b"\n".join(values)
    if buffer.count(b"\n") != len(values) - 1 or b"\r" in buffer:
        return None  # a value spanning lines: the reader would see more records than messages
    options = pj.ReadOptions(block_size=max(1 << 20, len(buffer) + 1), use_threads=False)
    try:
        table = pj.read_json(io.BytesIO(buffer), read_options=options)
        if (texts := _timestamps_as_text(table.schema)) is not None:
            # pyarrow took some strings for timestamps (dropping their offset, reformatting them): read
            # them again as the strings they are.
            parse = pj.ParseOptions(explicit_schema=texts, unexpected_field_behavior="infer")
            table = pj.read_json(io.BytesIO(buffer), read_options=options, parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(values) or any(_reserved(n) for n in table.column_names):
        return None
    return _as_text(table)


def _timestamps_as_text(schema: pa.Schema) -> pa.Schema | None:
    """``schema`` with every timestamp (also nested) as a string; ``None`` when it has none."""

    def text(kind: pa.DataType) -> pa.DataType:
        if pa.types.is_timestamp(kind):
            return pa.string()
        if pa.types.is_struct(kind):
            return pa.struct([f.with_type(text(f.type)) for f in kind])
        if pa.types.is_list(kind):
            return pa.list_(kind.value_field.with_type(text(kind.value_type)))
        return kind

    changed = pa.schema([f.with_type(text(f.type)) for f in schema])
    return None if changed.equals(schema) else changed


def _reserved(name: str) -> bool:
    return name.startswith(PREFIX) or name in METADATA


def _as_text(table: pa.Table) -> pa.Table:
    """Every column as text, the way the files connector keeps JSON: the zone types declared columns."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    as_text = [
        pl.col(name)
        if dtype == pl.String
        else pl.col(name).cast(pl.String)
        if dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null
        # nested values: compact JSON text, encoded inside a one-field struct then unwrapped
        else pl.when(pl.col(name).is_null())
        .then(None)
        .otherwise(pl.struct(pl.col(name).alias("v")).struct.json_encode().str.slice(5).str.head(-1))
        .alias(name)
        for name, dtype in frame.schema.items()
    ]
    bools = [n for n, d in frame.schema.items() if d == pl.Boolean]
    out = frame.select(as_text).with_columns(pl.col(bools).str.to_lowercase())
    return pa.table({n: out[n].to_arrow().cast(pa.string()) for n in out.columns})


def _classify(values: list[bytes]) -> list[tuple[int, str, str]]:
    """The values that are not one JSON object with usable keys: ``(row, rule, reason)``."""
    bad: list[tuple[int, str, str]] = []
    try:
        text = pa.array(values, pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:  # find the values that are not UTF-8, one by one
        texts: list[str | None] = []
        for i, value in enumerate(values):
            try:
                texts.append(value.decode("utf-8"))
            except UnicodeDecodeError as exc:
                texts.append(None)
                bad.append((i, "invalid_encoding", f"not UTF-8 text (first bad byte at {exc.start})"))
        text = pa.array(texts, pa.string())
    matched = pl.Series(text).str.json_path_match("$")  # null where the text is not JSON
    objects = matched.str.starts_with("{")
    encoding = {i for i, _, _ in bad}
    for i, (is_json, is_object) in enumerate(zip(matched.is_not_null(), objects, strict=True)):
        if i in encoding:
            continue
        if not is_json:
            bad.append((i, "json_syntax", "not valid JSON"))
        elif not is_object:
            bad.append((i, "json_syntax", "not a JSON object"))
        elif any(_reserved(k) for k in json.loads(values[i])):
            bad.append(
                (i, "invalid_header", f"a field uses a reserved name ({PREFIX}*, {', '.join(METADATA)})")
            )
    return bad


def _parse_each(values: list[bytes]) -> pa.Table:
    """One message at a time (only for a batch whose field types differ between messages)."""
    rows = [{k: _text(v) for k, v in json.loads(value).items()} for value in values]
    names = list(dict.fromkeys(k for row in rows for k in row))
    return pa.table({n: pa.array([row.get(n) for row in rows], pa.string()) for n in names})


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _with_metadata(columns: pa.Table, messages: Messages) -> pa.Table:
    """Add key, timestamp, headers, source and position to ``columns`` (one row per message)."""
    return (
        columns.append_column(KEY, _keys(messages.keys))
        .append_column(TIMESTAMP, pa.array(messages.timestamps, pa.timestamp("ms", tz="UTC")))
        .append_column(HEADERS, _header_column(messages.headers))
        .append_column(SOURCE, pa.array(messages.sources, pa.string()))
        .append_column(POSITION, pa.array(messages.offsets, pa.int64()))
    )


def _keys(keys: list[bytes | None]) -> pa.Array:
    try:
        return pa.array(keys, pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array([k.decode("utf-8", "backslashreplace") if k is not None else None for k in keys])


def _header_column(headers: list[list[tuple[str, bytes]] | None]) -> pa.Array:
    if not any(headers):  # the usual batch: no headers at all
        return pa.nulls(len(headers), pa.string())
    return pa.array([_headers(h) for h in headers], pa.string())


def _headers(headers: list[tuple[str, bytes]] | None) -> str | None:
    if not headers:
        return None
    return json.dumps([[name, value.decode("utf-8", "backslashreplace")] for name, value in headers])


def raw_record(key: bytes | None, value: bytes | None) -> str:
    """A rejected message as JSON text ``{"key": ..., "value": ...}``, exactly recoverable: UTF-8 text
    as a string, other bytes as ``{"base64": ...}``."""

    def part(data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(data).decode("ascii")}

    return json.dumps({"key": part(key), "value": part(value)}, ensure_ascii=False)


def _reject_table(messages: Messages, rejects: list[tuple[int, str, str]]) -> pa.Table:
    rows = [i for i, _, _ in rejects]
    sources = [messages.sources[i] for i in rows]
    offsets = [messages.offsets[i] for i in rows]
    return pa.table(
        {
            SOURCE: pa.array(sources, pa.string()),
            POSITION: pa.array(offsets, pa.int64()),
            REJECT_RULE: pa.array([rule for _, rule, _ in rejects], pa.string()),
            REJECT_REASON: pa.array(
                [
                    f"{s} offset {o}: {why}"
                    for s, o, (_, _, why) in zip(sources, offsets, rejects, strict=True)
                ],
                pa.string(),
            ),
            RAW_TEXT: pa.array([raw_record(messages.keys[i], messages.values[i]) for i in rows], pa.string()),
        }
    )
