"""The lean path of ``transform``: plain data on a compiled, fitted plan, read without what only
other data needs.

Most calls that serve predictions pass a dict of numpy arrays, often of one row, to a pipeline
whose transform plan is compiled and whose layers are fitted. :func:`lean_feeds` recognises
exactly that case and reads it with a few type checks: no search for another library's data,
no index, no DataFrame lookups. Anything else (another mapping, a value that is not a numpy
array, a missing input, an array outside its spec, inputs of unequal lengths, an unfitted
layer, a plan not compiled yet) gets None, and the caller takes the ordinary path, which
reads the same data to the same arrays and raises the same errors in the same order. The
lean path itself never raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from megatron.execution.plan import Plan, Plans
    from megatron.graph.node import Input

TRANSFORM = "transform"
"""The key of a whole-graph transform plan among a pipeline's plans."""


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
    for node in inputs:
        value = data.get(node.name)
        if value is None:
            return None
        spec = node.spec
        # Input.check's own test for an array it takes as it is, without the call
        if value.shape[1:] == spec.shape and value.ndim and (spec.dtype is None or value.dtype == spec.dtype):
            feeds.append(value)
            continue
        try:
            feeds.append(node.check(value))
        except Exception:  # the ordinary read raises it again, in its own order
            return None
    if len(feeds) > 1:
        n = len(feeds[0])
        for feed in feeds:
            if len(feed) != n:
                return None
    return feeds
