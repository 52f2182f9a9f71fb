"""Showing a pipeline: its summary table and its graph drawn (Keras's ``summary`` and
``plot_model``), as methods every :class:`~megatron.Pipeline` has."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from megatron.errors import MegatronError

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline


class Showing:
    """The summary and drawing methods of a pipeline (a mixin of :class:`~megatron.Pipeline`)."""

    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print a table of the graph, as Keras's ``model.summary()`` does: each node, its layer
        and key hyperparameters, output spec, inputs and fitted state; inputs, outputs and
        metrics marked. ``print_fn`` receives the text instead of ``print``;
        :meth:`summary_text` returns it."""
        from megatron.summary import summary

        summary(_pipeline(self), print_fn)

    def summary_text(self) -> str:
        """The table that :meth:`summary` prints, as a string."""
        from megatron.summary import summary_text

        return summary_text(_pipeline(self))

    def plot(self, path: str | Path | None = None, rankdir: str = "TB", show_shapes: bool = True) -> Any:
        """Draw the graph to ``path`` (PNG, SVG, PDF or DOT by extension), or return an inline
        image for a notebook. Needs pydot and Graphviz (:meth:`to_dot` needs pydot only)."""
        from megatron.viz import plot

        return plot(_pipeline(self), path, rankdir, show_shapes)

    def to_dot(self, rankdir: str = "TB", show_shapes: bool = True) -> str:
        """The graph in Graphviz's DOT language."""
        from megatron.viz import to_dot

        return to_dot(_pipeline(self), rankdir, show_shapes)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Notebooks show a pipeline as its graph (as text where Graphviz is missing)."""
        try:
            from megatron.viz import render

            return {"image/svg+xml": render(_pipeline(self), "svg").decode(), "text/plain": repr(self)}
        except MegatronError:
            return {"text/plain": repr(self)}


def _pipeline(shown: Showing) -> Pipeline:
    return cast("Pipeline", shown)  # the one class that mixes Showing in
