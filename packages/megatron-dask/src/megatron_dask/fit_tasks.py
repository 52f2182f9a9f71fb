"""The tasks of a staged fit that run on the workers: one partition's stage inputs, what fresh
copies of the merging layers learn from them, and merges of what copies learned.

None of them changes the pipeline it is given: dask hands every task on a worker the same
deserialised pipeline, so a layer learns on a copy and returns its state."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.errors import layer_failure

if TYPE_CHECKING:
    from megatron.layers.base import StatefulLayer
    from megatron.pipeline import Pipeline

Arguments = tuple[np.ndarray, ...]
"""One layer's arguments for ``partial_fit`` from one partition."""

Learned = tuple[int, "dict[str, Any] | None"]
"""What one layer learned from some partitions: how many rows, and its state (None for no rows)."""


def stage_inputs(pipeline: Pipeline, k: int, batch: Any) -> list[Arguments]:
    """What each layer of stage ``k`` learns from in one partition (the core's stage API)."""
    return pipeline.stage_inputs(k, batch)


def picked(inputs: Sequence[Arguments], positions: Sequence[int]) -> list[Arguments]:
    """The arguments of the layers at ``positions`` of the stage only (what a fold pulls)."""
    return [inputs[i] for i in positions]


def together(*values: Any) -> tuple[Any, ...]:
    """Several results of one partition, fetched at once."""
    return values


def rows_of(arguments: Arguments) -> int:
    """How many observations a layer's arguments hold."""
    return len(arguments[0]) if arguments else 0


def learned_by_copies(
    pipeline: Pipeline, k: int, positions: Sequence[int], inputs: Sequence[Arguments]
) -> list[Learned]:
    """For each layer at ``positions`` of stage ``k``: a fresh copy of it, reset, fitted with
    ``partial_fit`` on its arguments in ``inputs``, and its state (nothing for no rows)."""
    stage = pipeline.stages()[k]
    return [_learned_by_copy(pipeline, stage[i], inputs[i]) for i in positions]


def _learned_by_copy(pipeline: Pipeline, layer: StatefulLayer, arguments: Arguments) -> Learned:
    rows = rows_of(arguments)
    if rows == 0:
        return 0, None
    fresh = copy.deepcopy(layer)
    fresh.reset()
    try:
        fresh.partial_fit(*arguments)
    except Exception as exc:
        raise layer_failure(pipeline.graph.describe(layer), "partial_fit", arguments, exc) from exc
    return rows, fresh.get_state()


def merged_groups(
    pipeline: Pipeline, k: int, positions: Sequence[int], parts: Sequence[Sequence[Learned]]
) -> list[Learned]:
    """``parts`` (each what :func:`learned_by_copies` or this function gave for consecutive
    partitions, in partition order) merged into one, layer by layer."""
    stage = pipeline.stages()[k]
    return [merged(pipeline, stage[i], [part[j] for part in parts]) for j, i in enumerate(positions)]


def merged(pipeline: Pipeline, layer: StatefulLayer, parts: Sequence[Learned]) -> Learned:
    """What ``layer`` learned from all of ``parts``, in order: their states merged with the
    layer's ``merge_states``, parts that saw no rows left out."""
    rows, state = 0, None
    for n, learned in parts:
        if n == 0 or learned is None:
            continue
        if state is not None:
            try:
                learned = layer.merge_states(state, learned)
            except Exception as exc:
                raise layer_failure(pipeline.graph.describe(layer), "merge_states", [], exc) from exc
        rows, state = rows + n, learned
    return rows, state
