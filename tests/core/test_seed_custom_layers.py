"""The seed's custom-layer examples, verbatim, in pipelines."""

import numpy as np
import pytest

import megatron


class Whiten(megatron.layers.StatefulLayer):
    def fit(self, X):
        self.metadata["mean"] = X.mean(axis=0)
        self.metadata["std"] = X.std(axis=0)

    def transform(self, X):
        return (X - self.metadata["mean"]) / self.metadata["std"]


class RunningMean(megatron.layers.StatefulLayer):
    """A layer with only partial_fit, the seed's other path."""

    def partial_fit(self, X):
        self.metadata["n"] = self.metadata.get("n", 0) + len(X)
        self.metadata["sum"] = self.metadata.get("sum", 0) + X.sum(axis=0)

    def transform(self, X):
        return X - self.metadata["sum"] / self.metadata["n"]


def dot_product(X, Y):
    return np.dot(X, Y)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return {"X": rng.normal(3, 2, size=(50, 4)), "W": rng.normal(size=(4, 4))}


def test_whiten_fits_and_transforms(data):
    X = megatron.nodes.Input("X", (4,))
    white = Whiten()(X, "white")
    pipeline = megatron.Pipeline(X, white, name="whiten")
    pipeline.fit(data)
    out = pipeline.transform(data)["white"]
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1)


def test_lambda_dot_product(data):
    X_node = megatron.nodes.Input("X", (4,))
    Y_node = megatron.nodes.Input("W", (4,))
    dot_xy = megatron.layers.Lambda(dot_product)([X_node, Y_node], "dot_product_result")
    pipeline = megatron.Pipeline([X_node, Y_node], dot_xy, name="dot")
    X, W = data["X"][:4], data["W"]
    out = pipeline.transform({"X": X, "W": W})
    np.testing.assert_array_equal(out["dot_product_result"], np.dot(X, W))


def test_partial_fit_layer_matches_fit_over_batches(data):
    X = megatron.nodes.Input("X", (4,))
    centred = RunningMean()(X, "centred")
    pipeline = megatron.Pipeline(X, centred, name="running")
    for start in range(0, 50, 10):
        pipeline.partial_fit({"X": data["X"][start : start + 10]})
    incremental = pipeline.transform(data)["centred"]
    pipeline.fit(data)  # fit() resets, then learns the whole batch at once
    np.testing.assert_allclose(incremental, pipeline.transform(data)["centred"])
    np.testing.assert_allclose(incremental.mean(axis=0), 0, atol=1e-12)


def test_partial_fit_refused_for_layer_without_it(data):
    X = megatron.nodes.Input("X", (4,))
    pipeline = megatron.Pipeline(X, Whiten()(X, "white"), name="whiten")
    with pytest.raises(megatron.errors.IncrementalFitError, match="no partial_fit"):
        pipeline.partial_fit(data)
