"""Saving pipelines as data and loading them safely."""

from megatron.persistence.archive import EXTENSION, FORMAT
from megatron.persistence.filenames import file_name
from megatron.persistence.limits import Limits
from megatron.persistence.pipeline_file import audit, audit_report, load_pipeline, save_pipeline

__all__ = [
    "EXTENSION",
    "FORMAT",
    "Limits",
    "audit",
    "audit_report",
    "file_name",
    "load_pipeline",
    "save_pipeline",
]
