"""The lean path of ``transform``: plain data on a compiled, fitted plan, read and answered
without what only other data needs.

Most calls that serve predictions pass a dict of numpy arrays, often of one row, to a pipeline
whose transform plan is compiled and whose layers are fitted. :func:`lean_feeds` recognises
exactly that case and reads it with a few type checks: no search for another library's data,
no index, no DataFrame lookups. Anything else (another mapping, a value that is not a numpy
array, a missing input, an array outside its spec, inputs of unequal lengths, an unfitted
layer, a plan not compiled yet) gets None, and the caller takes the ordinary path, which
reads the same data to the same arrays and raises the same errors in the same order. The
lean path itself never raises before the plan runs. :func:`lean_transform` then builds the
Outputs as ``Pipeline._outputs`` does for a whole transform without row filters or storage
(and hands the other cases to it); tests/core/test_lean_transform.py checks that both paths
agree on any data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.outputs import Outputs
from megatron.sparse import dense_outputs

if TYPE_CHECKING:
    from megatron.execution.plan import Plan, Plans
    from megatron.graph.node import Input
    from megatron.pipeline import Pipeline

TRANSFORM = "transform"
"""The key of a whole-graph transform plan among a pipeline's plans."""


def lean_transform(
    pipeline: Pipeline, data: Any, index: Any, cache: bool, outputs: Any, store: bool
) -> Outputs | None:
    """What ``pipeline.transform(data, index, cache, outputs=outputs, store=store)`` returns,
    when the call is a plain one (no index, no cache, every output) on data :func:`lean_feeds`
    reads; None when it is not, for the ordinary path to answer."""
    if type(data) is not dict or index is not None or cache or outputs is not None:
        return None
    lean = lean_feeds(pipeline._plans, data)
    if lean is None:
        return None
    whole = pipeline._whole
    if whole.rows or (store and pipeline.storage is not None):  # an index to build, rows to store
        return pipeline._outputs(lean[0], whole, lean[1], None, 0, store=store)
    values = pipeline._executor.run(*lean)
    for value in values:
        if type(value) is not np.ndarray:
            values = dense_outputs(pipeline.name, whole.names, values)
            break
    return Outputs(whole.names, values, None, pipeline._graph_feature_names)


def lean_feeds(plans: Plans, data: Any) -> tuple[Plan, list[np.ndarray]] | None:
    """The compiled transform plan and the input arrays of ``data`` for it, when ``data`` is a
    plain dict of numpy arrays that the plan's inputs take and every layer the plan needs
    fitted is fitted; None otherwise (the ordinary path then reads ``data`` and raises)."""
    plan = plans.cached(TRANSFORM)
    if plan is None:
        return None
    for layer in plan.requires_fitted:
        if not layer.fitted:
            return None
    feeds = plain_feeds(plan.inputs, data)
    return None if feeds is None else (plan, feeds)


def plain_feeds(inputs: Sequence[Input], data: Any) -> list[np.ndarray] | None:
    """The arrays of ``inputs`` in ``data``, checked against their specs, when ``data`` is a
    dict whose values are all numpy arrays (so no plugin claims any of it) holding every input,
    all of one length; None for anything else, including data that the ordinary read refuses."""
    if type(data) is not dict:
        return None
    for value in data.values():
        if type(value) is not np.ndarray:
            return None
    feeds = []
    n = -1
    for node in inputs:
        value = data.get(node.name)
        if value is None:
            return None
        spec = node.spec
        # Input.check's own test for an array it takes as it is, without the call
        if not (
            value.shape[1:] == spec.shape and value.ndim and (spec.dtype is None or value.dtype == spec.dtype)
        ):
            try:
                value = node.check(value)
            except Exception:  # the ordinary read raises it again, in its own order
                return None
        if n != len(value):
            if n >= 0:  # inputs of different lengths: the ordinary read says which
                return None
            n = len(value)
        feeds.append(value)
    return feeds
