"""Durations as written in ``lakegate.yaml`` and ``defs.yaml``: ``<number><unit>`` with unit ``h``
(hours), ``d`` (days), ``w`` (weeks) or ``y`` (365 days), e.g. ``30d``, ``36h``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([hdwy])\s*$")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1), "y": timedelta(days=365)}


def parse_duration(text: str) -> timedelta:
    """``"30d"`` -> 30 days.

    Raises:
        ValueError: not ``<number><h|d|w|y>``; the message shows the accepted forms.
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"'{text}' is not a duration; write e.g. 36h, 30d, 2w or 1y")
    return int(match.group(1)) * _UNIT[match.group(2)]


def delta_interval(duration: timedelta) -> str:
    """The Delta table-property form of ``duration`` (``interval N seconds``)."""
    return f"interval {int(duration.total_seconds())} seconds"
