"""Planning: which layer calls an operation needs, in which order, and when values die.

A :class:`Plan` is plain data: a flat list of :class:`Step` records over numbered value
slots. Each step names a layer call, what to do with it (transform, fit, update, or fit and
transform at once), the slots it reads and writes, and the slots that die after it, so
intermediates are freed as soon as nothing needs them. Executors interpret the steps; a step
holds no code of its own, so an executor may run steps in threads or other processes.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from megatron.errors import GraphError
from megatron.execution.buffers import mark_in_place
from megatron.execution.folding import FoldedChain, fold_chains, folded_chains
from megatron.graph.call import Call, Mode
from megatron.graph.node import Input, Node
from megatron.graph.topology import follows_targets, needed_inputs, upstream_calls

if TYPE_CHECKING:
    from megatron.graph.topology import Graph
    from megatron.layers.base import StatefulLayer


@attrs.frozen
class Step:
    """Run ``call`` in ``mode`` on the values of the ``inputs`` slots, put its results in the
    ``outputs`` slots, then clear the ``frees`` slots. A fit of a layer called several times
    reads the inputs of each call in turn: ``groups`` holds how many slots belong to each."""

    call: Call
    mode: Mode
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    frees: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()
    in_place: bool = False
    """The layer writes its result into its one input's array, which dies here
    (:mod:`megatron.execution.buffers`): ``transform_into(X, X)`` instead of ``transform(X)``."""


@attrs.frozen
class Plan:
    """The steps of one operation, from the values of ``inputs`` to those of ``results``."""

    inputs: tuple[Input, ...]
    results: tuple[Node, ...]
    steps: tuple[Step, ...]
    input_slots: tuple[int, ...]
    result_slots: tuple[int, ...]
    n_slots: int
    requires_fitted: tuple[StatefulLayer, ...] = ()
    """The stateful layers the plan transforms with but does not fit: they must be fitted
    before it runs."""
    operations: tuple[Operation, ...] = ()
    """The steps as the local executor runs them (:func:`operations`)."""

    @property
    def folded(self) -> list[FoldedChain]:
        """The chains of affine layers this plan runs as one map each, in plan order."""
        return folded_chains(self.steps)


Operation = tuple[int, Any, int, int, tuple[int, ...], Step]
"""A step as the local executor's loop reads it: ``(code, function, input slot, output slot,
frees, step)``; code 0 runs ``function(values[input])`` (a layer's ``transform``), 1 runs
``function(values[input], values[input])`` (its ``transform_into``), 2 the whole step."""


def operations(steps: Sequence[Step]) -> tuple[Operation, ...]:
    """The steps as operations, each bound to its layer's method once, when the plan is made."""
    ops: list[Operation] = []
    for step in steps:
        layer = step.call.layer
        if step.mode == "transform" and len(step.inputs) == 1 and len(step.outputs) == 1:
            code, function = (1, layer.transform_into) if step.in_place else (0, layer.transform)
            ops.append((code, function, step.inputs[0], step.outputs[0], step.frees, step))
        else:
            ops.append((2, None, -1, -1, step.frees, step))
    return tuple(ops)


def compile_plan(
    results: Sequence[Node], *, fit: Sequence[Call] = (), mode: Mode = "fit", optimize: bool = True
) -> Plan:
    """Plan computing ``results``, and fitting the layers of the calls ``fit`` on the way.

    Each of those layers is fitted (or, with ``mode='partial_fit'``, updated) once, on the
    inputs of all its calls in ``fit``, before any of its calls transforms. Training targets
    are followed only where something is fitted. With ``optimize``, chains of affine layers
    are folded into one map (:mod:`megatron.execution.folding`) and element-wise steps write
    into the arrays they free (:mod:`megatron.execution.buffers`).
    """
    fit_calls = list(fit)
    fit_ids = {id(call.layer) for call in fit_calls}
    roots = list(results) + [node for call in fit_calls for node in call.inputs]
    calls = upstream_calls(roots, with_targets=fit_ids)
    calls += [call for call in fit_calls if call not in calls]
    calls = _order_fit_groups(calls, fit_ids)
    inputs = needed_inputs(roots, calls, with_targets=fit_ids)
    slots: dict[int, int] = {}

    def slot(node: Node) -> int:
        return slots.setdefault(id(node), len(slots))

    input_slots = tuple(slot(node) for node in inputs)
    needed = {id(n) for n in roots}
    for call in calls:
        needed.update(id(n) for n in (call.inputs if follows_targets(call, fit_ids) else call.features))
    steps: list[Step] = []
    fitted: set[int] = set()
    for call in calls:
        wanted = any(id(n) in needed for n in call.outputs)
        layer_id = id(call.layer)
        if layer_id in fit_ids and layer_id not in fitted:
            fitted.add(layer_id)
            shared = [c for c in fit_calls if c.layer is call.layer]
            if mode == "fit" and wanted and shared == [call]:  # fit and transform in one step
                steps.append(
                    Step(call, "fit_transform", _slots(slot, call.inputs), _slots(slot, call.outputs))
                )
                continue
            groups = [_slots(slot, c.inputs) for c in shared]
            steps.append(Step(call, mode, sum(groups, ()), (), groups=tuple(map(len, groups))))
        if wanted:
            steps.append(Step(call, "transform", _slots(slot, call.features), _slots(slot, call.outputs)))
    result_slots = tuple(slot(node) for node in results)
    final = _final(steps, input_slots, result_slots, fit_ids, optimize)
    plan = Plan(
        tuple(inputs), tuple(results), final, input_slots, result_slots, len(slots), _read_fitted(steps)
    )
    return attrs.evolve(plan, operations=operations(final))


def _final(
    steps: list[Step], inputs: tuple[int, ...], results: tuple[int, ...], fit_ids: set[int], optimize: bool
) -> tuple[Step, ...]:
    """``steps`` with their frees; optimized, with affine chains folded and in-place steps marked."""
    if not optimize:
        return _with_frees(steps, results)
    folded = fold_chains(steps, results, fit_ids)
    return tuple(mark_in_place(_with_frees(folded, results), inputs, results))


def _read_fitted(steps: list[Step]) -> tuple[StatefulLayer, ...]:
    fitting = {id(step.call.layer) for step in steps if step.mode != "transform"}
    read = {
        id(step.call.layer): step.call.layer
        for step in steps
        if step.mode == "transform" and step.call.layer.stateful and id(step.call.layer) not in fitting
    }
    return tuple(read.values())  # type: ignore[arg-type]


def _slots(slot: Any, nodes: Sequence[Node]) -> tuple[int, ...]:
    return tuple(slot(node) for node in nodes)


def _with_frees(steps: list[Step], keep: Sequence[int]) -> tuple[Step, ...]:
    """``steps``, each clearing the slots whose last use it is (except the results, ``keep``)."""
    last_use: dict[int, int] = {}
    for i, step in enumerate(steps):
        for s in step.inputs + step.outputs:
            last_use[s] = i
    frees: list[list[int]] = [[] for _ in steps]
    for s, i in last_use.items():
        if s not in keep:
            frees[i].append(s)
    return tuple(attrs.evolve(step, frees=tuple(free)) for step, free in zip(steps, frees))


def _order_fit_groups(calls: list[Call], fit_ids: set[int]) -> list[Call]:
    """Topological order in which all calls of a layer being fitted come after all of their
    inputs are computed, so the layer is fitted once before any of its calls transforms."""
    if not any(
        sum(1 for c in calls if c.layer is call.layer) > 1 for call in calls if id(call.layer) in fit_ids
    ):
        return calls
    pending = list(calls)
    done: set[int] = set()
    ordered: list[Call] = []
    while pending:
        for call in pending:
            group = [c for c in pending if c.layer is call.layer] if id(call.layer) in fit_ids else [call]
            if all(p.call is None or id(p.call) in done for c in group for p in c.inputs):
                for c in group:
                    ordered.append(c)
                    done.add(id(c))
                    pending.remove(c)
                break
        else:  # pragma: no cover - stateful_stages rejects such graphs first
            raise GraphError("A layer is called on a node computed from its own output.")
    return ordered


class Plans:
    """The plans of one graph's operations, each compiled on first use and kept (thread-safe).
    Plans are not pickled: a copy compiles its own."""

    def __init__(self, graph: Graph, optimize: bool = True) -> None:
        self.graph = graph
        self.optimize = bool(optimize)
        """Whether the plans fold affine chains and reuse freed buffers (``Pipeline(optimize=)``)."""
        self._plans: dict[Hashable, Plan] = {}
        self._lock = threading.Lock()

    def cached(self, key: Hashable) -> Plan | None:
        """The plan named ``key`` if it was compiled already (the hot path of a transform)."""
        return self._plans.get(key)

    def get(
        self,
        key: Hashable,
        results: Sequence[Node],
        fit: Sequence[StatefulLayer] = (),
        mode: Mode = "fit",
    ) -> Plan:
        """The plan named ``key``: computing ``results`` and fitting the layers ``fit``."""
        plan = self._plans.get(key)
        if plan is None:
            fitting = {id(layer) for layer in fit}
            calls = [call for call in self.graph.calls if id(call.layer) in fitting]
            plan = compile_plan(results, fit=calls, mode=mode, optimize=self.optimize)
            with self._lock:
                self._plans[key] = plan
        return plan

    def __getstate__(self) -> dict[str, Any]:
        return {"graph": self.graph, "optimize": self.optimize}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["graph"], state.get("optimize", True))  # type: ignore[misc]
