"""The conformance kit has no traps: pipelines are isolated, connector errors arrive as raised."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dlt
import pyarrow as pa
import pytest

from connectors.testing import load, positions, rejects
from lakegate.columns import POSITION, RAW_TEXT, REJECT_REASON, REJECT_RULE, SOURCE


class SourceDown(Exception):
    """What a connector raises when its source is unreachable."""


def _counting(batches: int) -> dlt.sources.DltResource:
    @dlt.resource(name="counting")
    def rows() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        start = state.get("next", 1)
        for i in range(start, batches + 1):
            yield pa.table({"i": [i], SOURCE: ["counting"], POSITION: pa.array([i], pa.int64())})
            state["next"] = i + 1

    return rows


def test_load_leaves_no_active_pipeline_behind(tmp_path: Path) -> None:
    assert len(load(_counting(4)(), tmp_path)) == 1
    # A direct iteration afterwards starts from scratch: it must not resume from the kit's pipeline state.
    assert len(list(_counting(4)())) == 4


def test_connector_errors_arrive_as_the_connector_raised_them(tmp_path: Path) -> None:
    @dlt.resource(name="down")
    def down() -> Iterator[pa.Table]:
        raise SourceDown("source at db.example is unreachable")
        yield pa.table({})  # pragma: no cover - makes this a generator

    with pytest.raises(SourceDown, match="unreachable"):
        load(down(), tmp_path)


def test_rejects_and_positions_are_read_back(tmp_path: Path) -> None:
    table = pa.table(
        {
            "i": pa.array([1, None], pa.int64()),
            SOURCE: ["s", "s"],
            POSITION: pa.array([1, 2], pa.int64()),
            REJECT_RULE: pa.array([None, "bad"], pa.string()),
            REJECT_REASON: pa.array([None, "s line 2: bad"], pa.string()),
            RAW_TEXT: pa.array([None, "2,??"], pa.string()),
        }
    )
    loaded = load(dlt.resource([table], name="mixed"), tmp_path)
    assert [(r[POSITION], r[REJECT_RULE], r[RAW_TEXT]) for r in rejects(loaded)] == [(2, "bad", "2,??")]
    assert positions(loaded) == {("s", 1): 1}
