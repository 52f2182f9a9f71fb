"""The metric conformance suite."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import numpy as np

from megatron.graph.node import Input
from megatron.metrics.base import Metric
from megatron.pipeline import Pipeline


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


@attrs.frozen
class MetricCase:
    """One way to use a metric: how to make it, its inputs, and optionally the expected value."""

    make: Callable[[], Metric]
    inputs: tuple[np.ndarray, ...] = attrs.field(converter=_tuple)
    expected: float | None = None
    name: str | None = None
    custom_objects: Mapping[str, Any] = attrs.field(factory=dict)
    """For ``load_pipeline`` in the save and reload check (the metric's class and functions are
    given already)."""

    def __str__(self) -> str:
        return self.name or str(getattr(self.make, "__name__", repr(self.make)))

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


def check_merge(case: MetricCase) -> None:
    """A metric that defines ``merge(state, other)`` merges the states of two parts of the data
    into the state of all of it (skipped for metrics without ``merge``)."""
    metric = case.make()
    merge = getattr(metric, "merge", None)
    if merge is None:
        return
    n = len(case.inputs[0])
    for cut in (0, 1, n // 2, n):
        parts = [tuple(a[:cut] for a in case.inputs), tuple(a[cut:] for a in case.inputs)]
        states = [metric.update(metric.initial_state(), *part) for part in parts]
        whole = metric.update(metric.initial_state(), *case.inputs)
        np.testing.assert_allclose(
            metric.result(merge(*states)),
            metric.result(whole),
            rtol=1e-12,
            err_msg=f"{case}: merging the states of rows [:{cut}] and [{cut}:]",
        )


def check_save_and_reload(case: MetricCase) -> None:
    """A pipeline with the metric, saved and loaded back, evaluates to the same value: the
    metric's parameters are ``__init__`` arguments kept as attributes of the same names."""
    from megatron.errors import MegatronError
    from megatron.testing.layers import objects_for_loading, save_and_reload

    pipeline = case.pipeline()
    before = pipeline.evaluate(case.feed(case.inputs))["metric"]
    (metric,) = [m.metric for m in pipeline.metrics]
    try:
        loaded = save_and_reload(pipeline, objects_for_loading(metric, given=case.custom_objects))
    except MegatronError as exc:
        raise AssertionError(
            f"{case}: the pipeline with the metric does not save and load back: {exc}"
        ) from exc
    after = loaded.evaluate(case.feed(case.inputs))["metric"]
    np.testing.assert_allclose(after, before, rtol=1e-12, err_msg=f"{case}: after saving and loading back")


def metric_checks() -> list[Callable[[MetricCase], None]]:
    """Every metric check, for ``pytest.mark.parametrize``."""
    return [check_value, check_batches_merge_exactly, check_merge, check_save_and_reload]
