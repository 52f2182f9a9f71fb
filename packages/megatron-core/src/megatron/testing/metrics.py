"""The metric conformance suite."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np

from megatron.metrics.base import Metric
from megatron.nodes import Input
from megatron.pipeline import Pipeline


def _tuple(value: object) -> tuple:
    return tuple(value)  # type: ignore[call-overload]


@attrs.frozen
class MetricCase:
    """One way to use a metric: how to make it, its inputs, and optionally the expected value."""

    make: Callable[[], Metric]
    inputs: tuple[np.ndarray, ...] = attrs.field(converter=_tuple)
    expected: float | None = None
    name: str | None = None

    def __str__(self) -> str:
        return self.name or getattr(self.make, "__name__", repr(self.make))

    def pipeline(self) -> Pipeline:
        nodes = [Input(f"in{i}", a.shape[1:]) for i, a in enumerate(self.inputs)]
        metric = self.make()(nodes, "metric")
        return Pipeline(nodes, nodes[0], name=f"conformance_{type(metric.metric).__name__}", metrics=[metric])

    def feed(self, arrays: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        return {f"in{i}": a for i, a in enumerate(arrays)}


def check_value(case: MetricCase) -> None:
    """``evaluate`` gives the expected value (when the case states one)."""
    value = case.pipeline().evaluate(case.feed(case.inputs))["metric"]
    if case.expected is not None:
        np.testing.assert_allclose(value, case.expected, err_msg=str(case))


def check_batches_merge_exactly(case: MetricCase) -> None:
    """``evaluate_generator`` over uneven batches equals ``evaluate`` on all the data."""
    pipeline = case.pipeline()
    whole = pipeline.evaluate(case.feed(case.inputs))["metric"]
    n = len(case.inputs[0])
    cuts = [1, n // 3, n // 3 + 2]
    batches = [case.feed(tuple(parts)) for parts in zip(*(np.split(a, cuts) for a in case.inputs))]
    np.testing.assert_allclose(
        pipeline.evaluate_generator(batches)["metric"], whole, rtol=1e-12, err_msg=str(case)
    )


def metric_checks() -> list[Callable[[MetricCase], None]]:
    """Every metric check, for ``pytest.mark.parametrize``."""
    return [check_value, check_batches_merge_exactly]
