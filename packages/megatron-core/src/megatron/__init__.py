"""Megatron: machine-learning data pipelines built like Keras functional models.

Declare :class:`~megatron.nodes.Input` nodes, call layers on them, and wrap the graph in a
:class:`Pipeline` that fits, transforms, evaluates and stores its outputs. Layers, metrics,
sources and storage backends come from plugins, built-ins included.
"""

import logging as _logging
from collections.abc import Mapping as _Mapping
from os import PathLike as _PathLike
from pathlib import Path as _Path
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from megatron import errors, io, layers, metrics, nodes
from megatron.errors import MegatronError
from megatron.nodes import Input, Node
from megatron.outputs import Outputs
from megatron.pipeline import Pipeline

if _TYPE_CHECKING:
    from megatron.persistence.limits import Limits

_logging.getLogger("megatron").addHandler(_logging.NullHandler())  # silent unless the application logs


def load_pipeline(
    path: str | _PathLike[str],
    storage: _Any = None,
    custom_objects: _Mapping[str, _Any] | None = None,
    trusted: list[str] | None = None,
    limits: "Limits | _Mapping[str, int] | None" = None,
    serializer_options: "_Mapping[str, _Mapping[str, _Any]] | None" = None,
    executor: _Any = None,
) -> Pipeline:
    """Load a pipeline saved with :meth:`Pipeline.save`, fitted as it was: read safely (see
    :func:`megatron.persistence.read_pipeline`), then built with ``storage`` reattached and
    run by ``executor`` (``"threads"``, say; the file holds neither).

    ``serializer_options`` gives plugin serializers their options by format name
    (``{"skops": {"trusted": [...]}}``); ``trusted=`` and ``custom_objects=`` fill those of
    skops and Keras for short (``custom_objects`` also gives your own classes and functions)."""
    from megatron.persistence import read_pipeline

    saved = read_pipeline(
        path,
        custom_objects=custom_objects,
        trusted=trusted,
        limits=limits,
        serializer_options=serializer_options,
    )
    return Pipeline.from_saved(saved, storage=storage, executor=executor)


def plot(
    pipeline: Pipeline,
    path: str | _PathLike[str] | None = None,
    rankdir: str = "TB",
    show_shapes: bool = True,
) -> _Any:
    """Draw a pipeline; see :func:`megatron.viz.plot`."""
    from megatron.viz import plot as draw

    return draw(pipeline, None if path is None else _Path(path), rankdir, show_shapes)


def audit(path: str | _PathLike[str], limits: "Limits | _Mapping[str, int] | None" = None) -> list[str]:
    """What loading a pipeline file would need; see :func:`megatron.persistence.audit`."""
    from megatron.persistence import audit as run

    return run(path, limits=limits)


__all__ = [
    "Input",
    "MegatronError",
    "Node",
    "Outputs",
    "Pipeline",
    "__version__",
    "audit",
    "errors",
    "io",
    "layers",
    "load_pipeline",
    "metrics",
    "nodes",
    "plot",
]


def __dir__() -> list[str]:
    """The public API only (``dir(megatron)`` and tab completion)."""
    return sorted(__all__)


def __getattr__(name: str) -> _Any:
    if name == "__version__":  # read from the installed metadata on demand, not at import
        from importlib.metadata import version

        return version("megatron-core")
    if name == "persistence":  # megatron.persistence.audit_report(...) works after `import megatron`
        import importlib

        return importlib.import_module("megatron.persistence")
    raise AttributeError(f"module 'megatron' has no attribute {name!r}")
