"""Staged fitting from a stream of batches (``Pipeline.fit_generator``): the stages of a
graph's stateful layers, and the passes that fit them stage by stage."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from megatron.errors import DataError, MegatronError, layer_failure
from megatron.execution.executor import Executor
from megatron.execution.plan import Plan, Plans
from megatron.io.feeds import Data, read_batch, rows_in
from megatron.io.streams import Passes, numbered
from megatron.progress import batch_count, progress_scope

if TYPE_CHECKING:
    from megatron.graph.topology import Graph
    from megatron.layers.base import StatefulLayer

logger = logging.getLogger("megatron")


def inputs_plan(plans: Plans, graph: Graph, layers: Sequence[StatefulLayer]) -> Plan:
    """The plan computing what ``layers`` learn from: the inputs (targets included) of each of
    their calls, in order, with every other layer as it is."""
    key = ("inputs of", tuple(id(layer) for layer in layers))
    return plans.cached(key) or plans.get(
        key, [node for layer in layers for call in graph.calls_of(layer) for node in call.inputs]
    )


def inputs_by_layer(
    graph: Graph, layers: Sequence[StatefulLayer], values: Sequence[np.ndarray]
) -> list[tuple[np.ndarray, ...]]:
    """The results of :func:`inputs_plan` as each layer's arguments: a layer called several
    times learns from its calls' inputs joined along the observations."""
    arguments, first = [], 0
    for layer in layers:
        calls = graph.calls_of(layer)
        width = len(calls[0].inputs)
        groups = [values[first + k * width : first + (k + 1) * width] for k in range(len(calls))]
        first += width * len(calls)
        arguments.append(
            tuple(np.concatenate(parts) for parts in zip(*groups)) if len(groups) > 1 else tuple(groups[0])
        )
    return arguments


@attrs.frozen
class StagedFit:
    """One ``fit_generator`` run: each stage of stateful layers fitted in turn from ``batches``,
    with everything upstream of it final (see :func:`~megatron.graph.topology.stateful_stages`)."""

    pipeline: str
    graph: Graph
    plans: Plans
    executor: Executor
    batches: Iterable[Data]
    steps_per_epoch: int | None
    epochs: int
    show: bool | None
    routing: Any = None
    """Arguments routed to the layers' ``partial_fit`` (a :class:`megatron.routing.Routing`)."""

    def run(self, stages: list[list[StatefulLayer]], routing: Any = None) -> None:
        """Fit ``stages`` in order: per-batch layers together, then each layer that drives its
        own training loop; ``routing`` sends routed arguments to ``partial_fit``."""
        if routing is not None:
            return attrs.evolve(self, routing=routing).run(stages)
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
            plan = inputs_plan(self.plans, self.graph, fitting)
            calls = [self.graph.calls_of(layer)[0] for layer in fitting]
            drawn = 0
            description = f"{self.pipeline}: fit stage {number + 1}/{n_stages}, epoch {epoch + 1}/{n_epochs}"
            for i, batch in self._pass(description, passes):
                feeds, _ = read_batch(plan.inputs, batch, i, self.pipeline, "fit_generator")
                arguments = inputs_by_layer(self.graph, fitting, self.executor.run(plan, feeds))
                with self._routed(batch):
                    for call, args in zip(calls, arguments):
                        call.run("partial_fit", args)
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

    def _routed(self, batch: Data) -> AbstractContextManager[None]:
        if self.routing is None:
            return nullcontext()
        return self.routing.applied(self.plans, self.executor, batch, None)

    def _fit_driving_layer(self, layer: StatefulLayer, passes: Passes) -> None:
        """Hand a layer that runs its own training loop (Keras) a stream of its inputs,
        computed upstream batch by batch, once per epoch (once, unless it is iterative)."""
        calls = self.graph.calls_of(layer)
        plan = inputs_plan(self.plans, self.graph, [layer])

        def one_pass() -> Iterator[tuple[np.ndarray, ...]]:
            drawn = 0
            for i, batch in self._pass(f"{self.pipeline}: fit {layer.name}", passes):
                feeds, _ = read_batch(plan.inputs, batch, i, self.pipeline, "fit_generator")
                drawn += 1
                yield inputs_by_layer(self.graph, [layer], self.executor.run(plan, feeds))[0]
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
