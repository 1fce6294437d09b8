"""Read and validate ``defs.yaml`` files without Dagster (``lakegate check``, scripts, benchmarks)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from pipelines.errors import PipelineSpecError
from pipelines.spec import PipelineSpec, check_spec

COMPONENT_TYPE = "dagster_project.components.IngestionPipeline"


def check_defs_folder(folder: Path) -> tuple[list[str], int]:
    """Every problem in ``folder/*/defs.yaml`` as ``file: field: what; fix`` lines, and the file count."""
    problems: list[str] = []
    files = sorted(folder.glob("*/defs.yaml"))
    for file in files:
        problems += check_defs_file(file)
    return problems, len(files)


def check_defs_file(file: Path) -> list[str]:
    """Problems of one ``defs.yaml`` (empty when valid)."""
    try:
        document = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        return [
            f"{file}:{where} not valid YAML ({getattr(exc, 'problem', exc)}); "
            "quote values containing ': ' or ', '"
        ]
    if not isinstance(document, dict) or document.get("type") != COMPONENT_TYPE:
        return [f"{file}: type: must be {COMPONENT_TYPE}"]
    try:
        spec = PipelineSpec.model_validate(document.get("attributes") or {})
    except ValidationError as exc:
        return [
            f"{file}: attributes.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
    return [f"{file}: attributes.{problem}" for problem in check_spec(spec)]


def load_spec(file: Path | str) -> PipelineSpec:
    """The pipeline a ``defs.yaml`` declares, fully checked.

    Raises:
        PipelineSpecError: every problem, each naming the file, the field and the fix.
    """
    path = Path(file)
    if not path.is_file():
        raise PipelineSpecError(f"{path}: no such defs.yaml")
    problems = check_defs_file(path)
    if problems:
        raise PipelineSpecError("; ".join(problems))
    document = yaml.safe_load(path.read_text())
    return PipelineSpec.model_validate(document.get("attributes") or {})
