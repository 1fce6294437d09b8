"""``sql`` connector backends: dlt ``sql_table`` with the pyarrow backend versus connectorx, into raw.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/sql_backends.py                 # 1M rows, own PostgreSQL 15
    PYTHONPATH=. .venv/bin/python benchmarks/sql_backends.py --rows 100000   # quick run
    PYTHONPATH=. .venv/bin/python benchmarks/sql_backends.py --sqlite        # a SQLite file instead

Without ``--dsn`` a throwaway server is started as in the tests (``tests/services/postgres.py``). The table
has 6 columns (bigint key, text, bigint, double, timestamptz, boolean). Timed work only, each path in its
own empty ``LAKEGATE_HOME``, all in the same minutes:

- ``lakegate pyarrow`` / ``lakegate connectorx``: ``pipelines.ingest`` of an EL ``sql`` pipeline (first run:
  the whole table) with ``backend: pyarrow`` / ``backend: connectorx``, checked: every row committed.
- ``bare connectorx``: ``connectorx.read_sql(..., return_type="arrow")`` of the same table (no load).

Prints rows/s of each path and last the line ``ratio: X.XX`` (lakegate connectorx / lakegate pyarrow).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from contextlib import ExitStack, closing
from pathlib import Path
from urllib.parse import quote

import connectorx as cx
import psycopg2

from pipelines import PipelineSpec, ingest
from zones import ZoneName, load_config, open_zone

_COLUMNS = "id bigint PRIMARY KEY, name text, amount bigint, price double precision, at {ts}, flag boolean"


def _fill_postgres(dsn: str, rows: int) -> None:
    with closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        conn.autocommit = True
        cur.execute(f"CREATE TABLE bench ({_COLUMNS.format(ts='timestamptz')})")
        cur.execute(
            "INSERT INTO bench SELECT g, 'name ' || g, g * 7, g / 3.0, now() - g * interval '1 second',"
            " g %% 2 = 0 FROM generate_series(1, %s) g",
            (rows,),
        )
        cur.execute("ANALYZE bench")


def _fill_sqlite(path: Path, rows: int) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"CREATE TABLE bench ({_COLUMNS.format(ts='timestamp')})")
        db.executemany(
            "INSERT INTO bench VALUES (?, ?, ?, ?, datetime('now', ?), ?)",
            ((g, f"name {g}", g * 7, g / 3, f"-{g} seconds", g % 2 == 0) for g in range(1, rows + 1)),
        )
        db.commit()


def _lakegate(url: str, backend: str, rows: int) -> float:
    spec = PipelineSpec.model_validate(
        {
            "name": f"bench_{backend}",
            "domain": "bench",
            "pattern": "EL",
            "connector": {
                "type": "sql",
                "config": {"url": url, "table": "bench", "cursor": "id", "backend": backend},
            },
        }
    )
    with tempfile.TemporaryDirectory(prefix="lakegate-bench-") as home:
        os.environ["LAKEGATE_HOME"] = home
        started = time.perf_counter()
        report = ingest(spec, run_id=backend)
        elapsed = time.perf_counter() - started
        raw = open_zone(ZoneName.RAW, load_config()).read("bench", spec.name)
        assert report.input_rows == rows == raw.height, (backend, report.input_rows, raw.height)
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dsn", help="an existing PostgreSQL (libpq URI) whose role may create a table")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    args = parser.parse_args(argv)
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")
    with ExitStack() as stack:
        if args.sqlite:
            path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lakegate-sqlite-"))) / "b.db"
            _fill_sqlite(path, args.rows)
            url, plain = f"sqlite:///{path}", f"sqlite://{path}"
        else:
            dsn = args.dsn
            if dsn is None:
                from tests.services.postgres import PASSWORD, ROLE, running_postgres

                server = stack.enter_context(running_postgres())
                with closing(server.admin()) as admin, admin.cursor() as cur:
                    cur.execute("CREATE DATABASE bench OWNER lakegate")
                dsn = f"postgresql://{ROLE}:{quote(PASSWORD, safe='')}@{server.host}:{server.port}/bench"
            _fill_postgres(dsn, args.rows)
            plain = dsn
            url = dsn.replace("postgresql://", "postgresql+psycopg2://", 1)
        started = time.perf_counter()
        table = cx.read_sql(plain, "SELECT * FROM bench", return_type="arrow")
        bare = time.perf_counter() - started
        assert table.num_rows == args.rows
        del table
        timings = {backend: _lakegate(url, backend, args.rows) for backend in ("pyarrow", "connectorx")}
        print(f"rows: {args.rows:,} ({'SQLite' if args.sqlite else 'PostgreSQL 15'})")
        print(f"bare connectorx read_sql -> Arrow: {args.rows / bare:,.0f} rows/s ({bare:.2f} s)")
        for backend, elapsed in timings.items():
            print(
                f"lakegate sql backend={backend} -> raw: {args.rows / elapsed:,.0f} rows/s ({elapsed:.2f} s)"
            )
        print(f"ratio: {timings['pyarrow'] / timings['connectorx']:.2f}")


if __name__ == "__main__":
    main()
