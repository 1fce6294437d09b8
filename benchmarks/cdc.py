"""CDC benchmark: lakegate ``postgres_cdc`` into the raw zone versus a bare psycopg2 pgoutput drain.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/cdc.py                  # 200k changes, own PostgreSQL 15
    PYTHONPATH=. .venv/bin/python benchmarks/cdc.py --changes 20000  # quick run
    PYTHONPATH=. .venv/bin/python benchmarks/cdc.py --dsn "host=... dbname=... user=... password=..."

Without ``--dsn`` a throwaway server is started as in the tests (``tests/services/postgres.py``). Two
slots are created before any change is written, so both paths read the same WAL: 50% inserts, 30%
updates, 20% deletes, in transactions of 1,000 changes. Timed work only (no server start, no writes):

- ``lakegate``: ``pipelines.ingest`` of an EL pipeline (connector -> dlt -> zone destination -> raw Delta),
  checked: every change committed, each position once.
- ``bare``: ``start_replication`` + ``read_message`` until every change message has arrived, undecoded.

Prints changes/s of each path and last the line ``ratio: X.XX`` (lakegate / bare).
"""

from __future__ import annotations

import argparse
import os
import select
import tempfile
import time
from contextlib import ExitStack, closing

import psycopg2
import psycopg2.extras

from lakegate.columns import POSITION
from pipelines import PipelineSpec, ingest
from zones import ZoneName, load_config, open_zone


def _write_changes(dsn: str, changes: int) -> None:
    inserts, updates = changes // 2, changes * 3 // 10
    deletes = changes - inserts - updates
    with closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        conn.autocommit = True
        for start in range(0, inserts, 1000):
            cur.execute(
                "INSERT INTO bench SELECT g, 'name ' || g, g, now() FROM generate_series(%s, %s) g",
                (start + 1, min(start + 1000, inserts)),
            )
        for first, count in ((1, updates), (updates + 1, deletes)):
            verb = "UPDATE bench SET amount = amount + 1" if first == 1 else "DELETE FROM bench"
            for start in range(first, first + count, 1000):
                cur.execute(
                    f"{verb} WHERE id BETWEEN %s AND %s", (start, min(start + 999, first + count - 1))
                )


def _bare(dsn: str, changes: int) -> float:
    conn = psycopg2.connect(dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    cur = conn.cursor()
    started = time.perf_counter()
    cur.start_replication(
        slot_name="bench_bare", decode=False, options={"proto_version": "1", "publication_names": "bench"}
    )
    seen = 0
    while seen < changes:
        message = cur.read_message()
        if message is None:
            select.select([cur], [], [], 1.0)
            continue
        if message.payload[:1] in (b"I", b"U", b"D"):
            seen += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def _lakegate_pipeline(dsn: str) -> PipelineSpec:
    """The EL pipeline, run once before the changes: publication, slot and the snapshot (one row)."""
    spec = PipelineSpec.model_validate(
        {
            "name": "bench",
            "domain": "bench",
            "pattern": "EL",
            "connector": {
                "type": "postgres_cdc",
                "config": {"dsn": dsn, "table": "bench", "slot": "bench_lakegate", "publication": "bench"},
            },
        }
    )
    # One row, so the snapshot commits a position: a run that commits none starts over with a new slot.
    assert ingest(spec, run_id="setup").input_rows == 1
    return spec


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=200_000)
    parser.add_argument("--dsn", help="an existing server (role with LOGIN REPLICATION owning the database)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        dsn = args.dsn
        if dsn is None:
            from tests.services.postgres import running_postgres

            server = stack.enter_context(running_postgres())
            with closing(server.admin()) as admin, admin.cursor() as cur:
                cur.execute("CREATE DATABASE bench OWNER lakegate")
            dsn = server.dsn("bench")
        os.environ["LAKEGATE_HOME"] = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="lakegate-bench-")
        )
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")
        with closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
            conn.autocommit = True
            cur.execute("CREATE TABLE bench (id int PRIMARY KEY, name text, amount bigint, at timestamptz)")
            cur.execute("INSERT INTO bench VALUES (0, 'seed', 0, now())")
        spec = _lakegate_pipeline(dsn)
        repl = psycopg2.connect(dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
        repl.cursor().create_replication_slot("bench_bare", output_plugin="pgoutput")
        repl.close()
        _write_changes(dsn, args.changes)

        bare = _bare(dsn, args.changes)
        started = time.perf_counter()
        report = ingest(spec, run_id="bench")
        ours = time.perf_counter() - started
        raw = open_zone(ZoneName.RAW, load_config()).read("bench", "bench")
        assert report.input_rows == args.changes == raw.height - 1, (report.input_rows, raw.height)
        assert raw[POSITION].n_unique() == raw.height
        print(f"changes: {args.changes}")
        print(f"bare pgoutput drain: {args.changes / bare:,.0f} changes/s ({bare:.2f} s)")
        print(f"lakegate postgres_cdc -> raw: {args.changes / ours:,.0f} changes/s ({ours:.2f} s)")
        print(f"ratio: {bare / ours:.2f}")


if __name__ == "__main__":
    main()
