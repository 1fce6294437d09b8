"""Inputs and scenarios for the kill harness: the three demo pipelines on inputs large enough that a kill
can land in every phase, small enough that a recovery run takes seconds.

Each ``write_input`` drops its files into the landing zone of ``LAKEGATE_HOME`` and computes, independently
of lakegate's write path, what a complete run must leave behind.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial

import fsspec
import polars as pl
from harness import Expected, Scenario

from pipelines.demo import write_demo
from zones import ZoneName, load_config, open_zone


def orders_input(rows: int) -> Expected:
    """The demo orders (malformed rows, resent orders); the latest ``updated_at`` per order is expected."""
    manifest = write_demo(load_config(), rows=rows)
    landing = open_zone(ZoneName.LANDING).config.url.removeprefix("file://")
    # An independent reading of the drops: rows whose every field casts, latest update per order.
    parsed = pl.concat(
        pl.read_csv(f"{landing}/sales/orders/{name}", infer_schema=False, truncate_ragged_lines=True)
        for name in ("orders_2026-11-01.csv", "orders_2026-11-02.csv")
    )
    typed = parsed.select(
        pl.col("order_id").cast(pl.Int64, strict=False),
        pl.col("customer_id").cast(pl.Int64, strict=False),
        pl.col("amount").cast(pl.Float64, strict=False),
        pl.col("ordered_at").str.to_datetime(time_zone="UTC", strict=False),
        pl.col("updated_at").str.to_datetime(time_zone="UTC", strict=False),
    ).drop_nulls()
    latest = typed.group_by("order_id").agg(pl.col("updated_at").max()).select("order_id", "updated_at")
    return Expected(input_rows=manifest.input_rows["sales/orders"], latest=latest)


def events_input(rows: int) -> Expected:
    """The demo events: ``5 * rows`` Parquet records loaded as received."""
    return Expected(input_rows=write_demo(load_config(), rows=rows).input_rows["web/events"])


def customers_input(files: int, per_file: int) -> Expected:
    """``files`` NDJSON customer exports with PII; in each, every 50th customer is sent twice (the second
    one later) and one line is broken. The later sign-up per customer is expected in curated."""
    landing = open_zone(ZoneName.LANDING)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    lines = 0
    latest: dict[int, datetime] = {}
    for f in range(files):
        records = []
        for i in range(per_file):
            cid = f * per_file + i + 1
            for resend in (0, 1) if cid % 50 == 0 else (0,):
                at = base + timedelta(minutes=cid, days=resend)
                latest[cid] = at
                records.append(
                    json.dumps(
                        {
                            "customer_id": cid,
                            "name": f" Customer {cid} ",
                            "email": f"customer{cid}@example.com",
                            "phone": f"+49 30 {1000000 + cid}",
                            "country": ["DE", "FR", "NL", "US", "GB"][cid % 5],
                            "signed_up_at": at.isoformat(),
                        }
                    )
                )
        records.append('{"customer_id": 0, "email": "broken@example.com", ')
        lines += len(records)
        url = f"{landing.config.url}/crm/customers/customers_{f:03d}.ndjson"
        with fsspec.open(url, "wb", auto_mkdir=True, **landing.fsspec_options()) as handle:
            handle.write(("\n".join(records) + "\n").encode())
    expected = pl.DataFrame(
        {"customer_id": list(latest), "signed_up_at": list(latest.values())},
        schema={"customer_id": pl.Int64, "signed_up_at": pl.Datetime("us", "UTC")},
    )
    return Expected(input_rows=lines, latest=expected)


def scenarios(scale: float = 1.0) -> dict[str, Scenario]:
    """The demo pipelines, sized by ``scale`` (1.0: a recovery run of a few seconds on 2 cores).

    Kill windows start when the run starts and end about when a normal run finishes on an idle machine,
    so kills land in every phase.
    """
    return {
        "orders": Scenario(
            pipeline="orders",
            domain="sales",
            dataset="orders",
            pattern="ELT",
            key=("order_id",),
            write_input=partial(orders_input, int(200_000 * scale)),
            kill_window=(0.0, 1.0 + 8.0 * scale),
        ),
        "customers": Scenario(
            pipeline="customers",
            domain="crm",
            dataset="customers",
            pattern="ETL",
            key=("customer_id",),
            write_input=partial(customers_input, 8, int(10_000 * scale)),
            kill_window=(0.0, 1.0 + 5.0 * scale),
        ),
        "events": Scenario(
            pipeline="events",
            domain="web",
            dataset="events",
            pattern="EL",
            key=("event_id",),
            write_input=partial(events_input, int(200_000 * scale)),
            kill_window=(0.0, 1.0 + 5.0 * scale),
        ),
    }
