"""Read and validate ``defs.yaml`` files without Dagster (``lakegate check``, scripts, benchmarks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from lakegate.registry import suggest
from pipelines.errors import PipelineSpecError
from pipelines.spec import PipelineSpec, check_spec

COMPONENT_TYPE = "dagster_project.components.IngestionPipeline"
# libyaml's loader when PyYAML was built with it: ~10x faster, same documents and the same error marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_defs_folder(folder: Path) -> tuple[list[str], int]:
    """Every problem in ``folder/*/defs.yaml`` as ``file: field: what; fix`` lines, and the file count."""
    read = read_defs_folder(folder)
    return [problem for _, _, problems in read for problem in problems], len(read)


def read_defs_folder(folder: Path) -> list[tuple[Path, PipelineSpec | None, list[str]]]:
    """``(file, spec, problems)`` of each ``folder/*/defs.yaml`` in name order, each read once
    (see :func:`read_defs_file`)."""
    return [(file, *read_defs_file(file)) for file in sorted(folder.glob("*/defs.yaml"))]


def read_named(folder: Path, requested: str) -> list[tuple[Path, PipelineSpec | None, list[str]]]:
    """:func:`read_defs_folder` limited to the files that may declare pipeline ``requested`` (its
    ``<domain>/<name>``, ``<domain>_<name>``, ``<name>`` or folder name): the others are only parsed, not
    checked (checking imports every connector they name)."""
    named = []
    for file in sorted(folder.glob("*/defs.yaml")):
        try:
            document = yaml.load(file.read_text(), Loader=_LOADER)
            attributes = document.get("attributes") or {}
            domain, name = str(attributes.get("domain")), str(attributes.get("name"))
        except (yaml.YAMLError, AttributeError):
            domain = name = ""
        if requested in (file.parent.name, f"{domain}/{name}", f"{domain}_{name}", name):
            named.append((file, *read_defs_file(file)))
    return named


def check_defs_file(file: Path) -> list[str]:
    """Problems of one ``defs.yaml`` (empty when valid)."""
    return read_defs_file(file)[1]


def read_defs_file(file: Path) -> tuple[PipelineSpec | None, list[str]]:
    """The pipeline one ``defs.yaml`` declares and its problems, read and checked once.

    The spec is ``None`` when the file does not parse into one; problems name the file, field and fix.
    """
    try:
        document = yaml.load(file.read_text(), Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        return None, [
            f"{file}:{where} not valid YAML ({getattr(exc, 'problem', exc)}); "
            "quote values containing ': ' or ', '"
        ]
    if not isinstance(document, dict) or document.get("type") != COMPONENT_TYPE:
        return None, [f"{file}: type: must be {COMPONENT_TYPE}"]
    try:
        spec = PipelineSpec.model_validate(document.get("attributes") or {})
    except ValidationError as exc:
        return None, [f"{file}: attributes.{_explain(err)}" for err in exc.errors()]
    return spec, [f"{file}: attributes.{problem}" for problem in check_spec(spec)]


def _explain(err: Any) -> str:
    """``field.path: message``; an unknown key also gets the valid keys and the closest one."""
    loc = [str(p) for p in err["loc"]]
    where = ".".join(loc)
    if err["type"] != "extra_forbidden":
        return f"{where}: {err['msg']}"
    valid = _keys_at(PipelineSpec, loc[:-1])
    if not valid:
        return f"{where}: unknown key; remove it"
    return f"{where}: unknown key{suggest(loc[-1], valid)}; valid keys: {', '.join(valid)}"


def _keys_at(model: type[BaseModel], path: list[str]) -> list[str]:
    """The field names of the model found at ``path`` inside ``model`` ([] when it is not a model)."""
    current: Any = model
    for part in path:
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:  # a mapping key (e.g. a column name) or a list index: keep the value type
            continue
        current = _model_in(field.annotation)
        if current is None:
            return []
    return list(current.model_fields) if _is_model(current) else []


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``Model``, ``Model | None``, ``dict[str, Model]``...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def load_spec(file: Path | str) -> PipelineSpec:
    """The pipeline a ``defs.yaml`` declares, fully checked.

    Raises:
        PipelineSpecError: every problem, each naming the file, the field and the fix.
    """
    path = Path(file)
    if not path.is_file():
        raise PipelineSpecError(f"{path}: no such defs.yaml")
    spec, problems = read_defs_file(path)
    if spec is None or problems:
        raise PipelineSpecError("; ".join(problems))
    return spec
