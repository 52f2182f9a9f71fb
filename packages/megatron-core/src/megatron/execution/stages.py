"""Staged fitting from a stream of batches (``Pipeline.fit_generator``): the stages of a
graph's stateful layers, and the passes that fit them stage by stage."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import attrs
import numpy as np

from megatron.errors import DataError, GraphError, MegatronError, layer_failure
from megatron.execution.executor import Executor
from megatron.execution.plan import Plans
from megatron.graph.topology import upstream_calls
from megatron.io.feeds import Data, read_batch, rows_in
from megatron.io.streams import Passes, numbered
from megatron.progress import batch_count, progress_scope

if TYPE_CHECKING:
    from megatron.graph.call import Call
    from megatron.graph.topology import Graph
    from megatron.layers.base import Layer, StatefulLayer

logger = logging.getLogger("megatron")


def stateful_stages(calls: Sequence[Call]) -> list[list[StatefulLayer]]:
    """Group the stateful layers of ``calls`` into stages that can be fitted in order.

    A layer's stage is one more than the latest stage of any stateful layer upstream of any of
    its calls, so everything upstream of a stage is final before that stage is fitted. A layer
    upstream of itself (called on its own output) cannot be fitted and raises ``GraphError``.
    """
    layers = {id(call.layer): call.layer for call in calls if call.layer.stateful}
    for key, layer in layers.items():
        own = [call for call in calls if id(call.layer) == key]
        if len(own) > 1 and any(_depends_on_layer(call, layer) for call in own):
            raise GraphError(
                f"Layer {layer.name!r} is called on a node computed from its own output: "
                "it cannot be fitted before it is used."
            )
    # A layer called several times sits at the stage of its latest call, which can push its
    # earlier calls, and their consumers, later: iterate until the stages settle.
    layer_stage: dict[int, int] = {}
    changed = True
    while changed:
        changed = False
        call_stage: dict[int, int] = {}
        for call in calls:  # topological order
            upstream = max(
                (call_stage.get(id(p.call), 0) for p in call.inputs if p.call is not None), default=0
            )
            if not call.layer.stateful:
                call_stage[id(call)] = upstream
                continue
            stage = max(upstream + 1, layer_stage.get(id(call.layer), 0))
            if stage != layer_stage.get(id(call.layer)):
                layer_stage[id(call.layer)] = stage
                changed = True
            call_stage[id(call)] = stage
    stages: list[list[StatefulLayer]] = [[] for _ in range(max(layer_stage.values(), default=0))]
    for key, stage in layer_stage.items():
        stages[stage - 1].append(layers[key])  # type: ignore[arg-type]
    return stages


def _depends_on_layer(call: Call, layer: Layer) -> bool:
    return any(up.layer is layer for up in upstream_calls(call.inputs))


@attrs.frozen
class StagedFit:
    """One ``fit_generator`` run: each stage of stateful layers fitted in turn from ``batches``,
    with everything upstream of it final (see :func:`stateful_stages`)."""

    pipeline: str
    graph: Graph
    plans: Plans
    executor: Executor
    batches: Iterable[Data]
    steps_per_epoch: int | None
    epochs: int
    show: bool | None

    def run(self, stages: list[list[StatefulLayer]]) -> None:
        """Fit ``stages`` in order: per-batch layers together, then each layer that drives its
        own training loop."""
        passes = self._passes(stages)
        with progress_scope(self.show):
            for number, stage in enumerate(stages):
                plain = [layer for layer in stage if not layer.drives_its_own_loop()]
                if plain:
                    self._fit_stage(plain, number, len(stages), passes)
                for layer in stage:
                    if layer.drives_its_own_loop():
                        self._fit_driving_layer(layer, passes)

    def _passes(self, stages: list[list[StatefulLayer]]) -> Passes:
        if getattr(self.batches, "repeat", False) and self.steps_per_epoch is None:
            raise DataError(
                f"Pipeline {self.pipeline!r}.fit_generator() got a source that repeats forever: pass "
                "steps_per_epoch."
            )
        passes = Passes(self.pipeline, stages, self.epochs, one_shot=iter(self.batches) is self.batches)
        if passes.one_shot and self.steps_per_epoch is None and passes.total > 1:
            raise DataError(
                f"Pipeline {self.pipeline!r}.fit_generator() needs {passes.total} passes over the data "
                f"({passes.why()}) but got a one-shot iterator: pass a re-iterable source (a list or "
                "a megatron source) or steps_per_epoch."
            )
        return passes

    def _pass(self, description: str, passes: Passes) -> Iterator[tuple[int, Data]]:
        return numbered(self.batches, self.steps_per_epoch, description, self.show, self.pipeline, passes)

    def _fit_stage(self, stage: list[StatefulLayer], number: int, n_stages: int, passes: Passes) -> None:
        """Fit the layers of one stage together, ``partial_fit`` per batch: one shared pass, then
        ``epochs - 1`` more for the iterative layers among them."""
        for layer in stage:
            layer.reset()
        iterative = [layer for layer in stage if layer.iterative]
        start, rows = time.perf_counter(), 0
        n_epochs = self.epochs if iterative else 1
        for epoch in range(n_epochs):
            fitting = stage if epoch == 0 else iterative
            key = ("fit_generator", tuple(id(layer) for layer in fitting))
            plan = self.plans.get(key, (), fit=fitting, mode="partial_fit")
            drawn = 0
            description = f"{self.pipeline}: fit stage {number + 1}/{n_stages}, epoch {epoch + 1}/{n_epochs}"
            for i, batch in self._pass(description, passes):
                feeds, _ = read_batch(plan.inputs, batch, i, self.pipeline, "fit_generator")
                self.executor.run(plan, feeds)
                rows += rows_in(feeds)
                drawn += 1
            passes.finished(drawn)
        names = ", ".join(layer.name for layer in stage)
        seconds = time.perf_counter() - start
        logger.info(
            "pipeline %r: fit stage %d/%d (%s) on %d rows in %.3f s",
            self.pipeline,
            number + 1,
            n_stages,
            names,
            rows,
            seconds,
        )

    def _fit_driving_layer(self, layer: StatefulLayer, passes: Passes) -> None:
        """Hand a layer that runs its own training loop (Keras) a stream of its inputs,
        computed upstream batch by batch, once per epoch (once, unless it is iterative)."""
        calls = self.graph.calls_of(layer)
        plan = self.plans.get(("inputs of", id(layer)), [node for call in calls for node in call.inputs])
        width = len(calls[0].inputs)

        def one_pass() -> Iterator[tuple[np.ndarray, ...]]:
            drawn = 0
            for i, batch in self._pass(f"{self.pipeline}: fit {layer.name}", passes):
                feeds, _ = read_batch(plan.inputs, batch, i, self.pipeline, "fit_generator")
                values = self.executor.run(plan, feeds)
                groups = [values[k : k + width] for k in range(0, len(values), width)]
                drawn += 1
                yield (
                    tuple(np.concatenate(parts) for parts in zip(*groups))
                    if len(groups) > 1
                    else tuple(values)
                )
            passes.finished(drawn)

        try:
            layer.fit_batches(
                one_pass,
                self.epochs if layer.iterative else 1,
                batch_count(self.batches, self.steps_per_epoch),
            )
        except MegatronError:
            raise
        except Exception as exc:
            raise layer_failure(calls[0].describe(), "fit_batches", [], exc) from exc
        layer.fitted = True
