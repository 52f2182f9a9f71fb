"""Whether a graph's layers are ready for an operation: fitted before they transform, able to
learn batch by batch before a stream is read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from megatron.errors import IncrementalFitError, NotFittedError

if TYPE_CHECKING:
    from megatron.graph.topology import Graph
    from megatron.layers.base import StatefulLayer


def check_fitted(pipeline: str, graph: Graph, layers: Iterable[StatefulLayer], operation: str) -> None:
    """A :class:`NotFittedError` naming the first of ``layers`` that is not fitted."""
    for layer in layers:
        if not layer.fitted:
            raise NotFittedError(
                f"Pipeline {pipeline!r} cannot {operation}: {graph.describe(layer)} is not fitted. "
                "Call fit(), partial_fit() or fit_generator() first."
            )


def check_incremental(pipeline: str, graph: Graph, layers: Iterable[StatefulLayer], operation: str) -> None:
    """An :class:`IncrementalFitError` naming the first of ``layers`` that cannot learn batch by
    batch (no ``partial_fit`` and no training loop of its own)."""
    for layer in layers:
        if not layer.supports_partial_fit() and not layer.drives_its_own_loop():
            raise IncrementalFitError(
                f"Pipeline {pipeline!r} cannot {operation}: {graph.describe(layer)} has no "
                "partial_fit(), so it cannot learn batch by batch. Use fit() on the whole "
                "dataset, or a layer that implements partial_fit()."
            )
