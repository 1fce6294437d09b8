"""Values a ``defs.yaml`` takes from outside it, with one syntax everywhere (check, run, the UI).

- ``{env: NAME}``: the value of environment variable ``NAME``, read when the pipeline is checked or run;
  it never appears in a message, a log line or the UI (those show ``${NAME}``).
- ``lakegate://<zone>/<path>``: a path inside a zone (resolved by :func:`pipelines._flow.connector_config`,
  which also hands the zone's credentials to connectors that take storage options).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pipelines.errors import PipelineSpecError


def _env_name(value: Any) -> str | None:
    if isinstance(value, Mapping) and set(value) == {"env"} and isinstance(value["env"], str):
        return value["env"]
    return None


def env_problems(config: Mapping[str, Any], where: str) -> list[str]:
    """One line per ``{env: NAME}`` in ``config`` whose variable is not set."""
    problems: list[str] = []
    for path, name in _env_refs(config, where):
        if name not in os.environ:
            problems.append(f"{path}: environment variable {name} is not set; export it")
    return problems


def resolve_env(config: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``config`` with every ``{env: NAME}`` replaced by the variable's value.

    Raises:
        PipelineSpecError: a referenced variable is not set (named; no value is ever quoted).
    """
    problems = env_problems(config, where)
    if problems:
        raise PipelineSpecError("; ".join(problems))
    return _map(config, lambda name: os.environ[name])


def for_display(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every ``{env: NAME}`` shown as ``${NAME}`` (safe for the UI and logs)."""
    return _map(config, lambda name: f"${{{name}}}")


def _env_refs(value: Any, path: str) -> list[tuple[str, str]]:
    if (name := _env_name(value)) is not None:
        return [(path, name)]
    if isinstance(value, Mapping):
        return [ref for key, item in value.items() for ref in _env_refs(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [ref for i, item in enumerate(value) for ref in _env_refs(item, f"{path}[{i}]")]
    return []


def _map(config: Mapping[str, Any], replace: Any) -> dict[str, Any]:
    def walk(value: Any) -> Any:
        if (name := _env_name(value)) is not None:
            return replace(name)
        if isinstance(value, Mapping):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return {key: walk(item) for key, item in config.items()}
