"""Values a ``defs.yaml`` takes from outside it, with one syntax everywhere (check, run, the UI).

- ``{env: NAME}``: the value of environment variable ``NAME``, read when the pipeline is checked or run;
  it never appears in a message, a log line or the UI (those show ``${NAME}``).
- ``{env: NAME, default: VALUE}``: the same, ``VALUE`` when ``NAME`` is not set (shown as
  ``${NAME:-VALUE}``; for local defaults such as a broker address, never for secrets).
- ``lakegate://<zone>/<path>``: a path inside a zone (resolved by :func:`pipelines._flow.connector_config`,
  which also hands the zone's credentials to connectors that take storage options).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pipelines.errors import PipelineSpecError


def _env_name(value: Any) -> str | None:
    if (
        isinstance(value, Mapping)
        and set(value) in ({"env"}, {"env", "default"})
        and isinstance(value["env"], str)
        and isinstance(value.get("default", ""), str)
    ):
        return value["env"]
    return None


def _default(value: Mapping[str, Any]) -> str | None:
    default = value.get("default")
    return default if isinstance(default, str) else None


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
    return _map(config, lambda name, default: os.environ.get(name, default))


def for_display(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every ``{env: NAME}`` shown as ``${NAME}`` (safe for the UI and logs)."""
    return _map(config, _shown)


def _shown(name: str, default: str | None) -> str:
    return f"${{{name}}}" if default is None else f"${{{name}:-{default}}}"


def _env_refs(value: Any, path: str) -> list[tuple[str, str]]:
    """The ``(path, NAME)`` of each ``{env: NAME}`` without a default."""
    if (name := _env_name(value)) is not None:
        return [(path, name)] if _default(value) is None else []
    if isinstance(value, Mapping):
        return [ref for key, item in value.items() for ref in _env_refs(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [ref for i, item in enumerate(value) for ref in _env_refs(item, f"{path}[{i}]")]
    return []


def _map(config: Mapping[str, Any], replace: Any) -> dict[str, Any]:
    def walk(value: Any) -> Any:
        if (name := _env_name(value)) is not None:
            return replace(name, _default(value))
        if isinstance(value, Mapping):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return {key: walk(item) for key, item in config.items()}
