"""Pure polars transforms (``LazyFrame -> LazyFrame``) and the registry that finds them by name.

Built-ins: ``cast_schema``, ``normalize_strings``, ``dedupe_latest``, ``cdc_apply``, ``scd2``, ``mask_ip``,
``url_parts`` and ``event_date``. Other distributions add transforms
through the ``lakegate.transforms`` entry-point group.
"""

import lakegate  # noqa: F401  (first: it picks Arrow's allocator before pyarrow loads)
from transforms._registry import (
    ENTRY_POINT_GROUP,
    REGISTRY,
    TransformLoadError,
    UnknownTransformError,
    apply_transforms,
    get_transform,
    register_transform,
    transform_names,
)
from transforms._types import (
    TYPE_NAMES,
    Transform,
    TransformContext,
    TransformError,
    UnknownTypeError,
    dtype_of,
    reject_reason,
    removes_rows_because,
)
from transforms.casting import CAST_ERRORS, cast_schema
from transforms.cleaning import normalize_strings
from transforms.dedupe import dedupe_latest

__all__ = [
    "CAST_ERRORS",
    "ENTRY_POINT_GROUP",
    "REGISTRY",
    "TYPE_NAMES",
    "Transform",
    "TransformContext",
    "TransformError",
    "TransformLoadError",
    "UnknownTransformError",
    "UnknownTypeError",
    "apply_transforms",
    "cast_schema",
    "dedupe_latest",
    "dtype_of",
    "get_transform",
    "normalize_strings",
    "register_transform",
    "reject_reason",
    "removes_rows_because",
    "transform_names",
]
