"""The local executor: runs a plan's steps in order, in the calling thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from megatron.errors import layer_failure
from megatron.execution.plan import Plan


class LocalExecutor:
    """Runs each step in turn; values live in a list local to the call (thread-safe)."""

    def run(self, plan: Plan, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        values: list[Any] = [None] * plan.n_slots
        for slot, array in zip(plan.input_slots, feeds):
            values[slot] = array
        for step in plan.steps:
            call, inputs, outputs = step.call, step.inputs, step.outputs
            if step.mode != "transform":
                results = call.run(step.mode, [values[i] for i in inputs], step.groups)
            else:  # the hot path: the layer's own transform, without building more than needed
                try:
                    if len(inputs) == 1:
                        result = call.layer.transform(values[inputs[0]])
                    else:
                        result = call.layer.transform(*[values[i] for i in inputs])
                except Exception as exc:
                    raise layer_failure(
                        call.describe(), "transform", [values[i] for i in inputs], exc
                    ) from exc
                if len(outputs) == 1 and type(result) is np.ndarray:
                    values[outputs[0]] = result
                    for slot in step.frees:
                        values[slot] = None
                    continue
                results = call.arrays(result)
            for slot, value in zip(outputs, results):
                values[slot] = value
            for slot in step.frees:
                values[slot] = None
        return [values[i] for i in plan.result_slots]
