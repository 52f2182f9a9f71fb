"""megatron-sklearn's metrics merge their states: every one passes the metric suite (the merge
check included), on fixed data and on generated data split at random, and an empty batch adds
nothing to a log loss."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss

from megatron import metrics
from megatron.plugins import get_registry
from megatron.testing import MetricCase, metric_checks
from megatron.testing.metrics import check_states_merge

MAKERS = {
    "Sklearn": lambda: metrics.Sklearn(brier_score_loss),
    "ROCAUC": lambda: metrics.ROCAUC(),
    "AveragePrecision": lambda: metrics.AveragePrecision(),
    "LogLoss": lambda: metrics.LogLoss(labels=[0, 1]),
}

rng = np.random.default_rng(3)
Y = np.array([0, 1] * 15)
P = np.clip(Y * 0.4 + rng.uniform(0.05, 0.55, size=30), 0.01, 0.99)
PROBABILITIES = np.stack([1 - P, P], axis=1)


def test_every_metric_of_the_plugin_has_a_maker():
    registry = get_registry()
    plugin_metrics = {n for n in registry.names("metric") if registry.entry("metric", n).plugin == "sklearn"}
    assert plugin_metrics == set(MAKERS)


@pytest.mark.parametrize("check", metric_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_metric_passes_the_suite(check, name):
    check(MetricCase(MAKERS[name], (Y, PROBABILITIES), name=name))


def test_an_empty_batch_adds_nothing_to_the_log_loss():
    # scikit-learn refuses an empty log loss; an empty batch (a partition with no rows, every row
    # filtered out) must leave the state as it was
    metric = metrics.LogLoss(labels=[0, 1])
    state = metric.update(metric.initial_state(), Y, PROBABILITIES)
    assert metric.update(state, Y[:0], PROBABILITIES[:0]) == state


@pytest.mark.parametrize("name", sorted(MAKERS))
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_states_merged_over_random_splits_equal_one_pass(name, data):
    n = data.draw(st.integers(2, 40), label="rows")
    y = np.array([0, 1, *data.draw(st.lists(st.integers(0, 1), min_size=n - 2, max_size=n - 2))])
    p = np.array(data.draw(st.lists(st.integers(1, 99), min_size=n, max_size=n))) / 100
    cuts = data.draw(st.lists(st.integers(0, n), max_size=6), label="cuts")
    check_states_merge(MetricCase(MAKERS[name], (y, np.stack([1 - p, p], axis=1)), name=name), cuts=cuts)
