"""``url_parts`` and ``event_date``: fields derived in flight."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from transforms import TransformContext, get_transform
from transforms.derive import event_date, url_parts


def test_url_parts_take_host_and_path_and_leave_non_urls_null() -> None:
    frame = pl.DataFrame(
        {
            "url": [
                "https://Shop.Example.com/p/42?ref=mail#top",
                "http://user:pw@example.org:8080",
                "https://[2001:db8::1]:443/a/b",
                "not a url",
                None,
            ],
            "page_url": ["https://x.io/", None, None, None, None],
        }
    )
    out = url_parts(frame.lazy(), TransformContext()).collect()
    assert out["url_host"].to_list() == ["shop.example.com", "example.org", "[2001:db8::1]", None, None]
    assert out["url_path"].to_list() == ["/p/42", "/", "/a/b", None, None]
    assert out["page_url_host"].to_list() == ["x.io", None, None, None, None]
    assert out["url"].to_list() == frame["url"].to_list()  # the URL itself is kept


def test_event_date_is_the_utc_date_of_declared_datetimes() -> None:
    late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    frame = pl.DataFrame({"at": [late, None], "other": [late, late]}).with_columns(
        pl.col("at").dt.convert_time_zone("Europe/Berlin")  # 00:30 on Dec 1st there, Nov 30th in UTC
    )
    ctx = TransformContext(schema={"at": "datetime", "other": "string"})
    out = event_date(frame.lazy(), ctx).collect()
    assert out["at_date"].to_list() == [date(2026, 11, 30), None]
    assert "other_date" not in out.columns
    assert get_transform("event_date") is event_date and get_transform("url_parts") is url_parts
