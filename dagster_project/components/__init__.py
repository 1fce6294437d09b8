"""Dagster components of lakegate."""

from dagster_project.components.ingestion_pipeline import IngestionPipeline

__all__ = ["IngestionPipeline"]
