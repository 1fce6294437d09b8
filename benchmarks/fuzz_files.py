"""Seeded fuzzer of the ``files`` connector: malformed CSV, NDJSON and Parquet, every record accounted for.

Usage::

    .venv/bin/python benchmarks/fuzz_files.py --cases 5000 --seed 7

Each case is a folder of one to three files of one format, written by ``random.Random(seed + case)``
together with the fate of every record it holds: a data row or a reject rule, at its position (the CSV
line or NDJSON line a record starts on, the Parquet row), or one whole-file reject. The connector is then
iterated over the folder's glob under a time limit, and its rows are compared with the expectation,
record by record: input records = data rows + reject rows, each exactly once, each with the expected
fate, and each data row with the generated ``id``. A crash, a hang past the limit or any difference is a
mismatch. The last line is ``fuzz: N cases, M mismatches`` (``tests/connectors/test_files_fuzz.py``
runs a few hundred cases of the same generator in the normal suite).
"""

from __future__ import annotations

import argparse
import gzip
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connectors import get_connector
from connectors.files import _csv
from lakegate.columns import POSITION, REJECT_RULE, SOURCE

DATA = "data"
Fate = tuple[str, int | None, str, str | None]
"""(file URL, position, "data" or the reject rule, the generated id of a data row)."""


@dataclass
class Case:
    """The files of one case, the connector config reading them and the fate of every record."""

    config: dict[str, Any]
    expected: list[Fate] = field(default_factory=list)
    csv_block_bytes: int = _csv.CSV_BLOCK_BYTES

    @property
    def malformed(self) -> int:
        return sum(fate != DATA for _, _, fate, _ in self.expected)


# ------------------------------------------------------------------------------------------------ CSV

_WORDS = ["ann", "bob", "Köln", "x y", "42", "-1.5", "true", "é😀", "a\x00b", 'ab"c']


def _csv_value(rng: random.Random, delimiter: str, encoding: str) -> tuple[str, int]:
    """A good value as written (quoted or not) and the line breaks it holds."""
    roll = rng.random()
    if roll < 0.5:
        word = rng.choice(_WORDS)
        if encoding != "utf-8" and not word.isascii():
            word = "é"  # every declared encoding has it
        return word, 0
    if roll < 0.6:
        return "", 0
    if roll < 0.65:
        return "L" * rng.choice([1_000, 20_000, 120_000]), 0  # very long field
    # Quoted values start with a letter: a runaway quote then never closes into a valid record.
    inner = rng.choice(["q", "Q"]) + "".join(
        rng.choice(["a", " ", delimiter, '""', "\n", "b"]) for _ in range(rng.randint(0, 8))
    )
    return f'"{inner}"', inner.count("\n")


def _bad_bytes(rng: random.Random, encoding: str) -> bytes:
    if encoding == "cp1252":
        return rng.choice([b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d"])
    return rng.choice([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80"])


def _csv_file(rng: random.Random, path: Path, url: str, delimiter: str, encoding: str) -> list[Fate]:
    columns = rng.randint(2, 5)
    header = delimiter.join(["id", *(f"c{i}" for i in range(1, columns))])
    eols = rng.choice([["\n"], ["\r\n"], ["\n", "\r\n"]])
    out: list[bytes] = [b"\xef\xbb\xbf" if encoding == "utf-8" and rng.random() < 0.2 else b""]
    out.append((header + rng.choice(eols)).encode(encoding))
    if encoding == "utf-16":
        out = [(header + rng.choice(eols)).encode("utf-16")]
    expected: list[Fate] = []
    line = 2
    records = 0 if rng.random() < 0.05 else rng.choice([rng.randint(1, 12), rng.randint(20, 120)])
    for n in range(records):
        while rng.random() < 0.1:  # empty lines are not records
            out.append(rng.choice(eols).encode(encoding if encoding != "utf-16" else "utf-16-le"))
            line += 1
        key = f"r{line}"
        values = [_csv_value(rng, delimiter, encoding) for _ in range(columns - 1)]
        text, breaks, fate = delimiter.join([key, *(v for v, _ in values)]), sum(b for _, b in values), DATA
        roll, bad = rng.random(), b""
        if roll < 0.12:
            text = delimiter.join([key] + ["v"] * rng.choice([0, columns]))  # too few or too many
            breaks, fate = 0, "csv_field_count"
        elif roll < 0.17:
            text, breaks, fate = (
                rng.choice([" ", "   ", "\t" if delimiter != "\t" else " "]),
                0,
                "csv_field_count",
            )
        elif roll < 0.27:  # a quote that never closes (letters follow it, as in every quoted value)
            cells = [key, *("v" for _ in range(columns - 1))]
            cells[rng.randrange(1, columns)] = '"open' + delimiter + "x"
            text, breaks, fate = delimiter.join(cells), 0, "csv_quote"
        elif roll < 0.40 and encoding in ("utf-8", "cp1252"):
            ragged = rng.random() < 0.3
            text = delimiter.join([key] + ["v"] * (columns if ragged else columns - 2)) + delimiter
            breaks, fate, bad = 0, "invalid_encoding", _bad_bytes(rng, encoding)
        last = n == records - 1 and rng.random() < 0.5
        eol = "" if last else rng.choice(eols)
        codec = encoding if encoding != "utf-16" else "utf-16-le"
        if bad:
            out.append(text.encode(codec) + bad + b"w" + eol.encode(codec))
        else:
            out.append((text + eol).encode(codec))
        expected.append((url, line, fate, key if fate == DATA else None))
        line += 1 + breaks
    body = b"".join(out)
    if not expected:
        expected = [(url, None, "empty_file", None)]
    if path.suffix == ".gz":
        if rng.random() < 0.3:
            path.write_bytes(body)  # named .gz, not gzip
            return [(url, None, "file_unreadable", None)]
        body = gzip.compress(body)
    path.write_bytes(body)
    return expected


def csv_case(rng: random.Random, folder: Path) -> Case:
    delimiter = rng.choice([",", ",", ";", "|", "\t"])
    encoding = rng.choice(["utf-8"] * 6 + ["latin-1", "cp1252", "utf-16"])
    suffix = ".tsv" if delimiter == "\t" else ".csv"
    config: dict[str, Any] = {"url": f"{folder.as_uri()}/*", "encoding": encoding}
    if delimiter not in ",\t":
        config["delimiter"] = delimiter
    case = Case(config, csv_block_bytes=rng.choice([64, 300, 4096, _csv.CSV_BLOCK_BYTES]))
    for i in range(rng.randint(1, 3)):
        path = folder / f"f{i}{suffix}{'.gz' if rng.random() < 0.2 else ''}"
        case.expected += _csv_file(rng, path, path.as_uri(), delimiter, encoding)
    return case


# --------------------------------------------------------------------------------------------- NDJSON


def _json_scalar(rng: random.Random) -> str:
    return rng.choice(
        [
            "1",
            "-2.50",
            '"text"',
            '"é😀"',
            "true",
            "null",
            "9" * 60,  # bigger than any integer type
            "1e400",  # bigger than any float
            '{"nested": {"deep": [1, 2]}}',  # nested where a flat value is declared
            '[1, "two", 3.0]',
        ]
    )


def ndjson_case(rng: random.Random, folder: Path) -> Case:
    case = Case({"url": f"{folder.as_uri()}/*"})
    for i in range(rng.randint(1, 3)):
        path = folder / f"f{i}{rng.choice(['.ndjson', '.jsonl'])}"
        url = path.as_uri()
        out: list[bytes] = []
        expected: list[Fate] = []
        line = 1
        for _ in range(rng.randint(1, 60)):
            while rng.random() < 0.08:
                out.append(rng.choice([b"\n", b"  \n", b"\r\n"]))
                line += 1
            key = f"r{line}"
            good = f'{{"id": "{key}", "a": {_json_scalar(rng)}, "b": {_json_scalar(rng)}}}'
            roll, fate, raw = rng.random(), DATA, good.encode()
            if roll < 0.15:
                raw, fate = good[: rng.randrange(1, len(good) - 1)].encode(), "json_syntax"  # truncated
            elif roll < 0.22:
                raw, fate = rng.choice([b"[1, 2]", b'"a string"', b"42", b'{"id": NaN}']), "json_syntax"
            elif roll < 0.30:
                raw, fate = raw.replace(b'"a"', b'"\xff"'), "invalid_encoding"
            elif roll < 0.34:
                raw, fate = good.replace('"a"', '"_lakegate_a"').encode(), "invalid_header"
            out.append(raw + rng.choice([b"\n", b"\r\n"]))
            expected.append((url, line, fate, key if fate == DATA else None))
            line += 1
        path.write_bytes(b"".join(out))
        case.expected += expected
    return case


# -------------------------------------------------------------------------------------------- Parquet


def parquet_case(rng: random.Random, folder: Path) -> Case:
    case = Case({"url": f"{folder.as_uri()}/*.parquet", "batch_rows": 1_000})
    for i in range(rng.randint(1, 3)):
        path = folder / f"f{i}.parquet"
        rows = rng.randint(1, 3_000)
        columns: dict[str, Any] = {"id": [f"r{n}" for n in range(1, rows + 1)]}
        if rng.random() < 0.5:  # schema drift between files: new columns, other types
            columns[rng.choice(["a", "b", "c"])] = pa.array(range(rows), rng.choice([pa.int32(), pa.int64()]))
        else:
            columns["a"] = [float(n) for n in range(rows)]
        pq.write_table(pa.table(columns), path, row_group_size=rng.choice([100, 1_000, 10_000]))
        roll = rng.random()
        if roll < 0.2:  # truncated: the footer is gone
            whole = path.read_bytes()
            path.write_bytes(whole[: rng.randrange(0, len(whole) - 8)])
            case.expected.append((path.as_uri(), None, "file_unreadable", None))
        elif roll < 0.25:
            path.write_bytes(rng.randbytes(rng.randint(0, 200)))
            case.expected.append((path.as_uri(), None, "file_unreadable", None))
        else:
            case.expected += [(path.as_uri(), n, DATA, f"r{n}") for n in range(1, rows + 1)]
    return case


# ------------------------------------------------------------------------------------------- checking

_MAKERS = [csv_case, csv_case, csv_case, ndjson_case, parquet_case]


def make_case(seed: int, index: int, folder: Path) -> Case:
    """Case ``index`` of the run seeded ``seed``, written into the empty ``folder``."""
    rng = random.Random(f"{seed}/{index}")
    return rng.choice(_MAKERS)(rng, folder)


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def expire(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"case took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def actual_fates(case: Case, seconds: float) -> list[Fate]:
    """What the connector made of the case's records, read under a time limit."""
    default = _csv.CSV_BLOCK_BYTES
    _csv.CSV_BLOCK_BYTES = case.csv_block_bytes
    try:
        with _time_limit(seconds):
            tables = list(get_connector("files").build(case.config))
    finally:
        _csv.CSV_BLOCK_BYTES = default
    fates: list[Fate] = []
    for table in tables:
        rules = table[REJECT_RULE].to_pylist() if REJECT_RULE in table.column_names else [None] * len(table)
        ids = table["id"].to_pylist() if "id" in table.column_names else [None] * len(table)
        for source, position, rule, key in zip(
            table[SOURCE].to_pylist(), table[POSITION].to_pylist(), rules, ids, strict=True
        ):
            fates.append((source, position, rule or DATA, key if rule is None else None))
    return fates


def check(case: Case, seconds: float = 20.0) -> str | None:
    """None when every record has its expected fate, else what differs (positions and rules only)."""
    try:
        actual = actual_fates(case, seconds)
    except Exception as exc:  # a crash or a hang is a mismatch, reported by type
        return f"{type(exc).__name__}"
    missing, extra = Counter(case.expected) - Counter(actual), Counter(actual) - Counter(case.expected)
    if not missing and not extra:
        return None
    return f"expected but missing {_shown(missing)}; unexpected {_shown(extra)}"


def _shown(fates: Counter[Fate]) -> list[tuple[str, int | None, str]]:
    """A few fates by file name, position and rule (never values)."""
    return sorted((Path(source).name, position, fate) for source, position, fate, _ in fates.elements())[:5]


def run(cases: int, seed: int, out: Any = sys.stdout) -> tuple[int, int, int]:
    """Run ``cases`` cases; print each mismatch and the summary line; (cases, mismatches, malformed)."""
    mismatches = malformed = 0
    root = Path(tempfile.mkdtemp(prefix="lakegate-fuzz-"))
    try:
        for index in range(cases):
            folder = root / f"case{index}"
            folder.mkdir()
            case = make_case(seed, index, folder)
            malformed += case.malformed
            if (problem := check(case)) is not None:
                mismatches += 1
                print(f"case {index} (seed {seed}): {problem}", file=out)
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"fuzz: {cases} cases, {mismatches} mismatches ({malformed} malformed records)", file=out)
    return cases, mismatches, malformed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    _, mismatches, _ = run(args.cases, args.seed)
    print(f"({time.perf_counter() - started:.1f} s)")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
