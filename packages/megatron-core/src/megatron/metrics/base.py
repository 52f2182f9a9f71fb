"""Metrics: evaluations attached to nodes, computed by ``Pipeline.evaluate``.

A metric keeps a mergeable state, so evaluating batch by batch gives the exact value over
all the data: :meth:`Metric.update` folds one batch into the state, :meth:`Metric.merge`
combines the states of two parts of the data (evaluated apart, in parallel), and
:meth:`Metric.result` turns the state into the value. No method changes a state it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from megatron.config import init_config, record_arguments_of, recorded_argument
from megatron.errors import GraphError, MegatronError, MetricError
from megatron.graph.names import automatic_name
from megatron.graph.node import Node, as_node_list, common_rows
from megatron.layers.frozen import freeze
from megatron.metrics.states import Batches, merge_states


class MetricNode:
    """A metric called on nodes, under a name; found by any pipeline holding those nodes."""

    def __init__(self, metric: Metric, inputs: tuple[Node, ...], name: str) -> None:
        self.metric = metric
        self.inputs = inputs
        self.name = name

    def update(self, state: Any, *inputs: np.ndarray) -> Any:
        """The metric's ``update`` of ``state`` with one batch of its inputs; a failure inside
        the metric is a :class:`~megatron.errors.MetricError` naming it and its nodes."""
        try:
            return self.metric.update(state, *inputs)
        except MegatronError:
            raise
        except Exception as exc:
            raise MetricError(
                f"Metric {self.name!r} ({type(self.metric).__name__}) failed on inputs "
                f"{[n.name for n in self.inputs]}: {type(exc).__name__}: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return f"<MetricNode {self.name!r} {type(self.metric).__name__} on {[n.name for n in self.inputs]}>"


class Metric:
    """Base class of metrics, and the generic metric of a function.

    ``Metric(fn)`` collects every batch and returns ``fn(*arrays)`` over all of them, for
    functions that need all the data at once. Subclasses with a mergeable statistic override
    :meth:`initial_state`, :meth:`update` and :meth:`result` instead, and :meth:`merge` where
    the generic merge does not fit their state.

    Example::

        mae = Metric(lambda y, p: float(np.abs(y - p).mean()))([y_node, pred_node], 'mae')
    """

    def __init__(self, function: Callable[..., Any] | None = None) -> None:
        self.function = function

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        record_arguments_of(cls, freeze)

    def get_config(self) -> dict[str, Any]:
        """The metric's parameters: each ``__init__`` parameter read from the same-named
        attribute, else the argument ``__init__`` was given (kept for this)."""
        return init_config(self)

    def __getattr__(self, name: str) -> Any:
        # only for attributes not found otherwise: a parameter the metric keeps elsewhere
        return recorded_argument(self, name)

    @property
    def name(self) -> str:
        return automatic_name(type(self))

    def __call__(self, inputs: Node | Sequence[Node], name: str | None = None) -> MetricNode:
        """Attach the metric to ``inputs`` (usually ``[y_true, y_pred]``) under ``name``."""
        nodes = as_node_list(inputs, f"Calling metric {type(self).__name__}")
        if not isinstance(name, str) or not name:
            raise GraphError(
                f"Metric {type(self).__name__} on nodes {[n.name for n in nodes]} needs a name, "
                "e.g. Accuracy()([labels, preds], 'model_acc'); metrics are reported by name."
            )
        common_rows(nodes, f"Metric {name!r} ({type(self).__name__})")
        node = MetricNode(self, nodes, name)
        for parent in nodes:
            parent.metrics.append(node)
        return node

    def initial_state(self) -> Any:
        """The state before any batch."""
        return Batches()

    def update(self, state: Any, *inputs: Any, **options: Any) -> Any:
        """Fold one batch into ``state`` and return the new state, never changing ``state``
        (a subclass's own signature, e.g. ``update(self, state, y_true, y_pred)``, checks
        against this one)."""
        return Batches([*state, inputs])

    def merge(self, a: Any, b: Any) -> Any:
        """The state of two disjoint parts of the data from their states, ``a``'s rows first;
        pure: it changes neither. ``merge(initial_state(), s)`` is ``s``.

        The generic merge follows the state's structure: numbers and arrays add, tuples and
        lists of the same length merge element by element, mappings merge by key (a key in
        one state only is kept as it is), and the batches ``Metric(fn)`` collects concatenate.
        A state it does not fit (a maximum, a sketch, a list of batches a subclass keeps
        itself) needs its own ``merge``; it raises :class:`~megatron.errors.MetricError` for
        types it does not know.
        """
        return merge_states(a, b, f"Metric {type(self).__name__}'s state")

    def result(self, state: Any) -> float:
        """The metric's value from its state."""
        if self.function is None:
            raise NotImplementedError(
                f"{type(self).__name__} must implement result() or be given a function."
            )
        if not state:
            return float("nan")
        arrays = [np.concatenate(parts) for parts in zip(*state)]
        return self.function(*arrays)
