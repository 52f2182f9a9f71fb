"""The stages of a pipeline's operations, as methods every :class:`~megatron.Pipeline` has: the
public door for executors and plugins that run an operation elsewhere (megatron-dask): the
stateful layers of each stage of a staged fit, what a stage learns from in a batch, the data
an operation reads, and its compiled plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from megatron.errors import ConfigError
from megatron.execution.stages import inputs_by_layer, inputs_plan
from megatron.io.feeds import Data, read_feeds

if TYPE_CHECKING:
    from megatron.execution.executor import Executor
    from megatron.execution.plan import Plan, Plans
    from megatron.graph.node import Node
    from megatron.graph.part import MetricsAsked
    from megatron.graph.topology import Graph
    from megatron.layers.base import StatefulLayer
    from megatron.pipeline import Pipeline


class Staging:
    """The stage API of a pipeline (a mixin of :class:`~megatron.Pipeline`)."""

    name: str
    graph: Graph
    _plans: Plans
    _executor: Executor

    def stages(self) -> list[list[StatefulLayer]]:
        """The stateful layers in the stages of a staged fit (:meth:`fit_generator`): each stage
        learns once everything upstream of it is final."""
        return self.graph.stages()

    def stage_inputs(self, k: int, batch: Data) -> list[tuple[np.ndarray, ...]]:
        """What each layer of stage ``k`` (in :meth:`stages` order) learns from in ``batch``:
        its arguments for ``partial_fit``, computed with every other layer as it is."""
        stage = self.stages()[k]
        plan = inputs_plan(self._plans, self.graph, stage)
        feeds, _ = read_feeds(plan.inputs, batch, None, self.name, "stage_inputs")
        return inputs_by_layer(self.graph, stage, self._executor.run(plan, feeds))

    def feeds(self, batch: Data, operation: str = "transform", **part: Any) -> tuple[list[np.ndarray], Any]:
        """``batch`` read as the input arrays of ``operation`` (``"transform"``, ``"fit"``,
        ``"evaluate"``; of the part that ``outputs=``, ``metrics=`` or ``store=`` ask for, as
        :meth:`plan_of` takes them), checked against the inputs' specs, and the index of its rows
        (None for positions)."""
        return read_feeds(self.plan_of(operation, **part).inputs, batch, None, self.name, operation)

    def plan_of(
        self,
        operation: str,
        *,
        outputs: str | Node | Sequence[str | Node] | None = None,
        metrics: MetricsAsked = None,
        store: bool = True,
    ) -> Plan:
        """The compiled plan of ``operation`` (``"transform"``, ``"fit"``, ``"evaluate"``), of
        the part that ``outputs``, ``metrics`` and ``store`` ask for (as :meth:`transform` and
        :meth:`evaluate` take them), refused as they refuse it."""
        if operation == "transform":
            pipeline = cast("Pipeline", self)
            part = pipeline._part(outputs, False, store)
            key = "transform" if part is pipeline._whole else ("transform", part.names)
            return self._plans.get(key, (*part.nodes, *part.rows))
        if operation == "fit":
            return self._plans.get("fit", (), fit=self.graph.stateful_layers)
        if operation == "evaluate":
            return cast("Pipeline", self)._evaluate_plan("feeds", metrics)[0]
        raise ConfigError(f"feeds() reads data for 'transform', 'fit' or 'evaluate'; got {operation!r}.")
