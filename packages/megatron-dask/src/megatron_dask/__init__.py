"""Data-parallel execution of Megatron pipelines on Dask.

``pipeline.fit / transform / evaluate`` take a dask DataFrame (or a mapping of input name to
dask arrays) once this package is installed; the functions here do the same with options::

    import megatron_dask as md

    md.fit(pipeline, ddf, split_every=8)      # a staged fit on the cluster; the pipeline
    out = md.transform(pipeline, ddf)          # a lazy dask DataFrame, one column per output element
    md.evaluate(pipeline, ddf)                 # {metric: value}, metric states merged
    md.write(pipeline, ddf)                    # every row stored (with storage); the row count

Tasks run on the caller's dask ``Client`` when there is one, else on dask's default scheduler;
nothing here starts a cluster. Importing this package imports no dask: each function does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from megatron_dask.evaluation import GatheredRowsWarning, evaluate
    from megatron_dask.fitting import fit
    from megatron_dask.shipping import SerialWritesWarning
    from megatron_dask.transforming import transform, write

__all__ = ["GatheredRowsWarning", "SerialWritesWarning", "evaluate", "fit", "transform", "write"]

_HOMES = {
    "GatheredRowsWarning": "megatron_dask.evaluation",
    "SerialWritesWarning": "megatron_dask.shipping",
    "evaluate": "megatron_dask.evaluation",
    "fit": "megatron_dask.fitting",
    "transform": "megatron_dask.transforming",
    "write": "megatron_dask.transforming",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'megatron_dask' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
