"""The outline of a pipeline: what its summary table and its drawing show.

An :class:`Outline` is plain data (names, classes, specs as text, sizes), made from a
:class:`~megatron.pipeline.Pipeline` by :func:`outline` or read from a saved file by
:func:`megatron.persistence.describe.outline_file` without building the pipeline, so a saved
file's summary and graph need neither its user code nor its plugins' libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.layers.base import Layer, StatefulLayer

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline

KEY_HYPERPARAMETERS = 3


@dataclass(frozen=True)
class Step:
    """One call of a layer: its outputs (names and specs) from its features and targets."""

    layer: str
    """The layer's class name."""
    description: str
    """The class with its first few hyperparameters."""
    outputs: tuple[str, ...]
    specs: tuple[str, ...]
    features: tuple[str, ...]
    targets: tuple[str, ...]
    stateful: bool
    fitted: bool
    state_bytes: int
    shared: bool
    """The layer was called before: its state is counted there."""


@dataclass(frozen=True)
class MetricStep:
    name: str
    metric: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class Outline:
    name: str
    version: str | None
    inputs: tuple[tuple[str, str], ...]
    """Each input's name and spec."""
    steps: tuple[Step, ...]
    outputs: tuple[str, ...]
    metrics: tuple[MetricStep, ...]
    state_label: str = "Fitted state"
    """What the state sizes measure: the arrays in memory, or the bytes a file stores."""

    @property
    def layers(self) -> list[Step]:
        """The first step of each layer."""
        return [step for step in self.steps if not step.shared]


def short_value(value: Any) -> str:
    """A hyperparameter as the summary shows it: arrays by shape, functions and models by name."""
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    if hasattr(value, "get_params") or hasattr(value, "count_params"):
        return type(value).__name__
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def describe(class_name: str, config: list[tuple[str, str]]) -> str:
    """``Class(key=value, ...)`` with the first few hyperparameters, already shown as text."""
    inside = ", ".join(f"{k}={v}" for k, v in config[:KEY_HYPERPARAMETERS])
    return f"{class_name}({inside})"


def describe_layer(layer: Layer) -> str:
    """The layer's class with its first few hyperparameters."""
    config = [(k, short_value(v)) for k, v in layer.get_config().items()]
    return describe(type(layer).__name__, config)


def state_size(layer: Layer) -> int:
    """Bytes of what a layer learned (0 for a stateless layer)."""
    return int(layer.state_size()) if isinstance(layer, StatefulLayer) else 0


def outline(pipeline: Pipeline) -> Outline:
    """The outline of a pipeline in memory."""
    seen: set[int] = set()
    steps = []
    for call in pipeline.graph.calls:
        layer = call.layer
        fitted = bool(layer.stateful and layer.fitted)
        steps.append(
            Step(
                layer=type(layer).__name__,
                description=describe_layer(layer),
                outputs=tuple(n.name for n in call.visible_outputs),
                specs=tuple(str(n.spec) for n in call.visible_outputs),
                features=tuple(n.name for n in call.features),
                targets=tuple(n.name for n in call.targets),
                stateful=layer.stateful,
                fitted=fitted,
                state_bytes=state_size(layer) if fitted else 0,
                shared=id(layer) in seen,
            )
        )
        seen.add(id(layer))
    return Outline(
        name=pipeline.name,
        version=None if pipeline.version is None else str(pipeline.version),
        inputs=tuple((n.name, str(n.spec)) for n in pipeline.inputs),
        steps=tuple(steps),
        outputs=tuple(n.name for n in pipeline.outputs),
        metrics=tuple(
            MetricStep(m.name, type(m.metric).__name__, tuple(n.name for n in m.inputs))
            for m in pipeline.metrics
        ),
    )
