"""PII detection benchmark: scan (and tokenize) the string columns of N generated rows.

Usage::

    .venv/bin/python benchmarks/pii_detection.py                 # 5M rows
    .venv/bin/python benchmarks/pii_detection.py --rows 500000   # quick run
    .venv/bin/python benchmarks/pii_detection.py --pii-share 0.01

Two frames are generated (vectorised, seeded) and scanned by ``zones.pii_detection.detect`` in 100k-row
batches, the write path's batch size:

- ``batch``: the string columns of ``benchmarks/batch_files.py``'s 5M-row file, generated the same way
  (``currency``, ``country``, ``product`` = ``SKU-0001234 Stainless Kettle, black, size M``). Its seconds
  are the figure to set against that benchmark's batch EL time (the issue's budget: <= 20%).
- ``notes``: the same three columns plus a free-text ``notes`` column where ``--pii-share`` of the rows
  carry an e-mail, phone, IBAN or card, and the others carry dates, prices, order numbers and versions
  (look-alikes) -- the cost when there is something to find, validate, tokenize and vault.

Prints wall seconds, CPU seconds (all threads) and rows/s for each, in ``tokenize`` mode (``report``
scans the same way). CPU seconds are the steadier figure on a shared machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from zones.pii import Tokenizer
from zones.pii_detection import PiiDetection, detect

BATCH_ROWS = 100_000
_CURRENCIES = ["EUR", "USD", "GBP", "CHF", "SEK", "PLN"]
_COUNTRIES = ["DE", "FR", "NL", "BE", "ES", "IT", "PL", "SE", "CH", "GB", "US", "IE"]
_ADJECTIVES = ["Stainless", "Organic", "Compact", "Wireless", "Vintage", "Ergonomic", "Foldable", "Premium"]
_NOUNS = ["Kettle", "Backpack", "Desk Lamp", "Headphones", "Water Bottle", "Chair", "Notebook", "Toaster"]
_COLOURS = ["black", "white", "blue", "red", "green", "grey", "oak", "steel"]
_SIZES = ["XS", "S", "M", "L", "XL", "one-size"]
_PII = [
    "please contact {n}.doe@example.org about it",
    "call me on +44 20 7946 {n4}",
    "refund to IBAN DE89 3704 0044 0532 0130 00",
    "paid with card 4111 1111 1111 1111 yesterday",
]
_PLAIN = [
    "delivered on 2024-03-{d} at 10:30, order ORD-2024-{n6}",
    "price 1,299.00 EUR incl. VAT, firmware 1.2.{d}.4.5",
    "customer asked about size and colour of item {n6}",
]


def _pick(rng: np.random.Generator, values: list[str], n: int) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(rng.integers(0, len(values), n))


def generate(rows: int, pii_share: float, seed: int = 20_240_501) -> pl.DataFrame:
    """The batch file's string columns, plus ``notes`` free text (``pii_share`` of rows with PII)."""
    rng = np.random.default_rng(seed)
    n = pl.Series(rng.integers(0, 1_000_000, rows)).cast(pl.String)
    frame = pl.DataFrame(
        {
            "currency": _pick(rng, _CURRENCIES, rows),
            "country": _pick(rng, _COUNTRIES, rows),
            "_sku": rng.integers(0, 10_000_000, rows),
            "_adjective": _pick(rng, _ADJECTIVES, rows),
            "_noun": _pick(rng, _NOUNS, rows),
            "_colour": _pick(rng, _COLOURS, rows),
            "_size": _pick(rng, _SIZES, rows),
            "_pii": _pick(rng, _PII, rows),
            "_plain": _pick(rng, _PLAIN, rows),
            "_has": rng.random(rows) < pii_share,
            "_n": n,
        }
    )
    product = pl.format(
        "SKU-{} {} {}, {}, size {}",
        pl.col("_sku").cast(pl.String).str.zfill(7),
        "_adjective",
        "_noun",
        "_colour",
        "_size",
    )
    text = pl.when("_has").then("_pii").otherwise("_plain")
    notes = (
        text.str.replace("{n}", pl.col("_n"), literal=True)
        .str.replace("{n4}", pl.col("_n").str.zfill(4).str.slice(0, 4), literal=True)
        .str.replace("{n6}", pl.col("_n").str.zfill(6), literal=True)
        .str.replace("{d}", pl.col("_n").str.slice(0, 1).str.zfill(2), literal=True)
    )
    return frame.select("currency", "country", product.alias("product"), notes.alias("notes"))


def run(frame: pl.DataFrame, columns: list[str], tokenizer: Tokenizer) -> tuple[float, float, int]:
    """Wall and CPU seconds (all threads) to detect over ``frame`` in write-path batches; spans found."""
    found = 0
    start, cpu = time.perf_counter(), time.process_time()
    for offset in range(0, frame.height, BATCH_ROWS):
        batch = frame.slice(offset, BATCH_ROWS)
        found += sum(detect(batch, PiiDetection.TOKENIZE, tokenizer, columns).findings.values())
    return time.perf_counter() - start, time.process_time() - cpu, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--pii-share", type=float, default=0.01)
    args = parser.parse_args()
    frame = generate(args.rows, args.pii_share)
    tokenizer = Tokenizer(b"benchmark-key-0123456789")
    for label, columns in (
        ("batch", ["currency", "country", "product"]),
        ("notes", ["currency", "country", "product", "notes"]),
    ):
        seconds, cpu, found = run(frame.select(columns), columns, tokenizer)
        print(
            f"{label:6} {args.rows:,} rows x {len(columns)} string columns: {seconds:.2f} s "
            f"({cpu:.2f} CPU s), {args.rows / seconds:,.0f} rows/s, {found:,} spans found"
        )


if __name__ == "__main__":
    main()
