"""The partitions a staged fit learns from, read once into the cluster's memory when asked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from megatron.errors import DataError
from megatron_dask.partitions import Partitions, partitions
from megatron_dask.plugin import is_dask


def fit_partitions(data: Any, pipeline: str, persist: bool) -> Partitions:
    """The partitions of ``data`` (a dask DataFrame, or a mapping of input name to dask arrays):
    one delayed batch per partition, in order; with ``persist``, ``data`` is first kept in the
    cluster's memory, so that each stage reads it from there instead of from its source."""
    where = f"Pipeline {pipeline!r}.fit()"
    if isinstance(data, Mapping) and not any(is_dask(value) for value in data.values()):
        raise DataError(
            f"{where} on dask takes a dask DataFrame or a mapping of input name to dask arrays; the "
            f"mapping holds no dask collection (inputs {sorted(map(str, data))}): fit it locally."
        )
    if persist:
        data = _persisted(data)
    return partitions(data, where)


def _persisted(data: Any) -> Any:
    import dask

    if isinstance(data, Mapping):
        names = [name for name, value in data.items() if is_dask(value)]
        kept = dask.persist(*(data[name] for name in names))
        return {**data, **dict(zip(names, kept))}
    return data.persist() if is_dask(data) else data
