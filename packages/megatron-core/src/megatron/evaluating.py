"""Evaluating a pipeline's metrics on data, whole or batch by batch, all of them or those
named, as methods every :class:`~megatron.Pipeline` has."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from megatron.errors import GraphError
from megatron.execution.elsewhere import HERE, run_elsewhere
from megatron.execution.evaluation import metric_inputs, updated_states
from megatron.execution.readiness import check_fitted
from megatron.graph.part import MetricsAsked, select_metrics
from megatron.io.feeds import Data, foreign_part, read_batch, read_feeds
from megatron.io.streams import check_stream, numbered

if TYPE_CHECKING:
    from megatron.execution.executor import Executor
    from megatron.execution.plan import Plan, Plans
    from megatron.graph.node import Node
    from megatron.graph.topology import Graph
    from megatron.metrics.base import MetricNode
    from megatron.pipeline import Pipeline


class Evaluating:
    """The evaluation methods of a pipeline (a mixin of :class:`~megatron.Pipeline`)."""

    name: str
    graph: Graph
    _plans: Plans
    _executor: Executor

    @property
    def metrics(self) -> tuple[MetricNode, ...]:
        """The metrics of the pipeline, found on its nodes or given with ``metrics=``."""
        return self.graph.metrics

    def evaluate(self, data: Data, *, metrics: MetricsAsked = None) -> dict[str, float]:
        """Every metric of the pipeline on ``data`` (or those named in ``metrics``, computing only
        what they read), by metric name."""
        foreign = foreign_part(data)
        if foreign is not None:
            options = {} if metrics is None else {"metrics": metrics}
            if (done := run_elsewhere(_pipeline(self), "evaluate", data, foreign, options)) is not HERE:
                return done
        plan, nodes, chosen = self._evaluate_plan("evaluate", metrics)
        feeds, _ = read_feeds(plan.inputs, data, None, self.name, "evaluate")
        states = updated_states(chosen, nodes, self._executor.run(plan, feeds))
        return {m.name: m.metric.result(state) for m, state in zip(chosen, states)}

    def evaluate_generator(
        self,
        batches: Iterable[Data],
        steps: int | None = None,
        progress: bool | None = None,
        *,
        metrics: MetricsAsked = None,
    ) -> dict[str, float]:
        """Every metric (or those named in ``metrics``) over all ``batches``, exactly (metric
        states are merged, not averaged)."""
        plan, nodes, chosen = self._evaluate_plan("evaluate_generator", metrics)
        check_stream(self.name, batches, "evaluate_generator")
        states = None
        for number, batch in numbered(batches, steps, f"{self.name}: evaluate", progress, self.name):
            feeds, _ = read_batch(plan.inputs, batch, number, self.name, "evaluate_generator")
            states = updated_states(chosen, nodes, self._executor.run(plan, feeds), states)
        states = states or [m.metric.initial_state() for m in chosen]
        return {m.name: m.metric.result(state) for m, state in zip(chosen, states)}

    def _evaluate_plan(
        self, operation: str, metrics: MetricsAsked = None
    ) -> tuple[Plan, list[Node], tuple[MetricNode, ...]]:
        if not self.metrics:
            raise GraphError(
                f"Pipeline {self.name!r} has no metrics to evaluate; attach one, e.g. "
                "Accuracy()([labels, preds], 'acc')."
            )
        chosen = self.metrics if metrics is None else select_metrics(self.graph, metrics)
        nodes = metric_inputs(chosen)
        key = "evaluate" if metrics is None else ("evaluate", tuple(m.name for m in chosen))
        plan = self._plans.get(key, nodes)
        check_fitted(self.name, self.graph, plan.requires_fitted, operation)
        return plan, nodes, chosen

    def metric_states(self, batch: Data, metrics: MetricsAsked = None) -> list[Any]:
        """Each metric's state after ``batch`` alone, in :attr:`metrics` order (or that of the
        metrics named): merge the states of several batches with each metric's ``merge``, then
        take its ``result``."""
        plan, nodes, chosen = self._evaluate_plan("metric_states", metrics)
        feeds, _ = read_feeds(plan.inputs, batch, None, self.name, "metric_states")
        return updated_states(chosen, nodes, self._executor.run(plan, feeds))


def _pipeline(self: Evaluating) -> Pipeline:
    return cast("Pipeline", self)
