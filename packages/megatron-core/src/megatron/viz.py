"""Drawing a pipeline as a graph with pydot and Graphviz."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megatron.errors import MissingDependencyError
from megatron.outline import Outline, outline

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline

COLOURS = {"input": "#cfe2f3", "output": "#d9ead3", "metric": "#fff2cc", "node": "#ffffff"}
GRAPHVIZ_HINT = (
    "Graphviz's 'dot' program is needed to render images: install Graphviz "
    "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; conda: conda install graphviz). "
    "Without it, pipeline.to_dot() still gives the DOT text."
)


def _pydot() -> Any:
    from megatron.dependencies import require

    return require("pydot", "Drawing a pipeline")


def _label(title: str, kind: str, shape: str | None) -> str:
    rows = [f"<b>{html.escape(title)}</b>", html.escape(kind)]
    if shape is not None:
        rows.append(html.escape(shape))
    return "<" + "<br/>".join(rows) + ">"


def _outline(source: Pipeline | Outline) -> Outline:
    return source if isinstance(source, Outline) else outline(source)


def to_graph(source: Pipeline | Outline, rankdir: str = "TB", show_shapes: bool = True) -> Any:
    """The pydot graph of a pipeline (or of an :class:`~megatron.outline.Outline`, such as a
    saved file's): one node per input, layer output and metric."""
    pydot = _pydot()
    view = _outline(source)
    graph = pydot.Dot(graph_type="digraph", rankdir=rankdir, fontname="Helvetica")
    graph.set_node_defaults(shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10")
    ids: dict[str, str] = {}
    outputs = set(view.outputs)

    def add(node_id: str, label: str, colour: str, shape: str = "box") -> None:
        graph.add_node(pydot.Node(node_id, label=label, fillcolor=colour, shape=shape))

    for i, (name, spec) in enumerate(view.inputs):
        ids[name] = f"input{i}"
        add(ids[name], _label(name, "Input", spec if show_shapes else None), COLOURS["input"])
    for j, step in enumerate(view.steps):
        for k, (name, spec) in enumerate(zip(step.outputs, step.specs)):
            ids[name] = f"node{j}_{k}"
            colour = COLOURS["output"] if name in outputs else COLOURS["node"]
            add(ids[name], _label(name, step.layer, spec if show_shapes else None), colour)
            for parent, style in [(p, "solid") for p in step.features] + [
                (p, "dashed") for p in step.targets
            ]:
                graph.add_edge(pydot.Edge(ids[parent], ids[name], style=style))
    for m, metric in enumerate(view.metrics):
        node_id = f"metric{m}"
        add(node_id, _label(metric.name, metric.metric, None), COLOURS["metric"], "ellipse")
        for parent in metric.inputs:
            graph.add_edge(pydot.Edge(ids[parent], node_id, style="dotted"))
    return graph


def to_dot(pipeline: Pipeline | Outline, rankdir: str = "TB", show_shapes: bool = True) -> str:
    """The DOT text of the graph (no Graphviz needed)."""
    return to_graph(pipeline, rankdir, show_shapes).to_string()


def render(pipeline: Pipeline | Outline, format: str, rankdir: str = "TB", show_shapes: bool = True) -> bytes:
    """The graph rendered by Graphviz in ``format`` (png, svg, pdf...)."""
    graph = to_graph(pipeline, rankdir, show_shapes)
    try:
        return graph.create(format=format)
    except (FileNotFoundError, OSError, AssertionError) as exc:
        raise MissingDependencyError(f"{GRAPHVIZ_HINT} ({type(exc).__name__}: {exc})", name="dot") from None
    except Exception as exc:  # pydot reports a missing 'dot' with its own exception types
        if "dot" in str(exc) and ("not found" in str(exc) or "No such file" in str(exc)):
            raise MissingDependencyError(f"{GRAPHVIZ_HINT} ({exc})", name="dot") from None
        raise


def plot(
    pipeline: Pipeline | Outline,
    path: str | Path | None = None,
    rankdir: str = "TB",
    show_shapes: bool = True,
) -> Any:
    """Draw ``pipeline``: to ``path`` (PNG, SVG, PDF or DOT by its extension), or, without a path,
    as an image object that a notebook shows inline.

    Example::

        megatron.plot(pipeline, 'pipeline.png')
    """
    if path is None:
        from megatron.dependencies import require

        SVG = require("IPython.display", "Showing a graph inline (plot() without a path)").SVG

        return SVG(render(pipeline, "svg", rankdir, show_shapes))
    target = Path(path)
    extension = target.suffix.lower().lstrip(".") or "png"
    if extension == "dot":
        target.write_text(to_dot(pipeline, rankdir, show_shapes))
    else:
        target.write_bytes(render(pipeline, extension, rankdir, show_shapes))
    return target
