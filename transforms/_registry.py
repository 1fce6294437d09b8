"""The name -> transform registry (see :mod:`lakegate.registry`): built-ins, in-process registrations and
the ``lakegate.transforms`` entry points of other distributions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TypeVar, cast

import polars as pl

from lakegate.registry import Reference, RegistrationError, Registry, UnknownNameError
from transforms._types import Transform, TransformContext, TransformError

ENTRY_POINT_GROUP: Final = "lakegate.transforms"
"""Entry-point group in which other distributions publish transforms (``name = "module:function"``)."""

_T = TypeVar("_T", bound=Transform)


class UnknownTransformError(TransformError, UnknownNameError, ValueError):
    """No transform, built-in or from an entry point, has the requested name."""


class TransformLoadError(TransformError, RegistrationError):
    """A transform plug-in is broken (cannot be imported, is not callable) or its name is taken."""


def _validate(name: str, obj: object) -> Transform:
    if not callable(obj):
        raise TransformLoadError(
            f"transform '{name}' resolves to a {type(obj).__name__} object, not a callable transform"
        )
    return cast(Transform, obj)


REGISTRY: Registry[Transform] = Registry(
    "transform",
    _validate,
    builtins={
        "cast_schema": Reference("transforms.casting:cast_schema"),
        "normalize_strings": Reference("transforms.cleaning:normalize_strings"),
        "dedupe_latest": Reference("transforms.dedupe:dedupe_latest"),
        "cdc_apply": Reference("transforms.cdc:cdc_apply"),
        "scd2": Reference("transforms.scd2:scd2"),
        "mask_ip": Reference("transforms.masking:mask_ip"),
        "url_parts": Reference("transforms.derive:url_parts"),
        "event_date": Reference("transforms.derive:event_date"),
    },
    entry_point_group=ENTRY_POINT_GROUP,
    unknown_error=UnknownTransformError,
    broken_error=TransformLoadError,
)


def register_transform(name: str) -> Callable[[_T], _T]:
    """Return a decorator that registers a transform under ``name`` and returns it unchanged.

    Raises:
        TransformLoadError: ``name`` is already registered; built-ins can't be overridden.
    """

    def decorator(transform: _T) -> _T:
        REGISTRY.register(name, transform)
        return transform

    return decorator


def transform_names() -> tuple[str, ...]:
    """Return the names of all known transforms, registered and from entry points, sorted."""
    return REGISTRY.names()


def get_transform(name: str) -> Transform:
    """Return the transform called ``name``, importing it on first use.

    Raises:
        UnknownTransformError: No transform has that name; the message lists the known ones.
        TransformLoadError: The entry point providing ``name`` is broken.
    """
    return REGISTRY.get(name)


def apply_transforms(lf: pl.LazyFrame, names: Sequence[str], ctx: TransformContext) -> pl.LazyFrame:
    """Apply the named transforms to ``lf`` in order.

    All names are resolved before any transform runs, so a typo fails without doing work.

    Raises:
        TypeError: ``names`` is a single string rather than a sequence of names.
        UnknownTransformError: A name is unknown.
        TransformLoadError: The entry point behind a name is broken.
    """
    if isinstance(names, str):
        raise TypeError(f"names must be a sequence of transform names, not the string {names!r}")
    for transform in [get_transform(name) for name in names]:
        lf = transform(lf, ctx)
    return lf
