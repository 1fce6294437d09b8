"""What every reader emits: data tables with lineage, reject tables, and the raw text of a record.

A reject row is one input record the connector could not turn into a data row. It carries the file
(``_lakegate_source``), the record's position, the rule it broke, a reason naming the file, the line and
what is wrong (never the record's values), and the record as received (``_lakegate_raw``).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from lakegate.columns import POSITION, RAW_TEXT, REJECT_REASON, REJECT_RULE, SOURCE
from lakegate.columns import PREFIX as RESERVED_PREFIX

Reject = tuple[int | None, str, str, str | None]
"""(position, rule, reason, raw text) of one rejected record; position None stands for a whole file."""

# Bytes a reader cannot decode become one lone surrogate each, U+DC00 + byte (for UTF-8 this is exactly
# Python's "surrogateescape"), so a decoded record still says which bytes were bad and what they were.
_BAD_BYTE = re.compile("[\udc00-\udcff]")


def has_bad_bytes(text: str) -> bool:
    """Whether decoded ``text`` holds bytes that were not valid in the file's encoding."""
    return _BAD_BYTE.search(text) is not None


def first_bad_byte(text: str) -> int:
    """1-based character index of the first undecodable byte in ``text`` (0 when there is none)."""
    found = _BAD_BYTE.search(text)
    return found.start() + 1 if found else 0


def raw_text(text: str) -> str:
    """The storable raw text of a record: as decoded, or escaped when it holds undecodable bytes.

    A record with undecodable bytes cannot be stored as a string as it is. It is then written with each
    backslash doubled and each undecodable byte as ``\\xNN``; ``codecs.escape_decode`` of that text
    (UTF-8 encoded) gives back the record's exact bytes for a UTF-8 file, and its text plus the bad bytes
    for other encodings. Records without undecodable bytes are stored exactly as decoded.
    """
    if not has_bad_bytes(text):
        return text
    return _BAD_BYTE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text.replace("\\", "\\\\"))


def with_lineage(table: pa.Table, source: str, first_position: int) -> pa.Table:
    """Append the source and consecutive positions from ``first_position`` on to a parsed table."""
    return with_positions(table, source, np.arange(first_position, first_position + table.num_rows))


def with_positions(table: pa.Table, source: str, positions: np.ndarray | list[int]) -> pa.Table:
    """Append the source column and the given positions to a parsed table."""
    return table.append_column(SOURCE, pa.repeat(pa.scalar(source), table.num_rows)).append_column(
        POSITION, pa.array(positions, pa.int64())
    )


def reject_table(source: str, rejects: list[Reject]) -> pa.Table:
    """Build a table of rejected records from (position, rule, reason, raw text) tuples."""
    positions, rules, reasons, raws = zip(*rejects, strict=True) if rejects else ((), (), (), ())
    return pa.table(
        {
            SOURCE: pa.array([source] * len(rejects), pa.string()),
            POSITION: pa.array(positions, pa.int64()),
            REJECT_RULE: pa.array(rules, pa.string()),
            REJECT_REASON: pa.array(reasons, pa.string()),
            RAW_TEXT: pa.array(raws, pa.string()),
        }
    )


def file_reject(source: str, rule: str, problem: str) -> pa.Table:
    """One reject row standing for a whole file that cannot be read; the file stays in landing."""
    return reject_table(source, [(None, rule, f"{source}: {problem}; fix the file and drop it again", None)])


def header_problem(names: list[str]) -> str | None:
    """Why a file's column names cannot be stored (Delta compares names case-insensitively), or None."""
    reserved = sorted(n for n in names if n.startswith(RESERVED_PREFIX))
    if reserved:
        return f"column name(s) {', '.join(reserved)} use the reserved prefix {RESERVED_PREFIX}"
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            return f"columns '{seen[name.lower()]}' and '{name}' collide (names are case-insensitive)"
        seen[name.lower()] = name
    return None
