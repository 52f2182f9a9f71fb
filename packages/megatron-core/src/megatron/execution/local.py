"""The local executor: runs a plan's steps in order, in the calling thread.

:func:`run_step` is the body of one step, which the thread executor shares; the local loop
inlines it for the common case (one input, one output, a layer's own ``transform`` or
``transform_into``), whose per-step cost every one-row transform pays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from megatron.errors import layer_failure
from megatron.execution.folding import LOCATED
from megatron.execution.plan import Plan, Step, operations


class LocalExecutor:
    """Runs each step in turn; values live in a list local to the call (thread-safe)."""

    def run(self, plan: Plan, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        values: list[Any] = [None] * plan.n_slots
        for slot, array in zip(plan.input_slots, feeds):
            values[slot] = array
        ops = plan.operations if plan.operations or not plan.steps else operations(plan.steps)
        for code, function, source, target, frees, step in ops:
            if code == 2:
                run_step(step, values)
            else:  # the hot path: one input, one output; no local keeps a value alive past its frees
                try:
                    if code == 0:
                        values[target] = function(values[source])
                    else:
                        values[target] = function(values[source], values[source])
                except Exception as exc:
                    if getattr(exc, LOCATED, False):
                        raise
                    raise layer_failure(step.call.describe(), "transform", [values[source]], exc) from exc
                if type(values[target]) is not np.ndarray:
                    values[target] = step.call.arrays(values[target])[0]
            for slot in frees:
                values[slot] = None
        return [values[i] for i in plan.result_slots]


def run_step(step: Step, values: list[Any]) -> None:
    """Run one step on ``values`` and put its results in its output slots: a fit through
    ``Call.run``, a transform through the layer's ``transform`` (``transform_into`` its dying
    input for an in-place step). Errors name the node, the layer and the input shapes."""
    call = step.call
    args = [values[i] for i in step.inputs]
    if step.mode != "transform":
        results = call.run(step.mode, args, step.groups)
    else:
        try:
            if step.in_place:
                result = call.layer.transform_into(args[0], args[0])
            else:
                result = call.layer.transform(*args)
        except Exception as exc:
            if getattr(exc, LOCATED, False):
                raise
            raise layer_failure(call.describe(), "transform", args, exc) from exc
        single = len(step.outputs) == 1 and type(result) is np.ndarray
        results = (result,) if single else call.arrays(result)
    for slot, value in zip(step.outputs, results):
        values[slot] = value
