"""``mask_ip``: networks, not addresses; what is not an address is removed (lakegate quarantines it)."""

from __future__ import annotations

import ipaddress

import polars as pl
import pyarrow as pa
import pytest

from lakegate.columns import POSITION, RAW_TEXT, REJECT_REASON, REJECT_RULE, SOURCE
from pipelines._flow import transform_keeping_rejects
from transforms import TransformContext, TransformError, get_transform, reject_reason
from transforms.masking import REJECT_REASON as MASK_REASON
from transforms.masking import mask_ip

ADDRESSES = [
    "1.2.3.4",
    "255.255.255.255",
    "0.0.0.0",
    " 10.0.0.1 ",
    "192.168.1.77",
    "2001:db8::1",
    "::1",
    "::",
    "fe80::",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "2001:0DB8:0000:0000::",
    "2001:0:5::1",
    "0:0:3::",
    "1:2:3:4:5:6:7:8",
    "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
]
NOT_ADDRESSES = [
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.4/24",
    "1::2::3",
    "12345::",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7::8",
    "::ffff:1.2.3.4",
    "fe80::1%eth0",
    "abc",
    "g::1",
]


def _network(address: str) -> str:
    """The oracle: Python's ipaddress module."""
    ip = ipaddress.ip_address(address.strip())
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False))


def test_addresses_become_their_network_as_ipaddress_computes_it() -> None:
    frame = pl.DataFrame({"ip": ADDRESSES, "client_ip": list(reversed(ADDRESSES))})
    out = mask_ip(frame.lazy(), TransformContext()).collect()
    assert out["ip"].to_list() == [_network(a) for a in ADDRESSES]
    assert out["client_ip"].to_list() == [_network(a) for a in reversed(ADDRESSES)]
    assert "192.168.1.0/24" in out["ip"].to_list()  # the oracle agrees with the /24 of the issue


@pytest.mark.parametrize("value", NOT_ADDRESSES)
def test_a_value_that_is_not_an_address_removes_its_row(value: str) -> None:
    frame = pl.DataFrame({"n": [1, 2], "ip": ["9.9.9.9", value]})
    out = mask_ip(frame.lazy(), TransformContext()).collect()
    assert out.to_dicts() == [{"n": 1, "ip": "9.9.9.0/24"}]


def test_null_and_blank_mean_no_address_and_stay_null() -> None:
    frame = pl.DataFrame({"ip": [None, "", "  ", "8.8.8.8"]})
    assert mask_ip(frame.lazy(), TransformContext()).collect()["ip"].to_list() == [
        None,
        None,
        None,
        "8.8.8.0/24",
    ]


def test_lineage_columns_and_other_columns_are_left_alone() -> None:
    frame = pl.DataFrame({"ip": ["1.2.3.4"], "skip": ["5.6.7.8"], f"{SOURCE}_ip": ["x"]})
    out = mask_ip(frame.lazy(), TransformContext()).collect()
    assert out.row(0) == ("1.2.3.0/24", "5.6.7.8", "x")


def test_no_address_column_is_a_clear_error() -> None:
    with pytest.raises(TransformError, match="no column named 'ip' or ending in '_ip'"):
        mask_ip(pl.LazyFrame({"address": ["1.2.3.4"]}), TransformContext())


def test_removed_rows_become_rejects_with_the_declared_reason_and_no_address_in_it() -> None:
    assert get_transform("mask_ip") is mask_ip
    assert reject_reason(mask_ip) == MASK_REASON
    table = pa.table(
        {
            "ip": ["1.2.3.4", "999.1.1.1"],
            "user": ["a", "b"],
            SOURCE: ["clicks/0", "clicks/0"],
            POSITION: pa.array([10, 11], pa.int64()),
        }
    )
    out = pl.from_arrow(transform_keeping_rejects(table, ["mask_ip"], TransformContext()))
    assert isinstance(out, pl.DataFrame)
    good = out.filter(pl.col(REJECT_REASON).is_null())
    bad = out.filter(pl.col(REJECT_REASON).is_not_null())
    assert good["ip"].to_list() == ["1.2.3.0/24"]
    assert bad[POSITION].to_list() == [11]
    assert bad[REJECT_RULE].to_list() == ["transform:mask_ip"]
    assert bad[REJECT_REASON].item() == f"clicks/0 row 11: {MASK_REASON}"
    assert "999.1.1.1" not in bad[REJECT_REASON].item()
    assert "999.1.1.1" in bad[RAW_TEXT].item()  # kept for replay; the zone vaults it when PII is declared
