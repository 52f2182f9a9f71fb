"""``Pipeline.summary()``: a table of the graph, like Keras's ``model.summary()``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from megatron.errors import MegatronError
from megatron.outline import Outline, describe_layer, outline, state_size

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline

__all__ = ["describe_layer", "render", "state_size", "summary", "summary_text"]


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _named(spec: str, names: list[str] | None) -> str:
    """A spec with the first feature names of its last axis, where known (not for one value
    per observation, whose one name is the node's own or its input's)."""
    if not names or spec.startswith("()"):
        return spec
    shown = ", ".join(names[:2]) + (f", ... +{len(names) - 2}" if len(names) > 2 else "")
    return f"{spec} [{shown}]"


def render(view: Outline, features: Mapping[str, list[str] | None] | None = None) -> str:
    """The summary table of an outline as text; ``features`` adds each node's feature names."""
    features = features or {}
    outputs = set(view.outputs)
    rows = [("Node", "Layer", "Output", "Inputs", "State")]
    for name, spec in view.inputs:
        rows.append((f"{name} [input]", "Input", _named(spec, features.get(name)), "", ""))
    for step in view.steps:
        inputs = ", ".join(step.features)
        if step.targets:
            inputs += " | targets: " + ", ".join(step.targets)
        if not step.stateful:
            state = "-"
        elif step.shared:
            state = "shared"
        else:
            state = _bytes(step.state_bytes) if step.fitted else "not fitted"
        for i, (node, spec) in enumerate(zip(step.outputs, step.specs)):
            mark = " [output]" if node in outputs else ""
            first = i == 0
            rows.append(
                (
                    node + mark,
                    step.description if first else '"',
                    _named(spec, features.get(node)),
                    inputs if first else "",
                    state if first else "",
                )
            )
    for metric in view.metrics:
        rows.append((f"{metric.name} [metric]", metric.metric, "scalar", ", ".join(metric.inputs), ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    line = "  ".join("-" * w for w in widths)
    text = [f'Pipeline "{view.name}"' + (f" version {view.version}" if view.version else ""), line]
    for number, row in enumerate(rows):
        text.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if number == 0:
            text.append(line)
    text.append(line)
    layers = view.layers
    stateful = [step for step in layers if step.stateful]
    fitted = [step for step in stateful if step.fitted]
    total = sum(step.state_bytes for step in fitted)
    text.append(
        f"Inputs: {len(view.inputs)}  Outputs: {len(view.outputs)}  Layers: {len(layers)} "
        f"({len(stateful)} stateful, {len(fitted)} fitted)  Metrics: {len(view.metrics)}  "
        f"{view.state_label}: {_bytes(total)}"
    )
    return "\n".join(text)


def summary_text(pipeline: Pipeline) -> str:
    """The summary table of ``pipeline`` as text, with the feature names it knows."""
    try:
        features = pipeline._graph_feature_names()
    except MegatronError:  # a layer that cannot name its features does not stop the summary
        features = {}
    return render(outline(pipeline), features) + _folded(pipeline)


def _folded(pipeline: Pipeline) -> str:
    """A line for each chain of layers the transform plan runs as one affine map."""
    try:
        chains = pipeline.plan_of("transform").folded
    except MegatronError:
        return ""
    return "".join(
        f"\nFolded at transform: {' -> '.join(layer.name for layer in chain.layers)} (one affine map)"
        for chain in chains
    )


def summary(pipeline: Pipeline, print_fn: Callable[[str], Any] | None = None) -> None:
    """Print the summary table of ``pipeline``, or hand it to ``print_fn`` (Keras's convention)."""
    (print if print_fn is None else print_fn)(summary_text(pipeline))
