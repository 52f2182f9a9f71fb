"""Drawing a pipeline as a graph with pydot and Graphviz."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megatron.errors import MegatronError

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline

COLOURS = {"input": "#cfe2f3", "output": "#d9ead3", "metric": "#fff2cc", "node": "#ffffff"}
GRAPHVIZ_HINT = (
    "Graphviz's 'dot' program is needed to render images: install Graphviz "
    "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; conda: conda install graphviz). "
    "Without it, pipeline.to_dot() still gives the DOT text."
)


def _pydot() -> Any:
    try:
        import pydot
    except ImportError:
        raise MegatronError("Drawing pipelines needs pydot: pip install 'megatron-core[viz]'") from None
    return pydot


def _label(title: str, kind: str, shape: str | None) -> str:
    rows = [f"<b>{html.escape(title)}</b>", html.escape(kind)]
    if shape is not None:
        rows.append(html.escape(shape))
    return "<" + "<br/>".join(rows) + ">"


def to_graph(pipeline: Pipeline, rankdir: str = "TB", show_shapes: bool = True) -> Any:
    """The pydot graph of ``pipeline``: one node per input, layer output and metric."""
    pydot = _pydot()
    graph = pydot.Dot(graph_type="digraph", rankdir=rankdir, fontname="Helvetica")
    graph.set_node_defaults(shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10")
    ids: dict[int, str] = {}
    outputs = {id(n) for n in pipeline.outputs}

    def add(node_id: str, label: str, colour: str, shape: str = "box") -> None:
        graph.add_node(pydot.Node(node_id, label=label, fillcolor=colour, shape=shape))

    for i, node in enumerate(pipeline.inputs):
        ids[id(node)] = f"input{i}"
        add(
            ids[id(node)],
            _label(node.name, "Input", str(node.spec) if show_shapes else None),
            COLOURS["input"],
        )
    for j, op in enumerate(pipeline._ops):
        for k, node in enumerate(op.visible_outputs):
            ids[id(node)] = f"node{j}_{k}"
            colour = COLOURS["output"] if id(node) in outputs else COLOURS["node"]
            add(
                ids[id(node)],
                _label(node.name, type(op.layer).__name__, str(node.spec) if show_shapes else None),
                colour,
            )
            for parent in op.inputs:
                style = "dashed" if parent in op.targets else "solid"
                graph.add_edge(pydot.Edge(ids[id(parent)], ids[id(node)], style=style))
    for m, metric in enumerate(pipeline.metrics):
        node_id = f"metric{m}"
        add(node_id, _label(metric.name, type(metric.metric).__name__, None), COLOURS["metric"], "ellipse")
        for parent in metric.inputs:
            graph.add_edge(pydot.Edge(ids[id(parent)], node_id, style="dotted"))
    return graph


def to_dot(pipeline: Pipeline, rankdir: str = "TB", show_shapes: bool = True) -> str:
    """The DOT text of the graph (no Graphviz needed)."""
    return to_graph(pipeline, rankdir, show_shapes).to_string()


def render(pipeline: Pipeline, format: str, rankdir: str = "TB", show_shapes: bool = True) -> bytes:
    """The graph rendered by Graphviz in ``format`` (png, svg, pdf...)."""
    graph = to_graph(pipeline, rankdir, show_shapes)
    try:
        return graph.create(format=format)
    except (FileNotFoundError, OSError, AssertionError) as exc:
        raise MegatronError(f"{GRAPHVIZ_HINT} ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # pydot reports a missing 'dot' with its own exception types
        if "dot" in str(exc) and ("not found" in str(exc) or "No such file" in str(exc)):
            raise MegatronError(f"{GRAPHVIZ_HINT} ({exc})") from None
        raise


def plot(
    pipeline: Pipeline, path: str | Path | None = None, rankdir: str = "TB", show_shapes: bool = True
) -> Any:
    """Draw ``pipeline``: to ``path`` (PNG, SVG, PDF or DOT by its extension), or, without a path,
    as an image object that a notebook shows inline.

    Example::

        megatron.plot(pipeline, 'pipeline.png')
    """
    if path is None:
        from IPython.display import SVG

        return SVG(render(pipeline, "svg", rankdir, show_shapes))
    target = Path(path)
    extension = target.suffix.lower().lstrip(".") or "png"
    if extension == "dot":
        target.write_text(to_dot(pipeline, rankdir, show_shapes))
    else:
        target.write_bytes(render(pipeline, extension, rankdir, show_shapes))
    return target
