"""The ``IngestionPipeline`` component type: what ``type:`` in a ``defs.yaml`` names.

``dg check yaml`` validates a ``defs.yaml`` against it. ``definitions.py`` loads the pipelines itself,
one ``defs.yaml`` at a time (see :mod:`dagster_project.pipeline_defs`), so that a broken one never hides
the others; ``build_defs`` builds the same definitions when Dagster's own loader is used.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.pipeline_defs import build_pipeline
from pipelines import PipelineSpec, PipelineSpecError, check_spec, expand


class IngestionPipeline(dg.Component, dg.Resolvable, PipelineSpec):
    """Ingest one source into the lakegate zones with the EL, ELT or ETL pattern."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        problems = check_spec(self)
        if problems:
            where = context.path / "defs.yaml"
            raise PipelineSpecError(" | ".join(f"{where}: attributes.{p}" for p in problems))
        spec = PipelineSpec.model_validate(self.model_dump())
        return dg.Definitions.merge(*(build_pipeline(one) for one in expand(spec)))
