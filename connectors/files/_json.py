"""JSON: newline-delimited objects, line by line, or one JSON array of objects, item by item.

Each non-blank line (or array item) is one record. Values are kept as text exactly as written: numbers
keep their literal digits (a number too large for any type is still loaded, as text, and the zone
destination quarantines it if it does not cast), nested values become compact JSON text. A record is
rejected alone when it has undecodable bytes (``invalid_encoding``), is not valid JSON or not an object
(``json_syntax``), or has a key that cannot be a column (``invalid_header``: the reserved prefix, or a
key that differs only in case from one already seen in the file). A JSON array that does not parse as a
whole cannot be split into records: it is one ``json_syntax`` reject for the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa

from connectors.files._rows import (
    Reject,
    file_reject,
    first_bad_byte,
    raw_text,
    reject_table,
    with_positions,
)
from connectors.files._text import Regions
from lakegate.columns import PREFIX

_BLOCK_BYTES = 1 << 20
_CHUNK_LINES = 50_000


class _Number(str):
    """A JSON number as written in the file (json's float would round it, its int could be huge)."""

    __slots__ = ()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> Any:
    return json.loads(text, parse_int=_Number, parse_float=_Number, parse_constant=_refuse_constant)


def _compact(value: Any) -> str:
    """Compact JSON text of a parsed value, numbers as written."""
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    items = (json.dumps(k, ensure_ascii=False) + ":" + _compact(v) for k, v in value.items())
    return "{" + ",".join(items) + "}"


def _as_text(value: Any) -> str | None:
    """A top-level value as column text: strings and numbers as written, the rest as compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    return _compact(value)


class _Objects:
    """Collects the records of one file into tables of text columns and reject rows."""

    def __init__(self, source: str, unit: str) -> None:
        self.source = source
        self.unit = unit  # "line" or "item", as reasons name a record
        self.records = 0
        self._spellings: dict[str, str] = {}  # lower-case key -> the spelling the file first used
        self._rows: list[dict[str, str | None]] = []
        self._positions: list[int] = []
        self._rejects: list[Reject] = []

    def __len__(self) -> int:
        return len(self._rows) + len(self._rejects)

    def add_text(self, position: int, text: str) -> None:
        """Parse one NDJSON line and keep it as a row or a reject."""
        self.records += 1
        where = f"{self.source} {self.unit} {position}"
        if at := first_bad_byte(text):
            reason = f"{where}: not valid in the file's encoding (first bad byte at character {at})"
            self._rejects.append((position, "invalid_encoding", reason, raw_text(text)))
            return
        try:
            value = _loads(text)
        except json.JSONDecodeError as exc:
            reason = f"{where}: not valid JSON ({exc.msg} at character {exc.pos + 1})"
            self._rejects.append((position, "json_syntax", reason, text))
            return
        except (ValueError, RecursionError) as exc:  # NaN/Infinity; nesting deeper than Python's stack
            reason = f"{where}: not valid JSON ({type(exc).__name__})"
            self._rejects.append((position, "json_syntax", reason, text))
            return
        self.add_value(position, value, text, counted=True)

    def add_value(self, position: int, value: Any, raw: str | None = None, *, counted: bool = False) -> None:
        """Keep one parsed record as a row, or reject it if it is not an object with usable keys."""
        if not counted:
            self.records += 1
        where = f"{self.source} {self.unit} {position}"
        try:
            raw = _compact(value) if raw is None else raw
            if not isinstance(value, dict):
                reason = f"{where}: not a JSON object ({type(value).__name__})"
                self._rejects.append((position, "json_syntax", reason, raw))
                return
            if problem := self._key_problem(list(value)):
                self._rejects.append((position, "invalid_header", f"{where}: {problem}", raw))
                return
            row = {k: _as_text(v) for k, v in value.items()}
        except RecursionError:
            self._rejects.append((position, "json_syntax", f"{where}: nested too deeply", None))
            return
        for key in row:
            self._spellings.setdefault(key.lower(), key)
        self._rows.append(row)
        self._positions.append(position)

    def _key_problem(self, keys: list[str]) -> str | None:
        seen = dict(self._spellings)
        for key in keys:
            if key.startswith(PREFIX):
                return f"key {key} uses the reserved prefix {PREFIX}"
            spelling = seen.setdefault(key.lower(), key)
            if spelling != key:
                return f"keys '{spelling}' and '{key}' collide (names are case-insensitive)"
        return None

    def flush(self) -> Iterator[pa.Table]:
        """The rows and rejects collected since the last flush."""
        if self._rows:
            names = list(dict.fromkeys(k for row in self._rows for k in row))
            table = pa.table({n: pa.array([row.get(n) for row in self._rows], pa.string()) for n in names})
            yield with_positions(table, self.source, self._positions)
        if self._rejects:
            yield reject_table(self.source, self._rejects)
        self._rows, self._positions, self._rejects = [], [], []


def read_json(
    handle: IO[bytes], source: str, *, encoding: str, batch_rows: int, lines_only: bool = False
) -> Iterator[pa.Table]:
    """Read newline-delimited JSON (or one JSON array) into text columns plus reject rows.

    A file whose first non-blank character is ``[`` is a JSON array, unless it is named ``.ndjson`` or
    ``.jsonl`` or ``lines_only`` is set (the config declares ``format: ndjson``). A JSON *array* file
    has to be parsed whole; newline-delimited files stream in bounded chunks.
    """
    regions = Regions(handle, encoding, _BLOCK_BYTES)
    text = ""
    while not text.strip() and (region := regions.next()) is not None:
        text += region.text
    text = text.lstrip("\ufeff")
    if not text.strip():
        if regions.problem:
            yield file_reject(source, "file_unreadable", regions.problem)
        else:
            yield reject_table(source, [(None, "empty_file", f"{source}: the file is empty", None)])
        return
    if text.lstrip().startswith("[") and not (lines_only or _lines_only(source)):
        while (region := regions.next()) is not None:
            text += region.text
        yield from _json_array(text, source, regions.problem)
        return
    regions.push_back(text)
    objects = _Objects(source, "line")
    line = 1
    while (region := regions.next()) is not None:
        text = region.text
        if not region.final:  # keep a line cut by a lone \r for the next region
            cut = text.rfind("\n") + 1
            regions.push_back(text[cut:])
            text = text[:cut]
            if not text:
                continue
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        for raw in lines:
            if raw.strip():
                objects.add_text(line, raw.removesuffix("\r"))
            line += 1
            if len(objects) >= min(batch_rows, _CHUNK_LINES):
                yield from objects.flush()
    yield from objects.flush()
    if regions.problem:
        problem = f"{source} line {line}: the file cannot be read from this line on ({regions.problem})"
        yield reject_table(source, [(line, "file_unreadable", problem, None)])


def _lines_only(source: str) -> bool:
    """Whether the file's name says newline-delimited, so a first line ``[...]`` is a bad record rather
    than the start of a JSON array file."""
    return source.lower().removesuffix(".gz").removesuffix(".zst").endswith((".ndjson", ".jsonl"))


def _json_array(document: str, source: str, read_problem: str | None) -> Iterator[pa.Table]:
    if read_problem:
        yield file_reject(source, "file_unreadable", read_problem)
        return
    if first_bad_byte(document):
        yield file_reject(source, "file_unreadable", "a JSON array holding bytes not valid in its encoding")
        return
    try:
        records = _loads(document)
    except (ValueError, RecursionError) as exc:
        where = f"at character {exc.pos + 1}" if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        yield file_reject(source, "json_syntax", f"not a JSON array of objects ({where})")
        return
    if not isinstance(records, list):
        yield file_reject(source, "json_syntax", "not a JSON array of objects")
        return
    objects = _Objects(source, "item")
    for position, record in enumerate(records, start=1):
        objects.add_value(position, record)
    yield from objects.flush()
