"""Evaluating a graph's metrics: the nodes they read, and folding one batch's values into their
states. ``Pipeline.evaluate_generator`` and ``Pipeline.metric_states`` (and with it any
distributed evaluation, which merges per-batch states with each metric's ``merge``) share it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from megatron.graph.node import Node
    from megatron.metrics.base import MetricNode


def metric_inputs(metrics: Sequence[MetricNode]) -> list[Node]:
    """The nodes ``metrics`` read, each once, in the metrics' order."""
    return list({id(n): n for m in metrics for n in m.inputs}.values())


def updated_states(
    metrics: Sequence[MetricNode],
    nodes: Sequence[Node],
    values: Sequence[np.ndarray],
    states: Sequence[Any] | None = None,
) -> list[Any]:
    """Each metric's state after one batch: ``values`` (those of ``nodes``, in order) folded
    into ``states`` (each metric's initial state when None), in the order of ``metrics``."""
    position = {id(n): i for i, n in enumerate(nodes)}
    if states is None:
        states = [m.metric.initial_state() for m in metrics]
    return [
        metric.update(state, *[values[position[id(n)]] for n in metric.inputs])
        for metric, state in zip(metrics, states)
    ]
