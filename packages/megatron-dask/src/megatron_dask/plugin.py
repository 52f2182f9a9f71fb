"""megatron-dask's plugin: ``Pipeline.fit / transform / evaluate`` on a dask collection.

The core asks ``run_operation`` only for data it does not read itself. This plugin claims a
dask DataFrame, or a mapping of input name to dask arrays, by the module name of their types,
and imports dask for nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from megatron.plugins import hookimpl

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline


def is_dask(obj: Any) -> bool:
    """Whether ``obj`` is an object of dask's (its type's module is one of dask's)."""
    return type(obj).__module__.startswith("dask.")


def claims(data: Any) -> bool:
    """Whether ``data`` is a dask collection, or a mapping holding one."""
    if isinstance(data, Mapping):
        return any(is_dask(value) for value in data.values())
    return is_dask(data)


@hookimpl
def run_operation(pipeline: Pipeline, operation: str, data: Any, options: Mapping[str, Any]) -> Any:
    if not claims(data):
        return None
    if operation == "transform":
        from megatron_dask.transforming import transform_from_hook

        return transform_from_hook(pipeline, data, options)
    if operation == "evaluate":
        from megatron_dask.evaluation import evaluate

        return evaluate(pipeline, data, metrics=options.get("metrics"))
    if operation == "fit":
        from megatron_dask.fitting import fit

        return fit(pipeline, data, progress=options.get("progress"))
    return None
