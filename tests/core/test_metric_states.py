"""Metric states merge: ``Metric.merge`` (the generic rules and the built-ins' own), states that
no metric changes, and the conformance check ``check_states_merge`` on generated data split at
random, for every built-in metric."""

from __future__ import annotations

import copy
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from megatron import metrics
from megatron.errors import MetricError
from megatron.plugins import get_registry
from megatron.plugins.builtin import METRICS
from megatron.testing import MetricCase
from megatron.testing.metrics import check_states_merge


def test_the_generic_merge_adds_numbers_arrays_and_sequences_and_mappings_by_key():
    merge = metrics.Metric().merge
    assert merge(3, 4) == 7 and merge(0.5, 2) == 2.5
    assert merge(np.array([1, 2]), np.array([10, 20])).tolist() == [11, 22]
    assert merge((1, 2.0), (3, 4.0)) == (4, 6.0) and merge([1, 2], [3, 4]) == [4, 6]
    pair = namedtuple("pair", "hits total")
    assert merge(pair(1, 2), pair(3, 4)) == pair(4, 6)
    merged = merge({"a": 1, "b": (1, 1)}, {"c": 5, "b": (2, 3)})
    assert merged == {"a": 1, "b": (3, 4), "c": 5} and list(merged) == ["a", "b", "c"]
    nested = merge({"x": [np.ones(2), 1]}, {"x": [np.ones(2), 2]})
    assert nested["x"][0].tolist() == [2.0, 2.0] and nested["x"][1] == 3


def test_the_collecting_metric_concatenates_its_batches_without_changing_them():
    metric = metrics.Metric(lambda y: float(np.median(y)))
    first = metric.update(metric.initial_state(), np.array([1.0, 2.0]))
    second = metric.update(metric.initial_state(), np.array([30.0]))
    merged = metric.merge(first, second)
    assert [batch[0].tolist() for batch in merged] == [[1.0, 2.0], [30.0]]
    assert len(first) == 1 and len(second) == 1
    assert metric.result(merged) == 2.0
    assert metric.merge(metric.initial_state(), first) == first


def test_update_leaves_the_state_it_is_given_unchanged():
    # Precision/Recall/F1 used to add a batch's counts into the dict they were given, and the
    # collecting Metric(fn) appended to its list
    y, p = np.array([0, 1, 2, 1]), np.array([0, 1, 1, 1])
    for metric in (metrics.Precision(average="macro"), metrics.Recall(), metrics.F1(), metrics.Metric(len)):
        state = metric.update(metric.initial_state(), y, p)
        kept = copy.deepcopy(state)
        metric.update(state, y, p)
        np.testing.assert_equal(state, kept, err_msg=type(metric).__name__)
        initial = metric.initial_state()
        metric.update(initial, y, p)
        assert len(initial) == 0


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (True, False, "a boolean has no sum"),
        (np.ones(2), np.ones(3), r"arrays of shapes \(2,\) and \(3,\) do not add"),
        ((1, 2), (1, 2, 3), "sequences of lengths 2 and 3"),
        ({"k": "text"}, {"k": "more"}, r"state\['k'\]: cannot merge a state of type str"),
        (None, 1, "type NoneType with one of type int"),
    ],
)
def test_the_generic_merge_refuses_states_it_does_not_know_and_names_the_metric(a, b, message):
    with pytest.raises(MetricError, match=message) as caught:
        metrics.Accuracy().merge(a, b)
    assert "Metric Accuracy's state" in str(caught.value) and "define merge(a, b)" in str(caught.value)


def test_the_macro_average_does_not_depend_on_the_order_classes_were_seen():
    # precisions 0.1, 0.2 and 0.3, whose float sum depends on the order: the classes come in the
    # order batches show them, so a split of the data (a merge) used to change the last digit
    p = np.repeat([0, 1, 2], 10)
    y = np.where(np.tile(np.arange(10), 3) < np.repeat([1, 2, 3], 10), p, 3)
    metric = metrics.Precision(average="macro")
    whole = metric.update(metric.initial_state(), y, p)
    later_first = metric.merge(metric.update(metric.initial_state(), y[20:], p[20:]),
                               metric.update(metric.initial_state(), y[:20], p[:20]))  # fmt: skip
    assert list(later_first)[:3] == [2, 3, 0] and list(whole)[:3] == [0, 1, 2]
    assert metric.result(later_first) == metric.result(whole) == 0.15  # the exactly rounded mean


@pytest.mark.parametrize("metric", [metrics.Precision, metrics.Recall, metrics.F1])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 200), classes=st.integers(1, 6))
def test_class_averages_do_not_depend_on_the_order_of_the_classes(metric, seed, rows, classes):
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, classes, rows), rng.integers(0, classes, rows)
    for average in ("macro", "micro"):
        scored = metric(average=average)
        state = scored.update(scored.initial_state(), y, p)
        items = list(state.items())
        shuffled = dict(items[i] for i in rng.permutation(len(items)))
        assert scored.result(shuffled) == scored.result(state)


# -- the conformance check catches what it is meant to catch -------------------------------------


class SharedState(metrics.Metric):
    """Counts kept in the list it is given (the defect ``_Confusion`` had)."""

    def initial_state(self):
        return [0, 0]

    def update(self, state, y_true, y_pred):
        state[0] += int((y_true == y_pred).sum())
        state[1] += len(y_true)
        return state

    def result(self, state):
        return state[0] / state[1] if state[1] else float("nan")


class Largest(metrics.Metric):
    """A running maximum without its own merge: the generic merge adds the maxima."""

    def initial_state(self):
        return 0.0

    def update(self, state, y_true, y_pred):
        return max(state, float(np.abs(y_true - y_pred).max())) if len(y_true) else state

    def result(self, state):
        return state


class MergesInPlace(metrics.Accuracy):
    def merge(self, a, b):
        a = list(a) if isinstance(a, tuple) else a
        a[0] += b[0]
        a[1] += b[1]
        return a


class NotAnIdentity(metrics.Accuracy):
    def merge(self, a, b):
        return (a[0] + b[0], a[1] + b[1] + 1)

    def result(self, state):
        return state[0] / max(state[1], 1)


Y, P = np.array([0, 1, 1, 0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 1, 1, 1, 1])


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (SharedState, "update changed the state or the inputs it was given"),
        (Largest, r"merged in order, against one pass \(sums"),
        (MergesInPlace, "merge changed a state it was given"),
        (NotAnIdentity, "counts"),
    ],
)
def test_the_check_catches_shared_states_wrong_merges_and_a_non_identity(metric, message):
    with pytest.raises(AssertionError, match=message):
        check_states_merge(MetricCase(metric, (Y, P), name=metric.__name__))


# -- every built-in metric, on generated data split at random -------------------------------------

# values on a grid of eighths: every sum of them and of their squares is exact, so merged states
# must give the very result of one pass, whatever the split
GRID = st.integers(-8000, 8000).map(lambda k: k / 8)


@st.composite
def labelled(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions: labels, probabilities of class 1, or class probabilities."""
    n = draw(st.integers(1, 40))
    if draw(st.booleans()):
        classes = draw(st.sampled_from([[0, 1], [0, 1, 2], ["a", "b", "c"]]))
        y = np.array(draw(st.lists(st.sampled_from(classes), min_size=n, max_size=n)))
        p = np.array(draw(st.lists(st.sampled_from(classes), min_size=n, max_size=n)))
        if draw(st.booleans()):  # predictions in blocks, latest class first: parts see other orders
            order = np.argsort(p, kind="stable")[::-1]
            y, p = y[order], p[order]
        return y, p
    y = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    scores = np.array(draw(st.lists(st.integers(0, 8), min_size=3 * n, max_size=3 * n)), dtype=float)
    p = scores.reshape(n, 3) / 8
    return y, (p[:, 0] if draw(st.booleans()) else p)


@st.composite
def regressed(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 40))
    y = np.array(draw(st.lists(GRID, min_size=n, max_size=n)))
    return y, np.array(draw(st.lists(GRID, min_size=n, max_size=n)))


def median_error(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.median(y - p))


GENERATED = {
    "Metric": (lambda: metrics.Metric(median_error), regressed()),
    "Accuracy": (metrics.Accuracy, labelled()),
    "Precision": (lambda: metrics.Precision(average="macro"), labelled()),
    "Recall": (lambda: metrics.Recall(average="micro"), labelled()),
    "F1": (metrics.F1, labelled()),
    "MeanSquaredError": (metrics.MeanSquaredError, regressed()),
    "MeanAbsoluteError": (metrics.MeanAbsoluteError, regressed()),
    "R2": (metrics.R2, regressed()),
}


def test_every_built_in_metric_is_generated():
    builtin = {name for names in METRICS.values() for name in names}
    assert set(GENERATED) == builtin and builtin <= set(get_registry().names("metric"))


@pytest.mark.parametrize("name", sorted(GENERATED))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_states_merged_over_random_splits_equal_one_pass(name, data):
    make, inputs = GENERATED[name]
    y, p = data.draw(inputs, label="inputs")
    cuts = data.draw(st.lists(st.integers(0, len(y)), max_size=6), label="cuts")
    if name == "F1" and y.dtype.kind == "U":  # binary F1 scores the class 1
        make = lambda: metrics.F1(pos_label="b")  # noqa: E731
    check_states_merge(MetricCase(make, (y, p), name=name), cuts=cuts)
