"""Pipelines that name several tables: one ``defs.yaml``, one pipeline (dataset, assets, job) per table.

A connector that can read several tables in one config (``sql``'s ``tables:``) splits it into one
single-table config per dataset (:attr:`connectors.Connector.split`, no I/O). :func:`expand` turns the
declared pipeline into one ordinary pipeline per table, under the same domain, so every step, check and
asset works on one table as usual. ``lakegate discover`` fills the table list from the database
(:func:`discover_tables`, :func:`write_tables`): Dagster definitions never connect to a source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from connectors import TablePart, get_connector
from pipelines._flow import connector_config
from pipelines.errors import PipelineSpecError
from pipelines.spec import PipelineSpec
from pipelines.validation import read_defs_file
from zones import LakegateConfig, load_config


def _parts(spec: PipelineSpec) -> list[TablePart]:
    connector = get_connector(spec.connector.type)
    return connector.split(spec.connector.config) if connector.split else []


def expand(spec: PipelineSpec) -> list[PipelineSpec]:
    """The pipelines ``spec`` stands for: itself, or one per table of its connector's table list.

    Each table's pipeline is named after its dataset, keeps the domain, pattern, transforms, checks and
    trigger, and takes the table's own primary key when it declares one.
    """
    parts = _parts(spec)
    if not parts:
        return [spec]
    declared = spec.model_dump()
    return [
        PipelineSpec.model_validate(
            {
                **declared,
                "name": part.dataset,
                "description": spec.description or f"Table {part.config.get('table')} of {spec.name}",
                "connector": {"type": spec.connector.type, "config": part.config},
                "primary_key": part.primary_key or spec.primary_key,
            }
        )
        for part in parts
    ]


def discover_tables(file: Path, config: LakegateConfig | None = None) -> list[dict[str, Any]]:
    """The table list of every table the source of ``file`` (a ``defs.yaml``) holds now.

    Raises:
        PipelineSpecError: the file does not parse, or its connector cannot list tables.
        connectors.ConnectorError: the source cannot be read (one line, no credentials).
    """
    spec, problems = read_defs_file(file)
    if spec is None:
        raise PipelineSpecError("; ".join(problems))
    connector = get_connector(spec.connector.type)
    if connector.discover is None:
        raise PipelineSpecError(f"{file}: connector '{connector.name}' cannot list the tables of its source")
    return connector.discover(connector_config(spec, config or load_config()))


def write_tables(file: Path, tables: list[dict[str, Any]]) -> None:
    """Set ``connector.config.tables`` of ``file`` to ``tables`` (replacing ``table``). Comments in the
    file are not kept."""
    document = yaml.safe_load(file.read_text())
    config = document["attributes"]["connector"].setdefault("config", {})
    config.pop("table", None)
    config["tables"] = tables
    file.write_text(yaml.safe_dump(document, sort_keys=False, width=110))
