"""The name -> transform registry: built-ins register by decorator, third parties by entry point."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Final, TypeVar

import polars as pl

from transforms._types import Transform, TransformContext

ENTRY_POINT_GROUP: Final = "lakegate.transforms"
"""Entry-point group in which other distributions publish transforms (``name = "module:function"``)."""

_T = TypeVar("_T", bound=Transform)

# Transforms registered in this process, built-ins included.
_transforms: dict[str, Transform] = {}


class UnknownTransformError(ValueError):
    """No transform, built-in or from an entry point, has the requested name."""


class TransformLoadError(RuntimeError):
    """A ``lakegate.transforms`` entry point is broken: it cannot be imported, is not callable, or its name
    is taken."""


def register_transform(name: str) -> Callable[[_T], _T]:
    """Return a decorator that registers a transform under ``name`` and returns it unchanged.

    Raises:
        ValueError: ``name`` is already registered; built-ins can't be overridden.
    """

    def decorator(transform: _T) -> _T:
        if name in _transforms:
            raise ValueError(f"transform {name!r} is already registered; pick another name")
        _transforms[name] = transform
        return transform

    return decorator


@cache
def _discover() -> Mapping[str, EntryPoint]:
    # Reading entry-point metadata imports nothing, so one scan per process is cheap; the modules themselves
    # are imported only when their transform is asked for.
    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        previous = found.setdefault(entry_point.name, entry_point)
        if previous.value != entry_point.value:
            raise TransformLoadError(
                f"entry point {entry_point.name!r} in group {ENTRY_POINT_GROUP!r} is declared twice: "
                f"{previous.value} and {entry_point.value}"
            )
    return MappingProxyType(found)


def _entry_points() -> Mapping[str, EntryPoint]:
    found = _discover()
    # Checked on every lookup rather than at discovery, so it also catches transforms registered afterwards.
    clashes = sorted(found.keys() & _transforms.keys())
    if clashes:
        raise TransformLoadError(
            f"entry points in group {ENTRY_POINT_GROUP!r} reuse names of registered transforms: "
            f"{', '.join(clashes)}"
        )
    return found


def transform_names() -> tuple[str, ...]:
    """Return the names of all known transforms, registered and from entry points, sorted."""
    return tuple(sorted(_transforms.keys() | _entry_points().keys()))


def get_transform(name: str) -> Transform:
    """Return the transform called ``name``, importing it from its entry point on first use.

    Raises:
        UnknownTransformError: No transform has that name; the message lists the known ones.
        TransformLoadError: The entry point providing ``name`` (or sharing a name) is broken.
    """
    third_party = _entry_points()
    registered = _transforms.get(name)
    if registered is not None:
        return registered
    entry_point = third_party.get(name)
    if entry_point is None:
        raise UnknownTransformError(
            f"unknown transform {name!r}; known transforms: {', '.join(transform_names())}"
        )
    try:
        transform: Transform = entry_point.load()
    except Exception as exc:  # a plugin's import can fail in any way; report which plugin it was
        raise TransformLoadError(
            f"cannot load transform {name!r} from entry point {entry_point.value!r} "
            f"in group {ENTRY_POINT_GROUP!r}: {exc!r}"
        ) from exc
    if not callable(transform):
        raise TransformLoadError(
            f"entry point {name!r} ({entry_point.value}) in group {ENTRY_POINT_GROUP!r} "
            f"loads a {type(transform).__name__} object, not a callable transform"
        )
    return transform


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
