"""``transform`` and ``write`` on a dask collection: one task per partition, each running the
pipeline's own ``transform`` on its rows (and storing them, with storage)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from megatron.errors import StorageError
from megatron.nodes import Node
from megatron_dask.partitions import Partitions, no_index, partitions
from megatron_dask.shipping import Parcel, opened, shipped

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline


def transform(
    pipeline: Pipeline, data: Any, *, cache: bool = False, outputs: Any = None, store: bool = True
) -> Any:
    """The outputs of ``pipeline`` on ``data`` as a lazy dask DataFrame: one column per output
    element (as :meth:`~megatron.outputs.Outputs.to_frame` names them), indexed by the
    observation index (a dask DataFrame's index, with its name; positions for dask arrays),
    one partition per partition of ``data``.

    Its partitions equal a local ``pipeline.transform(partition).to_frame()`` of the pipeline as
    it is now (later changes to it do not reach the tasks). With storage,
    each partition's task stores its rows when computed, under the client's fingerprint, so a
    later ``pipeline.transform(df, cache=True)`` here reads them; ``cache=True`` reads stored
    rows on the workers and computes only the others. Computing the result twice stores the
    rows twice (an upsert: one row per key). ``outputs`` and ``store`` are those of
    :meth:`~megatron.pipeline.Pipeline.transform` (nodes are named by their names).
    """
    where = f"Pipeline {pipeline.name!r}.transform()"
    if cache and pipeline.storage is None:
        raise StorageError(f"{where}: cache=True needs a storage.")
    parts = partitions(data, where)
    asked = _named(outputs)
    pipeline.plan_of("transform", outputs=asked, store=store)  # bad names, partial writes: refused here
    meta = _meta(pipeline, parts, asked)
    ship = shipped(pipeline if store else _unstored(pipeline), where)
    if parts.frame is not None:
        return parts.frame.map_partitions(
            transform_partition, ship, cache, asked, store, meta=meta, align_dataframes=False
        )
    import dask.dataframe as dd
    from dask import delayed

    task = delayed(transform_partition, pure=True)
    frames = [task(part, ship, cache, asked, store) for part in parts.parts]
    return dd.from_delayed(frames, meta=meta, divisions=parts.divisions, verify_meta=False)


def write(pipeline: Pipeline, data: Any) -> int:
    """Transform every partition of ``data`` and store its rows in the pipeline's storage, now
    (on the caller's dask client, or dask's default scheduler); the number of rows written (one
    write per partition: a key in two partitions is written, and counted, twice)."""
    where = f"Pipeline {pipeline.name!r}: megatron_dask.write()"
    if pipeline.storage is None:
        raise StorageError(f"{where} stores outputs, and the pipeline has no storage.")
    parts = partitions(data, where)
    ship = shipped(pipeline, where)
    _meta(pipeline, parts)  # refuses an unfitted pipeline or unreadable columns before any task
    import dask
    from dask import delayed

    task = delayed(write_partition, pure=True)
    counts = dask.compute(*(task(part, ship) for part in parts.parts))
    return int(sum(counts))


def transform_from_hook(pipeline: Pipeline, data: Any, options: Mapping[str, Any]) -> Any:
    """``pipeline.transform(data, index=..., cache=...)`` on a dask collection."""
    no_index(options.get("index"), f"Pipeline {pipeline.name!r}.transform()")
    return transform(
        pipeline,
        data,
        cache=bool(options.get("cache", False)),
        outputs=options.get("outputs"),
        store=bool(options.get("store", True)),
    )


def transform_partition(
    batch: Any, packed: Parcel, cache: bool, outputs: list[str] | None = None, store: bool = True
) -> Any:
    """One partition's outputs as a pandas DataFrame (run by a dask task)."""
    computed = opened(packed).transform(batch, cache=cache, outputs=outputs, store=store)
    return _framed(computed.to_frame(), batch)


def write_partition(batch: Any, packed: Parcel) -> int:
    """Store one partition's outputs; its row count (run by a dask task)."""
    return len(opened(packed).transform(batch).index)


def _named(outputs: Any) -> list[str] | None:
    """``outputs=`` by name: a node's copy on a worker is another object."""
    if outputs is None:
        return None
    items = [outputs] if isinstance(outputs, (str, Node)) else list(outputs)
    return [item.name if isinstance(item, Node) else item for item in items]


def _meta(pipeline: Pipeline, parts: Partitions, outputs: list[str] | None = None) -> Any:
    """The outputs of no rows, as dask's ``meta``: a transform of the empty batch (not stored),
    with the index type the partitions' frames get."""
    import pandas as pd
    from dask.dataframe.utils import meta_nonempty

    empty = _unstored(pipeline).transform(parts.empty, outputs=outputs)
    meta = _framed(empty.to_frame(), parts.empty)
    if parts.frame is not None:  # a partition's index goes through numpy as the local transform's
        sample = meta_nonempty(parts.frame._meta.index)
        meta.index = pd.Index(sample.to_numpy(), name=sample.name)[:0]
    return meta


def _unstored(pipeline: Pipeline) -> Pipeline:
    """A copy of ``pipeline`` that shares its graph and plans and stores nothing."""
    unstored = copy.copy(pipeline)
    unstored.storage = None
    return unstored


def _framed(frame: Any, batch: Any) -> Any:
    name = getattr(getattr(batch, "index", None), "name", None)  # a pandas index's name
    if name is not None:
        frame.index.name = name
    return frame
