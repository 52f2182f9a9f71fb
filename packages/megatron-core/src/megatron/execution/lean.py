"""The lean path of ``transform``: plain data on a compiled, fitted plan, read and answered
without what only other data needs.

Most calls that serve predictions pass a dict of numpy arrays, often of one row, to a pipeline
whose transform plan is compiled and whose layers are fitted. :func:`lean_transform`
recognises exactly that case and reads it with a few type checks: no search for another
library's data, no index, no DataFrame lookups. Anything else (another mapping, a value that is
not a numpy array, a missing input, an array outside its spec, inputs of unequal lengths, an
unfitted layer, a plan not compiled yet) gets None, and the caller takes the ordinary path,
which reads the same data to the same arrays and raises the same errors in the same order. The
lean path itself never raises before the plan runs. It builds the Outputs as
``Pipeline._outputs`` does for a whole transform without row filters or storage (and hands
the other cases to it); tests/core/test_lean_transform.py checks that both paths agree on any
data.

What it needs of the plan (the inputs' names and specs, the output names) is gathered once per
compiled plan into a :class:`LeanPlan`, kept beside the compiled plans (a pickled copy of the
pipeline drops both, and compiles its own); the layers' fitted state, the executor and the
storage are read on every call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.outputs import Outputs
from megatron.sparse import dense_outputs

if TYPE_CHECKING:
    from megatron.execution.executor import Executor
    from megatron.execution.plan import Plan, Plans
    from megatron.graph.node import Input
    from megatron.pipeline import Pipeline

TRANSFORM = "transform"
"""The key of a whole-graph transform plan among a pipeline's plans."""

_KEPT = "lean_plan"
"""The name a :class:`LeanPlan` is kept under in its :class:`Plans` (which does not pickle it)."""


class LeanPlan:
    """What the lean path reads of a compiled transform plan, gathered once."""

    __slots__ = ("executor", "inputs", "names", "plain", "plan")

    def __init__(self, pipeline: Pipeline, plan: Plan) -> None:
        self.plan = plan
        self.inputs = tuple((node.name, node.spec.shape, node.spec.dtype, node) for node in plan.inputs)
        self.names = pipeline._whole.names
        self.plain = not pipeline._whole.rows  # no row filter: no index to build
        self.executor: Executor = pipeline._executor


def lean_transform(
    pipeline: Pipeline, data: Any, index: Any, cache: bool, outputs: Any, store: bool
) -> Outputs | None:
    """What ``pipeline.transform(data, index, cache, outputs=outputs, store=store)`` returns,
    when the call is a plain one (no index, no cache, every output) on data the lean path
    reads; None when it is not, for the ordinary path to answer."""
    if type(data) is not dict or index is not None or cache or outputs is not None:
        return None
    lean = lean_plan(pipeline)
    if lean is None:
        return None
    plan = lean.plan
    for layer in plan.requires_fitted:
        if not layer.fitted:
            return None
    feeds = plain_feeds(lean, data)
    if feeds is None:
        return None
    if not lean.plain or (store and pipeline.storage is not None):  # an index to build, rows to store
        return pipeline._outputs(plan, pipeline._whole, feeds, None, 0, store=store)
    values = lean.executor.run(plan, feeds)
    for value in values:
        if type(value) is not np.ndarray:
            values = dense_outputs(pipeline.name, lean.names, values)
            break
    return Outputs(lean.names, values, None, pipeline._graph_feature_names)


def lean_plan(pipeline: Pipeline) -> LeanPlan | None:
    """The :class:`LeanPlan` of the pipeline's compiled transform plan, or None before it is
    compiled (the first ordinary transform compiles it)."""
    plans: Plans = pipeline._plans
    plan = plans.cached(TRANSFORM)
    if plan is None:
        return None
    kept = getattr(plans, "__dict__", {})
    lean = kept.get(_KEPT)
    if lean is None or lean.plan is not plan or lean.executor is not pipeline._executor:
        lean = LeanPlan(pipeline, plan)
        kept[_KEPT] = lean
    return lean


def plain_feeds(lean: LeanPlan, data: Any) -> list[np.ndarray] | None:
    """The arrays of the plan's inputs in ``data``, checked against their specs, when ``data``
    is a dict whose values are all numpy arrays (so no plugin claims any of it) holding every
    input, all of one length; None for anything else, including data the ordinary read refuses."""
    if type(data) is not dict:
        return None
    for value in data.values():
        if type(value) is not np.ndarray:
            return None
    feeds = []
    n = -1
    for name, shape, dtype, node in lean.inputs:
        value = data.get(name)
        if value is None:
            return None
        # Input.check's own test for an array it takes as it is, without the call
        if not (value.shape[1:] == shape and value.ndim and (dtype is None or value.dtype == dtype)):
            value = _checked(node, value)
            if value is None:
                return None
        if n != len(value):
            if n >= 0:  # inputs of different lengths: the ordinary read says which
                return None
            n = len(value)
        feeds.append(value)
    return feeds


def _checked(node: Input, value: np.ndarray) -> np.ndarray | None:
    """``value`` as ``node`` takes it (cast to its dtype), or None where it refuses it."""
    try:
        return node.check(value)
    except Exception:  # the ordinary read raises it again, in its own order
        return None


def lean_feeds(plans: Plans, data: Any) -> tuple[Plan, list[np.ndarray]] | None:
    """The compiled transform plan and the input arrays of ``data`` for it, when the lean path
    would take ``data``; None otherwise (for tests and tools that ask which path a call takes)."""
    plan = plans.cached(TRANSFORM)
    if plan is None or any(not layer.fitted for layer in plan.requires_fitted):
        return None
    lean = LeanPlan.__new__(LeanPlan)
    lean.inputs = tuple((node.name, node.spec.shape, node.spec.dtype, node) for node in plan.inputs)
    feeds = plain_feeds(lean, data)
    return None if feeds is None else (plan, feeds)
