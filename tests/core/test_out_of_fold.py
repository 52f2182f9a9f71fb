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
from megatron.layers.out_of_fold import OutOfFold, checked_cv, checked_splits
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
    with pytest.raises(ConfigError, match="fold 0 of cv= trains on 1 of its own 4 test rows"):
        overlapping.fit_transform(np.zeros((6, 2)))
    twice_tested = Centre(cv=[(np.arange(4, 6), np.arange(0, 4)), (np.arange(0, 3), np.arange(3, 6))])
    twice_tested(Input("x", (2,)))
    with pytest.raises(ConfigError, match="1 rows in several test folds \\(first: row 3\\)"):
        twice_tested.fit_transform(np.zeros((6, 2)))
    twice = Centre(cv=2)
    twice(Input("x", (2,)))
    with pytest.raises(GraphError, match="called already"):
        twice(Input("y", (2,)))


def test_a_fold_that_trains_on_its_own_test_rows_is_refused_with_its_number():
    """Every row is tested once, but each fold trains on all rows: in-sample outputs."""
    everything = np.arange(8)
    leaky = [(everything, np.arange(0, 4)), (everything, np.arange(4, 8))]
    with pytest.raises(ConfigError, match="fold 0 of cv= trains on 4 of its own 4 test rows"):
        checked_cv(leaky, "layer 'l'")
    layer = Centre(cv=leaky)  # set directly, past the check at build time: refused at fit
    layer(Input("x", (2,)))
    with pytest.raises(ConfigError, match="in-sample"):
        layer.fit_transform(np.zeros((8, 2)))


def test_fold_positions_out_of_range_of_another_dtype_or_shape_are_refused():
    n = 6
    half, other = np.arange(3), np.arange(3, 6)
    cases = {
        "outside the rows 0..5": [(half, np.array([3, 4, 6])), (other, half)],
        "row -1, outside": [(half, np.array([-1, 3, 4])), (other, half)],
        "integer positions": [(half, other + 0.5), (other, half)],
        "a \\(train, test\\) pair": [(half, other, half), (other, half)],
        "1-D list": [(half, other.reshape(3, 1)), (other, half)],
        "boolean mask of shape \\(4,\\)": [(np.ones(4, bool), other), (other, half)],
    }
    for message, folds in cases.items():
        with pytest.raises(ConfigError, match=message):
            checked_splits(folds, n, "layer 'l'")
    mask = np.arange(n) < 3  # boolean masks of one value per row are the rows they mark
    splits = checked_splits([(~mask, mask), (mask, ~mask)], n, "layer 'l'")
    np.testing.assert_array_equal(splits[0][1], half)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_generated_fold_lists_are_accepted_exactly_when_they_partition_the_rows_without_leaks(data):
    """Folds drawn at random, valid or not: accepted exactly when every row is in one test fold
    and no fold's training rows hold its test rows (what scikit-learn's cross_val_predict
    requires); otherwise refused with a ConfigError, never an IndexError or silent outputs."""
    n = data.draw(st.integers(2, 12))
    k = data.draw(st.integers(1, min(n, 4)))
    rows = st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True)
    if data.draw(st.booleans()):  # a partition into k folds, some of whose train rows may leak
        assigned = np.array(
            data.draw(st.permutations([*range(k), *(data.draw(st.integers(0, k - 1)) for _ in range(n - k))]))
        )
        folds = []
        for f in range(k):
            train, test = np.flatnonzero(assigned != f), np.flatnonzero(assigned == f)
            leaked = data.draw(st.lists(st.sampled_from(list(test)), max_size=2, unique=True))
            folds.append((np.union1d(train, leaked).astype(int), test))
        if any(not len(train) for train, _ in folds):
            return
    else:  # any fold lists
        folds = [(np.array(data.draw(rows)), np.array(data.draw(rows))) for _ in range(k)]
    tested = np.zeros(n, dtype=int)
    for _, test in folds:
        tested[test] += 1
    valid = (
        k >= 2
        and bool(np.all(tested == 1))
        and all(not np.intersect1d(train, test).size for train, test in folds)
    )
    layer = Centre(cv=folds)
    layer(Input("x", (1,)))
    X = np.arange(n, dtype=float).reshape(n, 1)
    if valid:
        centred, _ = layer.fit_transform(X)
        for train, test in folds:
            np.testing.assert_allclose(centred[test], X[test] - X[train].mean(axis=0))
    else:
        with pytest.raises(ConfigError, match="cv="):
            layer.fit_transform(X)
