"""Saving pipelines as data and loading them safely."""

from megatron.persistence.archive import EXTENSION, FORMAT
from megatron.persistence.pipeline_file import audit, file_name, load_pipeline, save_pipeline

__all__ = ["EXTENSION", "FORMAT", "audit", "file_name", "load_pipeline", "save_pipeline"]
