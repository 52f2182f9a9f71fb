"""The generic out-of-fold mechanism (``megatron.layers.out_of_fold.OutOfFold``) on a layer of
its own: outputs in row order from any partition of the rows, several outputs, eager mode,
and downstream fits that see the out-of-fold outputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron.errors import ConfigError, GraphError
from megatron.layers.base import StatefulLayer
from megatron.layers.out_of_fold import OutOfFold
from megatron.nodes import Input


class Centre(OutOfFold):
    """Subtracts the mean learned in fit; also gives the mean itself, per row (two outputs)."""

    n_outputs = 2

    def __init__(self, cv=None):
        self.cv = cv

    def fit(self, X):
        self.metadata["mean"] = X.mean(axis=0)

    def transform(self, X):
        mean = self.metadata["mean"]
        return X - mean, np.broadcast_to(mean, X.shape).copy()


class Record(StatefulLayer):
    """Keeps what it was fitted on."""

    def fit(self, X):
        self.metadata["seen"] = X.copy()

    def transform(self, X):
        return X


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_outputs_come_back_in_row_order_from_any_partition(data):
    n = data.draw(st.integers(2, 25))
    k = data.draw(st.integers(2, min(n, 6)))
    folds = np.array(
        data.draw(st.permutations(list(range(k)) + [data.draw(st.integers(0, k - 1)) for _ in range(n - k)]))
    )
    cv = [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in range(k)]
    X = np.arange(n * 2, dtype=float).reshape(n, 2) ** 1.5
    layer = Centre(cv=cv)
    layer(Input("x", (2,)))
    centred, means = layer.fit_transform(X)
    for f in range(k):
        rows = folds == f
        expected = X[~rows].mean(axis=0)
        np.testing.assert_allclose(means[rows], np.broadcast_to(expected, (rows.sum(), 2)))
        np.testing.assert_allclose(centred[rows], X[rows] - expected)
    np.testing.assert_allclose(layer.metadata["mean"], X.mean(axis=0))  # refit on every row


def test_downstream_fits_and_eager_nodes_see_out_of_fold_outputs():
    X = np.arange(12.0).reshape(6, 2)
    x = Input("x", (2,))
    centre, record = Centre(cv=3), Record()
    centred, _ = centre(x, ["centred", "mean"])
    pipeline = megatron.Pipeline(x, record(centred, "recorded"), name="oof")
    pipeline.fit({"x": X})
    expected, _ = Centre(cv=3).fit_transform(X)
    np.testing.assert_allclose(record.metadata["seen"], expected)
    np.testing.assert_allclose(pipeline.transform({"x": X})["recorded"], X - X.mean(axis=0))
    eager, _ = Centre(cv=3)(Input("x", (2,))(X))
    np.testing.assert_allclose(eager.output, expected)


def test_bad_folds_are_refused():
    layer = Centre(cv="five")
    layer(Input("x", (2,)))
    with pytest.raises(ConfigError, match="number of folds"):
        layer.fit_transform(np.zeros((6, 2)))
    overlapping = Centre(cv=[(np.arange(3, 6), np.arange(0, 4)), (np.arange(0, 3), np.arange(3, 6))])
    overlapping(Input("x", (2,)))
    with pytest.raises(ConfigError, match="more than once"):
        overlapping.fit_transform(np.zeros((6, 2)))
    twice = Centre(cv=2)
    twice(Input("x", (2,)))
    with pytest.raises(GraphError, match="called already"):
        twice(Input("y", (2,)))
