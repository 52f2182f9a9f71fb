"""Planning: which layer calls an operation needs, in which order, and when values die.

A :class:`Plan` is a flat list of :class:`Step` objects over numbered value slots. Each step
calls one function on some slots and stores its results in others; a slot is cleared right
after its last use, so intermediates are freed as soon as nothing needs them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container, Iterable, Sequence
from typing import Any, Literal

import attrs
import numpy as np

from megatron.errors import GraphError
from megatron.layers.base import Layer, StatefulLayer
from megatron.nodes import Apply, Input, Node

Mode = Literal["transform", "fit", "partial_fit"]
logger = logging.getLogger("megatron")


@attrs.frozen
class Step:
    """Call ``function`` on the values in ``inputs``; store results in ``outputs``."""

    function: Callable[..., Any]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    frees: tuple[int, ...]
    op: Apply
    mode: Mode


@attrs.frozen
class Plan:
    """The steps of one operation, from the values of ``inputs`` to those of ``results``."""

    inputs: tuple[Input, ...]
    results: tuple[Node, ...]
    steps: tuple[Step, ...]
    input_slots: tuple[int, ...]
    result_slots: tuple[int, ...]
    n_slots: int


def upstream_ops(roots: Iterable[Node], *, with_targets: bool | Container[int] = True) -> list[Apply]:
    """Layer calls that ``roots`` depend on, in topological order.

    A call's trailing target inputs only feed fitting: they are followed when ``with_targets``
    is True, or is a set of ids of the layers being fitted and holds the call's layer.
    """
    order: list[Apply] = []
    seen: set[int] = set()
    stack: list[tuple[Apply, bool]] = [(n.op, False) for n in roots if n.op is not None][::-1]
    while stack:
        op, expanded = stack.pop()
        if expanded:
            order.append(op)
            continue
        if id(op) in seen:
            continue
        seen.add(id(op))
        stack.append((op, True))
        parents = op.inputs if _follows_targets(op, with_targets) else op.features
        stack.extend((p.op, False) for p in reversed(parents) if p.op is not None and id(p.op) not in seen)
    return order


def _follows_targets(op: Apply, with_targets: bool | Container[int]) -> bool:
    if isinstance(with_targets, bool):
        return with_targets
    return id(op.layer) in with_targets


def needed_inputs(
    roots: Iterable[Node], ops: Iterable[Apply], *, with_targets: bool | Container[int] = True
) -> list[Input]:
    """The :class:`Input` nodes read by ``ops`` or among ``roots``, in first-use order."""
    found: dict[int, Input] = {}
    for node in roots:
        if isinstance(node, Input):
            found.setdefault(id(node), node)
    for op in ops:
        for node in op.inputs if _follows_targets(op, with_targets) else op.features:
            if isinstance(node, Input):
                found.setdefault(id(node), node)
    return list(found.values())


def stateful_stages(ops: Sequence[Apply]) -> list[list[StatefulLayer]]:
    """Group the stateful layers of ``ops`` into stages that can be fitted in order.

    A layer's stage is one more than the latest stage of any stateful layer upstream of any of
    its calls, so everything upstream of a stage is final before that stage is fitted. A layer
    upstream of itself (called on its own output) cannot be fitted and raises ``GraphError``.
    """
    layers = {id(op.layer): op.layer for op in ops if op.layer.stateful}
    calls = {key: [op for op in ops if id(op.layer) == key] for key in layers}
    for key, layer_calls in calls.items():
        if len(layer_calls) > 1 and any(_depends_on_layer(op, layers[key]) for op in layer_calls):
            raise GraphError(
                f"Layer {layers[key].name!r} is called on a node computed from its own output: "
                "it cannot be fitted before it is used."
            )
    # A layer called several times sits at the stage of its latest call, which can push its
    # earlier calls, and their consumers, later: iterate until the stages settle.
    layer_stage: dict[int, int] = {}
    changed = True
    while changed:
        changed = False
        op_stage: dict[int, int] = {}
        for op in ops:  # topological order
            upstream = max((op_stage.get(id(p.op), 0) for p in op.inputs if p.op is not None), default=0)
            if not op.layer.stateful:
                op_stage[id(op)] = upstream
                continue
            stage = max(upstream + 1, layer_stage.get(id(op.layer), 0))
            if stage != layer_stage.get(id(op.layer)):
                layer_stage[id(op.layer)] = stage
                changed = True
            op_stage[id(op)] = stage
    n = max(layer_stage.values(), default=0)
    stages: list[list[StatefulLayer]] = [[] for _ in range(n)]
    for key, stage in layer_stage.items():
        stages[stage - 1].append(layers[key])
    return stages


def _depends_on_layer(op: Apply, layer: Layer) -> bool:
    return any(up.layer is layer for up in upstream_ops(op.inputs))


def compile_plan(
    results: Sequence[Node],
    *,
    fit: Sequence[Apply] = (),
    mode: Mode = "fit",
) -> Plan:
    """Plan computing ``results``, and fitting the layers of the calls ``fit`` on the way.

    Each of those layers is fitted (or, with ``mode='partial_fit'``, updated) once, on the
    inputs of all its calls in ``fit``, before any of its calls transforms. Training targets
    are followed only where something is fitted.
    """
    fit_ops = list(fit)
    fit_ids = {id(op.layer) for op in fit_ops}
    with_targets = fit_ids
    roots = list(results) + [node for op in fit_ops for node in op.inputs]
    ops = upstream_ops(roots, with_targets=with_targets)
    for op in fit_ops:
        if op not in ops:
            ops.append(op)
    ops = _order_fit_groups(ops, fit_ids)
    inputs = needed_inputs(roots, ops, with_targets=with_targets)

    slots: dict[int, int] = {}

    def slot(node: Node) -> int:
        return slots.setdefault(id(node), len(slots))

    input_slots = tuple(slot(node) for node in inputs)
    needed_outputs = {id(n) for n in roots}
    for op in ops:
        needed_outputs.update(
            id(n) for n in (op.inputs if _follows_targets(op, with_targets) else op.features)
        )

    steps: list[tuple[Callable[..., Any], tuple[int, ...], tuple[int, ...], Apply, Mode]] = []
    fitted: set[int] = set()
    for op in ops:
        layer = op.layer
        wanted = any(id(n) in needed_outputs for n in op.outputs)
        if id(layer) in fit_ids and id(layer) not in fitted:
            fitted.add(id(layer))
            calls = [o for o in fit_ops if o.layer is layer]
            if mode == "fit" and wanted and calls == [op]:  # fit and transform in one step
                steps.append(
                    (
                        _fit_transformer(layer, op),
                        tuple(slot(n) for n in op.inputs),
                        tuple(slot(n) for n in op.outputs),
                        op,
                        "fit",
                    )
                )
                continue
            groups = [tuple(slot(n) for n in o.inputs) for o in calls]
            steps.append(
                (
                    _fitter(layer, op, mode, [len(g) for g in groups]),
                    tuple(s for g in groups for s in g),
                    (),
                    op,
                    mode,
                )
            )
        if wanted:
            steps.append(
                (
                    layer.transform,
                    tuple(slot(n) for n in op.features),
                    tuple(slot(n) for n in op.outputs),
                    op,
                    "transform",
                )
            )
    result_slots = tuple(slot(node) for node in results)

    last_use: dict[int, int] = {}
    for i, (_, ins, outs, _, _) in enumerate(steps):
        for s in ins + outs:
            last_use[s] = i
    keep = set(result_slots)
    frees: list[list[int]] = [[] for _ in steps]
    for s, i in last_use.items():
        if s not in keep:
            frees[i].append(s)
    return Plan(
        inputs=tuple(inputs),
        results=tuple(results),
        steps=tuple(
            Step(fn, ins, outs, tuple(frees[i]), op, m) for i, (fn, ins, outs, op, m) in enumerate(steps)
        ),
        input_slots=input_slots,
        result_slots=result_slots,
        n_slots=len(slots),
    )


def _order_fit_groups(ops: list[Apply], fit_ids: set[int]) -> list[Apply]:
    """Topological order in which all calls of a layer being fitted come after all of their
    inputs are computed, so the layer is fitted once before any of its calls transforms."""
    if not any(sum(1 for o in ops if o.layer is op.layer) > 1 for op in ops if id(op.layer) in fit_ids):
        return ops
    pending = list(ops)
    done: set[int] = set()
    ordered: list[Apply] = []
    while pending:
        for op in pending:
            group = [o for o in pending if o.layer is op.layer] if id(op.layer) in fit_ids else [op]
            if all(p.op is None or id(p.op) in done for o in group for p in o.inputs):
                for o in group:
                    ordered.append(o)
                    done.add(id(o))
                    pending.remove(o)
                break
        else:  # pragma: no cover - stateful_stages rejects such graphs first
            raise GraphError("A layer is called on a node computed from its own output.")
    return ordered


def _fit_transformer(layer: StatefulLayer, op: Apply) -> Callable[..., Any]:
    def fit_transform(*values: np.ndarray) -> Any:
        start = time.perf_counter()
        outputs = layer.fit_transform(*values)
        layer.fitted = True
        _log_fit(op, "fit", values, start)
        return outputs

    return fit_transform


def _log_fit(op: Apply, mode: str, values: Sequence[np.ndarray], start: float) -> None:
    if logger.isEnabledFor(logging.INFO):
        rows = len(values[0]) if values else 0
        logger.info("%s: %s on %d rows in %.3f s", op.describe(), mode, rows, time.perf_counter() - start)


def _log_shared_fit(op: Apply, mode: str, rows: int, calls: int, start: float) -> None:
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "%s: %s on %d rows of %d calls in %.3f s",
            op.describe(),
            mode,
            rows,
            calls,
            time.perf_counter() - start,
        )


def _fitter(layer: StatefulLayer, op: Apply, mode: Mode, group_sizes: list[int]) -> Callable[..., None]:
    method = layer.partial_fit if mode == "partial_fit" else layer.fit

    def fit(*values: np.ndarray) -> None:
        start = time.perf_counter()
        if len(group_sizes) == 1:
            method(*values)
            layer.fitted = True
            _log_fit(op, mode, values, start)
            return
        # one layer called on several nodes learns from all of them
        groups, first = [], 0
        for size in group_sizes:
            groups.append(values[first : first + size])
            first += size
        joined = [np.concatenate(parts) for parts in zip(*groups)]
        method(*joined)
        layer.fitted = True
        _log_shared_fit(op, mode, len(joined[0]) if joined else 0, len(groups), start)

    return fit
