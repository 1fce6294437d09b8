"""``mask_ip``: IP addresses cut to their network (IPv4 ``/24``, IPv6 ``/48``), vectorized in polars."""

from __future__ import annotations

from typing import Final

import polars as pl

from lakegate import columns
from transforms._types import TransformContext, TransformError, removes_rows_because

_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"  # no leading zeros (octal ambiguity)
_IPV4: Final = rf"^({_OCTET}\.{_OCTET}\.{_OCTET})\.{_OCTET}$"
_HEX: Final = r"[0-9a-f]{1,4}"
_IPV6_FULL: Final = rf"^(?:{_HEX}:){{7}}{_HEX}$"
_IPV6_SHORT: Final = rf"^(?:(?:{_HEX}:){{0,6}}{_HEX})?::(?:(?:{_HEX}:){{0,6}}{_HEX})?$"
REJECT_REASON: Final = (
    "an IP column holds neither a dotted IPv4 address nor an IPv6 address "
    "(embedded IPv4 and zone ids are not accepted)"
)


def ip_columns(names: list[str]) -> list[str]:
    """The columns ``mask_ip`` masks: ``ip`` and every ``*_ip``."""
    return [n for n in names if (n == "ip" or n.endswith("_ip")) and not n.startswith(columns.PREFIX)]


@removes_rows_because(REJECT_REASON)
def mask_ip(lf: pl.LazyFrame, ctx: TransformContext) -> pl.LazyFrame:
    """Replace each address in the ``ip`` / ``*_ip`` columns by its network: ``a.b.c.0/24`` for IPv4,
    ``h1:h2:h3::/48`` for IPv6 (lower case, RFC 5952 form), so a client is never identifiable by address.

    Surrounding whitespace is ignored; null or blank stays null (no address known). A row whose value is
    not an address (``256.1.1.1``, ``01.2.3.4``, ``1::2::3``, ``::ffff:1.2.3.4``, ``fe80::1%eth0``, ...)
    is removed: lakegate quarantines it with ``REJECT_REASON`` (its raw text vaulted when the dataset
    declares PII), so neither the row nor the address is lost or stored in the clear. ``ctx`` is not used.

    Raises:
        TransformError: the frame has no ``ip`` / ``*_ip`` column.
    """
    names = ip_columns(list(lf.collect_schema().names()))
    if not names:
        raise TransformError("mask_ip: no column named 'ip' or ending in '_ip'; rename the address column")
    masked = {
        name: _network(pl.col(name).cast(pl.String).str.strip_chars().str.to_lowercase()) for name in names
    }
    valid = pl.all_horizontal(
        [
            (
                pl.col(name).is_null()
                | (pl.col(name).cast(pl.String).str.strip_chars() == "")
                | net.is_not_null()
            )
            for name, net in masked.items()
        ]
    )
    return lf.filter(valid).with_columns(net.alias(name) for name, net in masked.items())


def _network(ip: pl.Expr) -> pl.Expr:
    """The ``/24`` or ``/48`` network of a lower-case address; null when ``ip`` is not an address."""
    v4 = ip.str.extract(_IPV4, 1)
    full, short = ip.str.contains(_IPV6_FULL), ip.str.contains(_IPV6_SHORT)
    left = pl.when(full).then(ip).otherwise(ip.str.extract(r"^(.*?)::", 1))
    right = ip.str.extract(r"::(.*)$", 1)
    groups = left.str.count_matches("[0-9a-f]+").fill_null(0) + right.str.count_matches(
        "[0-9a-f]+"
    ).fill_null(0)
    zeros = pl.lit("0").repeat_by(pl.max_horizontal(8 - groups, 0)).list.join(":")
    expanded = pl.concat_str(
        [pl.when(left != "").then(left), pl.when(short).then(zeros), pl.when(right != "").then(right)],
        separator=":",
        ignore_nulls=True,
    )
    hextets = expanded.str.split(":")
    h1, h2, h3 = (_hextet(hextets.list.get(i, null_on_oob=True)) for i in range(3))
    v6 = (
        pl.when(h3 != "0")
        .then(pl.concat_str(h1, pl.lit(":"), h2, pl.lit(":"), h3, pl.lit("::/48")))
        .when(h2 != "0")
        .then(pl.concat_str(h1, pl.lit(":"), h2, pl.lit("::/48")))
        .when(h1 != "0")
        .then(pl.concat_str(h1, pl.lit("::/48")))
        .otherwise(pl.lit("::/48"))
    )
    is_v6 = full | (short & (groups <= 7))
    return pl.when(v4.is_not_null()).then(v4 + ".0/24").when(is_v6).then(v6).otherwise(None)


def _hextet(group: pl.Expr) -> pl.Expr:
    """A hextet without leading zeros (``0`` for zero)."""
    stripped = group.str.strip_chars_start("0")
    return pl.when(stripped == "").then(pl.lit("0")).otherwise(stripped)
