"""Data the core does not read itself (a dask DataFrame, a mapping of dask arrays) goes to the
plugin that claims it through ``run_operation``; with no claim, an error says what to install."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from megatron.errors import DataError
from megatron.io.feeds import columns_of, not_a_mapping

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline

HERE: Any = object()
"""What :func:`run_elsewhere` answers for data the core reads itself after all."""


def run_elsewhere(pipeline: Pipeline, operation: str, data: Any, part: Any, options: dict[str, Any]) -> Any:
    """``operation`` on data the core does not read itself (``part`` of it), run by the
    plugin that claims it (``run_operation``); an error saying what to install when none
    does; ``HERE`` for data no plugin runs that the core can read after all (a mapping holding
    another library's arrays, a mapping-like or DataFrame-like object), which the core then reads."""
    from megatron.plugins import get_plugin_manager
    from megatron.plugins.hints import missing_adapter

    manager = get_plugin_manager()
    result = manager.run_operation(pipeline, operation, data, options)
    if result is not None:
        return result
    kind = f"{type(part).__module__}.{type(part).__qualname__}"
    feature = f"Pipeline {pipeline.name!r}.{operation}() on a {kind}"
    missing = missing_adapter("run_operation", part, feature, manager.distributions)
    if missing is not None:
        raise missing
    if part is data and columns_of(data)[0] is None:
        inputs = pipeline.plan_of(operation).inputs or pipeline.inputs
        raise DataError(not_a_mapping(pipeline.name, operation, data, inputs))
    # a mapping holding arrays of a library no plugin runs, or another library's frame no plugin
    # runs: read as numpy and pandas read them
    return HERE
