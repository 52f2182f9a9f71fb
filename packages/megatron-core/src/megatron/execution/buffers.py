"""Reusing the buffers a plan frees: which transform steps may write their result into their
input's own array, decided when the plan is compiled.

A step runs in place when its layer has ``transform_into(out, X)`` (an element-wise layer: it
computes ``transform(X)`` into ``out``, an array of ``X``'s shape, where the result has
``out``'s dtype, and otherwise returns a new array as ``transform`` would) and its one input
is an array only the plan holds, which dies at that step:

- it was written by an earlier step whose layer declares ``fresh_output = True`` (its
  ``transform`` returns a new array that neither aliases its inputs nor is kept anywhere) or
  by another step that ran in place;
- it is not one of the plan's inputs (the caller's arrays are never written) nor one of its
  results (arrays handed back to the user), and exactly one step reads it: this one.

A layer whose output may be a view of its input (``Reshape``, ``Slice``) or an array it keeps
declares no ``fresh_output``, so nothing downstream of it writes into that array.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from megatron.execution.plan import Step


def writes_in_place(layer: object) -> bool:
    """Whether ``layer`` can compute its transform into a given array."""
    return callable(getattr(type(layer), "transform_into", None))


def mark_in_place(steps: Sequence[Step], inputs: Sequence[int], results: Sequence[int]) -> list[Step]:
    """``steps`` (their ``frees`` set), with ``in_place`` set on each step that may write its
    result into its dying input (see the module docstring)."""
    readers = Counter(s for step in steps for s in step.inputs)
    protected = set(inputs) | set(results)
    owned: set[int] = set()
    marked = []
    for step in steps:
        layer = step.call.layer
        single = step.mode == "transform" and len(step.inputs) == 1 and len(step.outputs) == 1
        source = step.inputs[0] if single else -1
        in_place = (
            single
            and source in owned
            and source in step.frees
            and readers[source] == 1
            and writes_in_place(layer)
        )
        fresh = step.mode in ("transform", "fit_transform") and getattr(layer, "fresh_output", False) is True
        if in_place or (fresh and len(step.outputs) == 1):
            owned.update(s for s in step.outputs if s not in protected)
        marked.append(attrs.evolve(step, in_place=True) if in_place else step)
    return marked
