"""``evaluate`` on a dask collection: each partition's metric states, merged in a tree with
each metric's ``merge``; the results on the client."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from megatron.metrics import Metric, MetricNode
from megatron_dask.partitions import partitions
from megatron_dask.reduction import check_split_every, tree_reduce
from megatron_dask.shipping import Parcel, opened, parcel

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline


class GatheredRowsWarning(UserWarning):
    """A metric that collects every row (``Metric(fn)``) gathers them all on one worker."""


def evaluate(
    pipeline: Pipeline,
    data: Any,
    *,
    split_every: int = 8,
    metrics: str | MetricNode | Sequence[str | MetricNode] | None = None,
) -> dict[str, float]:
    """Every metric of ``pipeline`` (or those named in ``metrics``) on ``data``, by metric name,
    as ``pipeline.evaluate`` of the computed data gives (states merged, not averaged);
    ``split_every`` states are merged per task. Runs now, on the caller's dask client or dask's
    default scheduler."""
    where = f"Pipeline {pipeline.name!r}.evaluate()"
    split_every = check_split_every(split_every, where)
    parts = partitions(data, where)
    asked = (
        None if metrics is None else [metrics] if isinstance(metrics, (str, MetricNode)) else list(metrics)
    )
    names = None if asked is None else [m.name if isinstance(m, MetricNode) else m for m in asked]
    pipeline.feeds(parts.empty, "evaluate", metrics=names)  # what evaluate refuses: refused here
    chosen = [m for m in pipeline.metrics if names is None or m.name in names]
    if names is not None:
        chosen.sort(key=lambda m: names.index(m.name))
    gathering = [m.name for m in chosen if type(m.metric).initial_state is Metric.initial_state]
    if gathering:
        warnings.warn(
            f"{where}: metrics {gathering} compute a function of all the rows at once (Metric(fn)), "
            "so every row of their inputs is gathered on one worker and then here.",
            GatheredRowsWarning,
            stacklevel=2,
        )
    import dask
    from dask import delayed

    ship = parcel(pipeline)
    states = [delayed(partition_states, pure=True)(part, ship, names) for part in parts.parts]
    (merged,) = dask.compute(tree_reduce(states, merged_states, ship, names, split_every=split_every))
    return {m.name: m.metric.result(state) for m, state in zip(chosen, merged)}


def partition_states(batch: Any, packed: Parcel, names: list[str] | None = None) -> list[Any]:
    """One partition's metric states (run by a dask task)."""
    return opened(packed).metric_states(batch, names)


def merged_states(packed: Parcel, names: list[str] | None, group: Sequence[list[Any]]) -> list[Any]:
    """The metric states of consecutive partitions merged, in order (run by a dask task)."""
    by_name = {m.name: m for m in opened(packed).metrics}
    metrics = [by_name[name] for name in names or by_name]
    merged = list(group[0])
    for states in group[1:]:
        merged = [m.metric.merge(a, b) for m, a, b in zip(metrics, merged, states)]
    return merged
