"""The reserved ``_lakegate_*`` columns are a wire protocol between connectors and zones: same names."""

from __future__ import annotations

import pytest

from connectors import _contract
from zones import _columns

CONNECTOR_COLUMNS = ("SOURCE", "POSITION", "REJECT_RULE", "REJECT_REASON", "RAW_TEXT")


@pytest.mark.parametrize("constant", CONNECTOR_COLUMNS)
def test_connector_columns_match_the_zone_side(constant: str) -> None:
    assert getattr(_contract, constant) == getattr(_columns, constant)


def test_connector_columns_are_distinct_and_reserved() -> None:
    names = [getattr(_contract, constant) for constant in CONNECTOR_COLUMNS]
    assert len(set(names)) == len(names)
    assert all(name.startswith(_columns.PREFIX) for name in names)
