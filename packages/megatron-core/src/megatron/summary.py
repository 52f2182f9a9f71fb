"""``Pipeline.summary()``: a table of the graph, like Keras's ``model.summary()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.layers.base import Layer

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline

KEY_HYPERPARAMETERS = 3


def state_size(layer: Layer) -> int:
    """Bytes of what a layer learned: its ``state_size()`` if it has one, else the arrays in
    its ``metadata``."""
    custom = getattr(layer, "state_size", None)
    if callable(custom):
        return int(custom())
    total = 0
    for value in getattr(layer, "metadata", {}).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, dict):
            total += sum(v.nbytes for v in value.values() if isinstance(v, np.ndarray))
    return total


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    if hasattr(value, "get_params") or hasattr(value, "count_params"):
        return type(value).__name__
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def describe_layer(layer: Layer) -> str:
    """The layer's class with its first few hyperparameters."""
    params = list(layer.get_config().items())[:KEY_HYPERPARAMETERS]
    inside = ", ".join(f"{k}={_short(v)}" for k, v in params)
    return f"{type(layer).__name__}({inside})"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def summary(pipeline: Pipeline) -> str:
    """The summary table of ``pipeline`` as text."""
    outputs = {id(n) for n in pipeline.outputs}
    rows = [("Node", "Layer", "Output", "Inputs", "State")]
    for node in pipeline.inputs:
        rows.append((f"{node.name} [input]", "Input", str(node.spec), "", ""))
    seen_layers: set[int] = set()
    for op in pipeline._ops:
        layer = op.layer
        inputs = ", ".join(n.name for n in op.features)
        if op.targets:
            inputs += " | targets: " + ", ".join(n.name for n in op.targets)
        if layer.stateful:
            fitted = layer.fitted  # type: ignore[attr-defined]
            state = (
                (_bytes(state_size(layer)) if fitted else "not fitted")
                if id(layer) not in seen_layers
                else "shared"
            )
        else:
            state = "-"
        seen_layers.add(id(layer))
        for i, node in enumerate(op.visible_outputs):
            mark = " [output]" if id(node) in outputs else ""
            rows.append(
                (
                    node.name + mark,
                    describe_layer(layer) if i == 0 else '"',
                    str(node.spec),
                    inputs if i == 0 else "",
                    state if i == 0 else "",
                )
            )
    for metric in pipeline.metrics:
        rows.append(
            (
                f"{metric.name} [metric]",
                type(metric.metric).__name__,
                "scalar",
                ", ".join(n.name for n in metric.inputs),
                "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    line = "  ".join("-" * w for w in widths)
    text = [
        f'Pipeline "{pipeline.name}"' + (f" version {pipeline.version}" if pipeline.version else ""),
        line,
    ]
    for number, row in enumerate(rows):
        text.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if number == 0:
            text.append(line)
    text.append(line)
    stateful = [layer for layer in pipeline.layers if layer.stateful]
    fitted = [layer for layer in stateful if layer.fitted]  # type: ignore[attr-defined]
    total = sum(state_size(layer) for layer in fitted)
    text.append(
        f"Inputs: {len(pipeline.inputs)}  Outputs: {len(pipeline.outputs)}  Layers: {len(pipeline.layers)} "
        f"({len(stateful)} stateful, {len(fitted)} fitted)  Metrics: {len(pipeline.metrics)}  "
        f"Fitted state: {_bytes(total)}"
    )
    return "\n".join(text)
