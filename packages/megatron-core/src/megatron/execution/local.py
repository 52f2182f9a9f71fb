"""The local executor: runs a plan's steps in order, in the calling thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from megatron.errors import LayerError, MegatronError
from megatron.execution.plan import Mode, Plan
from megatron.nodes import Apply


class LocalExecutor:
    """Runs each step in turn; values live in a list local to the call (thread-safe)."""

    def run(self, plan: Plan, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        values: list[Any] = [None] * plan.n_slots
        for slot, array in zip(plan.input_slots, feeds):
            values[slot] = array
        for step in plan.steps:
            function, inputs, outputs, frees = step.function, step.inputs, step.outputs, step.frees
            try:
                if len(inputs) == 1:  # the common case, without building an argument list
                    result = function(values[inputs[0]])
                else:
                    result = function(*[values[i] for i in inputs])
            except Exception as exc:
                raise layer_failure(step.op, step.mode, [values[i] for i in inputs], exc) from exc
            if len(outputs) == 1:
                values[outputs[0]] = result if type(result) is np.ndarray else _as_array(step.op, result)
            elif outputs:
                for slot, value in zip(outputs, _split_outputs(step.op, result)):
                    values[slot] = value
            for slot in frees:
                values[slot] = None
        return [values[i] for i in plan.result_slots]


def run_layer(op: Apply, mode: Mode, args: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Run one layer call outside a plan (eager mode), with the same error reporting."""
    layer = op.layer
    try:
        if mode == "transform":
            result = layer.transform(*args)
        else:
            getattr(layer, mode)(*args)
            layer.fitted = True
            return ()
    except Exception as exc:
        raise layer_failure(op, mode, args, exc) from exc
    if len(op.outputs) == 1:
        return (result if type(result) is np.ndarray else _as_array(op, result),)
    return _split_outputs(op, result)


def layer_failure(op: Apply, mode: str, args: Sequence[Any], exc: Exception) -> MegatronError:
    """The megatron error for ``exc`` raised inside a layer: names the node, layer and shapes."""
    shapes = ", ".join(str(getattr(a, "shape", type(a).__name__)) for a in args)
    where = f"{op.describe()} failed in {mode}() on inputs of shapes [{shapes}]"
    if isinstance(exc, MegatronError):
        try:
            return type(exc)(f"{where}: {exc}")
        except TypeError:  # an error class with its own constructor
            pass
    return LayerError(f"{where}: {type(exc).__name__}: {exc}")


def _as_array(op: Apply, result: Any) -> np.ndarray:
    if result is None:
        raise LayerError(f"{op.describe()} returned None from transform(); expected an array.")
    return np.asarray(result)


def _split_outputs(op: Apply, result: Any) -> tuple[np.ndarray, ...]:
    n = len(op.outputs)
    if not isinstance(result, (tuple, list)) or len(result) != n:
        raise LayerError(
            f"{op.describe()} declares {n} outputs; transform() returned "
            f"{type(result).__name__}{f' of length {len(result)}' if isinstance(result, (tuple, list)) else ''}."
        )
    return tuple(r if type(r) is np.ndarray else _as_array(op, r) for r in result)
