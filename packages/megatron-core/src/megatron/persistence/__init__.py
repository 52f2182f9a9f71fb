"""Saving pipelines as data and reading them back safely.

Persistence builds no pipeline: it saves from a pipeline's public graph and reads a file into
a :class:`SavedPipeline`, from which ``megatron.load_pipeline`` builds the pipeline.
"""

from megatron.persistence.archive import EXTENSION, FORMAT
from megatron.persistence.auditing import AuditReport, audit, audit_report
from megatron.persistence.filenames import file_name
from megatron.persistence.limits import Limits
from megatron.persistence.loading import SavedPipeline, read_pipeline
from megatron.persistence.options import SerializerOptions
from megatron.persistence.saving import save_pipeline
from megatron.persistence.serializer import Serializer

__all__ = [
    "EXTENSION",
    "FORMAT",
    "AuditReport",
    "Limits",
    "SavedPipeline",
    "Serializer",
    "SerializerOptions",
    "audit",
    "audit_report",
    "file_name",
    "read_pipeline",
    "save_pipeline",
]
