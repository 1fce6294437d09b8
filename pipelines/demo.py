"""Demo data for the shipped pipelines, written into the landing zone.

The drops are deliberately imperfect (malformed CSV rows, values that don't cast, resent orders,
a broken JSON line, duplicate customers) so every guarantee is visible in the UI.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
import numpy as np
import polars as pl

from zones import LakegateConfig, ZoneName, open_zone

_STATUSES = ["new", "paid", "shipped", "cancelled"]
_COUNTRIES = ["DE", "FR", "NL", "US", "GB"]
INVENTORY_DB = "warehouse/inventory/inventory.db"
"""The demo SQLite database (table ``stock``) inside the landing zone."""
INVENTORY_ITEMS = 200


@dataclass
class DemoManifest:
    """What the demo wrote: files and the input rows and rejects each dataset should produce."""

    files: list[str] = field(default_factory=list)
    input_rows: dict[str, int] = field(default_factory=dict)
    distinct_keys: dict[str, int] = field(default_factory=dict)
    pii_values: list[str] = field(default_factory=list)


def write_demo(config: LakegateConfig, rows: int = 1_000, seed: int = 7) -> DemoManifest:
    """Write the demo drops into the landing zone and describe them."""
    landing = open_zone(ZoneName.LANDING, config)
    rng = np.random.default_rng(seed)
    manifest = DemoManifest()
    base = datetime(2026, 11, 1, tzinfo=UTC)

    def put(path: str, payload: bytes) -> None:
        url = f"{landing.config.url}/{path}"
        with fsspec.open(url, "wb", auto_mkdir=True, **landing.fsspec_options()) as handle:
            handle.write(payload)
        manifest.files.append(url)

    # orders: two drops; the second resends some orders with a later updated_at.
    lines = ["order_id,customer_id,amount,status,ordered_at,updated_at"]
    for i in range(1, rows + 1):
        at = base + timedelta(minutes=int(i))
        lines.append(
            f"{i},{rng.integers(1, 200)},{rng.integers(100, 99_999) / 100},"
            f"{rng.choice(_STATUSES)},{at.isoformat()},{at.isoformat()}"
        )
    bad = rows + 1
    lines += [
        f"{bad},17,12.50,paid",  # too few fields
        f"{bad + 1},oops,too,many,fields,here,2026-11-01",  # too many fields
        f"{bad + 2},18,abc,new,{base.isoformat()},{base.isoformat()}",  # amount does not cast
        f"{bad + 3},19,5.00,new,not-a-date,{base.isoformat()}",  # ordered_at does not cast
    ]
    put("sales/orders/orders_2026-11-01.csv", ("\n".join(lines) + "\n").encode())
    resent = ["order_id,customer_id,amount,status,ordered_at,updated_at"]
    for i in range(1, 51):
        at = base + timedelta(minutes=i)
        resent.append(
            f"{i},{rng.integers(1, 200)},{rng.integers(100, 99_999) / 100},shipped,{at.isoformat()},"
            f"{(at + timedelta(days=1)).isoformat()}"
        )
    put("sales/orders/orders_2026-11-02.csv", ("\n".join(resent) + "\n").encode())
    manifest.input_rows["sales/orders"] = (len(lines) - 1) + (len(resent) - 1)
    manifest.distinct_keys["sales/orders"] = rows

    # customers: NDJSON with PII, a duplicate customer and one broken line.
    records = []
    for i in range(1, 201):
        email, phone = f"customer{i}@example.com", f"+49 30 {1000000 + i}"
        manifest.pii_values += [email, phone]
        records.append(
            json.dumps(
                {
                    "customer_id": i,
                    "name": f" Customer {i} ",
                    "email": email,
                    "phone": phone,
                    "country": _COUNTRIES[i % 5],
                    "signed_up_at": (base + timedelta(hours=i)).isoformat(),
                    "prefs": {"newsletter": bool(i % 2)},
                }
            )
        )
    records.append(
        json.dumps(
            {
                "customer_id": 7,
                "name": "Customer 7",
                "email": "customer7@example.com",
                "phone": "+49 30 1000007",
                "country": "DE",
                "signed_up_at": (base + timedelta(days=30)).isoformat(),
            }
        )
    )
    records.append('{"customer_id": 999, "email": "broken-line@example.com", ')
    manifest.pii_values.append("broken-line@example.com")
    put("crm/customers/customers_2026-11-01.ndjson", ("\n".join(records) + "\n").encode())
    manifest.input_rows["crm/customers"] = len(records)
    manifest.distinct_keys["crm/customers"] = 200

    # events: Parquet, loaded as received.
    n = rows * 5
    events = pl.DataFrame(
        {
            "event_id": [f"ev-{i:07d}" for i in range(n)],
            "session_id": [f"s-{v:05d}" for v in rng.integers(0, n // 10 + 1, n)],
            "kind": rng.choice(["page_view", "click", "purchase"], n).tolist(),
            "at": pl.datetime_range(base, base + timedelta(seconds=n - 1), "1s", eager=True, time_zone="UTC"),
        }
    )
    with fsspec.open(
        f"{landing.config.url}/web/events/events_2026-11-01.parquet",
        "wb",
        auto_mkdir=True,
        **landing.fsspec_options(),
    ) as handle:
        events.write_parquet(handle, row_group_size=max(1, n // 4))
    manifest.files.append(f"{landing.config.url}/web/events/events_2026-11-01.parquet")
    manifest.input_rows["web/events"] = n
    manifest.distinct_keys["web/events"] = n

    # inventory: a SQLite database replicated by the sql connector (cursor: the row's version).
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "inventory.db"
        with sqlite3.connect(db) as conn:
            conn.execute(
                "CREATE TABLE stock (item_id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "quantity INTEGER NOT NULL, price REAL NOT NULL, version INTEGER NOT NULL)"
            )
            conn.executemany(
                "INSERT INTO stock VALUES (?, ?, ?, ?, ?)",
                [
                    (i, f"Item {i}", int(rng.integers(0, 500)), int(rng.integers(100, 9_999)) / 100, i)
                    for i in range(1, INVENTORY_ITEMS + 1)
                ],
            )
        conn.close()
        put(INVENTORY_DB, db.read_bytes())
    manifest.input_rows["warehouse/inventory"] = INVENTORY_ITEMS
    manifest.distinct_keys["warehouse/inventory"] = INVENTORY_ITEMS
    return manifest


CLICK_TOPIC = "clicks"
"""The Kafka topic of the ``clickstream`` demo pipeline."""
_KINDS = ["page_view", "click", "purchase"]


def click_event(n: int, at: datetime | None = None) -> dict[str, str]:
    """Demo click event number ``n`` (deterministic): every 7th from an IPv6 client, every 50th with an
    address that is not one (quarantined by ``mask_ip``), the e-mail of one of 97 users."""
    user = n % 97
    if n % 50 == 49:
        ip = f"{300 + n % 100}.0.0.{n % 256}"  # not an address
    elif n % 7 == 0:
        ip = f"2001:db8:{n % 65536:x}:{user:x}::{n % 9 + 1}"
    else:
        ip = f"198.51.{n % 200}.{n % 250 + 1}"
    when = at or datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=n)
    return {
        "event_id": f"e{n}",
        "user_id": f"u{user}",
        "email": f"user{user}@shop.example",
        "ip": ip,
        "url": f"https://shop.example/p/{n % 40}?ref=demo",
        "kind": _KINDS[n % len(_KINDS)],
        "at": when.isoformat(),
    }
