"""Declared column types, the context handed to transforms, and the transform signature."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, TypeVar

import polars as pl

from lakegate.errors import LakegateError

_SIMPLE_TYPES: Final[Mapping[str, pl.DataType]] = MappingProxyType(
    {
        "string": pl.String(),
        "int32": pl.Int32(),
        "int64": pl.Int64(),
        "float32": pl.Float32(),
        "float64": pl.Float64(),
        "bool": pl.Boolean(),
        "date": pl.Date(),
        "datetime": pl.Datetime("us", "UTC"),
    }
)
_DECIMAL: Final = re.compile(r"decimal\((\d+),(\d+)\)")
# Polars stores decimals as 128-bit integers, which caps the precision.
_MAX_DECIMAL_PRECISION: Final = 38

TYPE_NAMES: Final[tuple[str, ...]] = (*_SIMPLE_TYPES, "decimal(P,S)")
"""The declared type names a schema may use; ``decimal(P,S)`` takes a precision and a scale."""


def canonical_type_name(type_name: str) -> str:
    """Return ``type_name`` lower-cased without whitespace: ``"Decimal(12, 2)"`` -> ``"decimal(12,2)"``."""
    return "".join(type_name.split()).lower()


class TransformError(LakegateError):
    """Base of every error the transforms package raises for a user's declaration or plug-in."""


class UnknownTypeError(TransformError, ValueError):
    """A declared column type lakegate does not know; the message lists the allowed ones."""


def dtype_of(type_name: str) -> pl.DataType:
    """Return the polars dtype for a declared type name.

    Names are matched case-insensitively and ignoring whitespace. ``datetime`` is microseconds in UTC;
    ``decimal(P,S)`` needs ``1 <= P <= 38`` and ``0 <= S <= P``.

    Raises:
        UnknownTypeError: ``type_name`` is not one of ``TYPE_NAMES``; the message names it and lists the
            allowed ones.
    """
    name = canonical_type_name(type_name)
    simple = _SIMPLE_TYPES.get(name)
    if simple is not None:
        return simple
    match = _DECIMAL.fullmatch(name)
    if match is not None:
        precision, scale = int(match[1]), int(match[2])
        if 1 <= precision <= _MAX_DECIMAL_PRECISION and scale <= precision:
            return pl.Decimal(precision, scale)
    raise UnknownTypeError(
        f"unsupported type {type_name!r}; allowed types: {', '.join(TYPE_NAMES)} "
        f"(with 1 <= P <= {_MAX_DECIMAL_PRECISION} and 0 <= S <= P)"
    )


@dataclass(frozen=True)
class TransformContext:
    """What a transform may know about the table it runs on.

    Attributes:
        primary_key: Columns that identify a row.
        schema: Column name -> declared type name (one of ``TYPE_NAMES``).
        order_by: Columns whose largest values mark the latest version of a row.
    """

    primary_key: tuple[str, ...] = ()
    schema: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    order_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Contexts are usually built from parsed config, so lists and dicts arrive here; copying them keeps
        # the frozen context immune to later mutation by the caller, and a bare string would otherwise
        # silently become a tuple of one-letter column names.
        for name in ("primary_key", "order_by"):
            columns = getattr(self, name)
            if isinstance(columns, str):
                raise TypeError(f"{name} must be a sequence of column names, not the string {columns!r}")
            object.__setattr__(self, name, tuple(columns))
        object.__setattr__(self, "schema", MappingProxyType(dict(self.schema)))


Transform = Callable[[pl.LazyFrame, TransformContext], pl.LazyFrame]
"""A pure function from a lazy frame and its context to a new lazy frame."""


_REJECT_REASON_ATTRIBUTE: Final = "__lakegate_reject_reason__"

_F = TypeVar("_F", bound=Transform)


def removes_rows_because(reason: str) -> Callable[[_F], _F]:
    """Declare why a transform removes rows: the reason lakegate records with each row it quarantines
    for that transform (without it, a generic one)."""

    def mark(transform: _F) -> _F:
        setattr(transform, _REJECT_REASON_ATTRIBUTE, reason)
        return transform

    return mark


def reject_reason(transform: Transform) -> str | None:
    """The reason declared with :func:`removes_rows_because`, if any."""
    reason = getattr(transform, _REJECT_REASON_ATTRIBUTE, None)
    return reason if isinstance(reason, str) else None
