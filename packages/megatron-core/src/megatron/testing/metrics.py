"""The metric conformance suite."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def check_states_merge(case: MetricCase, cuts: Sequence[int] | None = None) -> None:
    """Merging states equals one pass: the case's rows are split into parts (at ``cuts``, row
    positions; by default a few fixed splits, empty parts and one row per part included), a
    fresh state is updated per part, and the states are merged in order and as a tree of
    pairs. Both give the result of one update over all the rows: bit-identical where the state
    holds counts only (integers), within 1e-12 relative otherwise (sums), and the same counts.
    Merging with the initial state, on either side, gives the state back; neither ``update``
    nor ``merge`` changes the states or inputs it is given."""
    metric = case.make()
    n = len(case.inputs[0])
    splits = [list(cuts)] if cuts is not None else [[0], [1], [n // 2], [n], [n // 3, n // 3, 2 * n // 3]]
    if cuts is None and n <= 64:
        splits.append(list(range(1, n)))
    whole = _updated(metric, metric.initial_state(), case.inputs, f"{case}: update over all the rows")
    for split in splits:
        bounds = [0, *sorted(min(max(c, 0), n) for c in split), n]
        where = f"{case}: rows split at {bounds[1:-1]}"
        parts = [tuple(a[i:j] for a in case.inputs) for i, j in itertools.pairwise(bounds)]
        states = [_updated(metric, metric.initial_state(), part, where) for part in parts]
        in_order = states[0]
        for state in states[1:]:
            in_order = _merged(metric, in_order, state, where)
        tree = states
        while len(tree) > 1:
            pairs = [_merged(metric, tree[i], tree[i + 1], where) for i in range(0, len(tree) - 1, 2)]
            tree = pairs + tree[len(tree) - len(tree) % 2 :]
        for merged, how in ((in_order, "merged in order"), (tree[0], "merged as a tree")):
            _assert_same_counts(merged, whole, f"{where}, {how}, against one pass: state")
            _assert_same_result(metric, merged, whole, f"{where}, {how}, against one pass")
        for state in states:
            for merged, side in (
                (_merged(metric, metric.initial_state(), state, where), "after"),
                (_merged(metric, state, metric.initial_state(), where), "before"),
            ):
                if not _identical(merged, state):
                    raise AssertionError(
                        f"{where}: merging a state with the initial state {side} it does not give it back: "
                        f"{state!r} became {merged!r}"
                    )


def _updated(metric: Metric, state: Any, inputs: tuple[np.ndarray, ...], where: str) -> Any:
    before = copy.deepcopy((state, inputs))
    new = metric.update(state, *inputs)
    if not _identical((state, inputs), before):
        raise AssertionError(f"{where}: update changed the state or the inputs it was given")
    return new


def _merged(metric: Metric, a: Any, b: Any, where: str) -> Any:
    before = copy.deepcopy((a, b))
    merged = metric.merge(a, b)
    if not _identical((a, b), before):
        raise AssertionError(f"{where}: merge changed a state it was given")
    return merged


def _identical(a: Any, b: Any) -> bool:
    """Whether two states are equal, value for value (NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        nan = a.dtype.kind in "fc" and b.dtype.kind in "fc"
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=nan))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return list(a) == list(b) and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
    if isinstance(a, (float, np.floating)) and isinstance(b, (float, np.floating)):
        return bool(a == b or (np.isnan(a) and np.isnan(b)))
    equality: Any = type(a).__eq__
    if type(a) is type(b) and equality is object.__eq__ and hasattr(a, "__dict__"):
        return _identical(vars(a), vars(b))  # an object without its own equality: its attributes
    return bool(a == b)


def _counts_only(state: Any) -> bool:
    """Whether a state holds integers only (counts), for which merging must be exact."""
    if isinstance(state, np.ndarray):
        return state.dtype.kind in "biu"
    if isinstance(state, Mapping):
        return all(map(_counts_only, state.values()))
    if isinstance(state, (list, tuple)):
        return all(map(_counts_only, state))
    return isinstance(state, (int, np.integer))


def _assert_same_counts(merged: Any, whole: Any, where: str) -> None:
    """The integers of two states of the same structure are equal (mappings compared by key,
    whatever their order); parts of other types are left to the comparison of results."""
    if isinstance(merged, Mapping) and isinstance(whole, Mapping):
        if set(merged) != set(whole):
            raise AssertionError(
                f"{where} has keys {sorted(map(repr, merged))}, not {sorted(map(repr, whole))}"
            )
        for key in whole:
            _assert_same_counts(merged[key], whole[key], f"{where}[{key!r}]")
    elif type(merged) is tuple and type(whole) is tuple and len(merged) == len(whole):
        for i, (x, y) in enumerate(zip(merged, whole)):
            _assert_same_counts(x, y, f"{where}[{i}]")
    elif isinstance(merged, list):  # collected batches (split otherwise): their result is compared
        return
    elif _counts_only(merged) and _counts_only(whole) and not _identical(merged, whole):
        raise AssertionError(f"{where}: counts {merged!r} differ from {whole!r}")


def _assert_same_result(metric: Metric, merged: Any, whole: Any, where: str) -> None:
    got, expected = metric.result(merged), metric.result(whole)
    if _counts_only(merged) and _counts_only(whole):
        np.testing.assert_array_equal(got, expected, err_msg=f"{where} (counts: bit-identical)")
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=f"{where} (sums: 1e-12 relative)")


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
    return [check_value, check_batches_merge_exactly, check_states_merge, check_save_and_reload]
