"""Fit-time arguments routed to the layers that take them (``megatron.routing``): sample
weights reach scikit-learn's ``fit``, and an argument that would go unused is an error."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDRegressor
from sklearn.preprocessing import StandardScaler

import megatron
from megatron.errors import ConfigError, DataError
from megatron.nodes import Input
from megatron_sklearn import Sklearn


def regression(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=n)
    return X, y, rng.uniform(0.1, 3.0, size=n)


def weighted_pipeline():
    x, t, w = Input("x", (3,)), Input("y"), Input("w")
    scaled = Sklearn(StandardScaler())(x, "scaled")
    model = Sklearn(LinearRegression())
    model.name = "model"
    return megatron.Pipeline([x, t, w], model([scaled, t], "preds"), name="weighted"), model


def test_sample_weight_reaches_every_layer_that_takes_it():
    X, y, w = regression()
    pipeline, model = weighted_pipeline()
    pipeline.fit({"x": X, "y": y}, sample_weight=w)
    scaled = StandardScaler().fit(X, sample_weight=w).transform(X)
    np.testing.assert_allclose(
        model.estimator.coef_, LinearRegression().fit(scaled, y, sample_weight=w).coef_
    )
    unweighted = LinearRegression().fit(StandardScaler().fit_transform(X), y).coef_
    assert np.abs(model.estimator.coef_ - unweighted).max() > 1e-3


def test_per_layer_fit_params_by_layer_or_node_name_and_weights_from_an_input():
    X, y, w = regression()
    expected = LinearRegression().fit(StandardScaler().fit_transform(X), y, sample_weight=w).coef_
    for target in ("model", "preds"):
        pipeline, model = weighted_pipeline()
        pipeline.fit({"x": X, "y": y}, fit_params={target: {"sample_weight": w}})
        np.testing.assert_allclose(model.estimator.coef_, expected)
    pipeline, model = weighted_pipeline()
    pipeline.fit({"x": X, "y": y, "w": w}, fit_params={"model": {"sample_weight": "w"}})
    np.testing.assert_allclose(model.estimator.coef_, expected)


def test_unused_or_misspelt_arguments_and_wrong_lengths_are_errors():
    X, y, w = regression()
    pipeline, _ = weighted_pipeline()
    data = {"x": X, "y": y}
    with pytest.raises(ConfigError, match="no layer's fit\\(\\) takes it"):
        pipeline.fit(data, sampel_weight=w)
    with pytest.raises(ConfigError, match="Did you mean 'model'"):
        pipeline.fit(data, fit_params={"modle": {"sample_weight": w}})
    with pytest.raises(ConfigError, match="Did you mean 'sample_weight'"):
        pipeline.fit(data, fit_params={"model": {"sample_weigth": w}})
    with pytest.raises(DataError, match="holds 59 values; the data holds 60 rows"):
        pipeline.fit(data, sample_weight=w[:-1])
    with pytest.raises(ConfigError, match="names no node.*Did you mean 'w'"):
        pipeline.fit({**data, "w": w}, fit_params={"model": {"sample_weight": "ww"}})


def filtered_pipeline():
    x, t, w = Input("x", (3,)), Input("y"), Input("w")
    keep = megatron.layers.Filter(lambda x, y, w: y > 0)
    x_kept, y_kept, w_kept = keep([x, t, w], ["x_kept", "y_kept", "w_kept"])
    model = Sklearn(LinearRegression())
    model.name = "model"
    return megatron.Pipeline([x, t, w], model([x_kept, y_kept], "preds"), name="filtered"), model


def test_weights_behind_a_row_filter_stay_aligned_or_are_refused():
    X, y, w = regression()
    pipeline, model = filtered_pipeline()
    with pytest.raises(ConfigError, match="rows kept by 'filter'.*same filter call"):
        pipeline.fit({"x": X, "y": y, "w": w}, sample_weight=w)
    with pytest.raises(ConfigError, match="holds all rows, and the layer sees rows kept by 'filter'"):
        pipeline.fit({"x": X, "y": y, "w": w}, fit_params={"model": {"sample_weight": "w"}})
    pipeline.fit({"x": X, "y": y, "w": w}, fit_params={"model": {"sample_weight": "w_kept"}})
    kept = y > 0
    expected = LinearRegression().fit(X[kept], y[kept], sample_weight=w[kept]).coef_
    np.testing.assert_allclose(model.estimator.coef_, expected)


def test_fit_generator_routes_weights_from_each_batch_and_refuses_whole_arrays():
    X, y, w = regression(90)
    x, t, wi = Input("x", (3,)), Input("y"), Input("w")
    model = Sklearn(SGDRegressor(max_iter=1, tol=None, random_state=0, learning_rate="constant", eta0=0.01))
    pipeline = megatron.Pipeline([x, t, wi], model([x, t], "preds"), name="sgd")
    batches = [{"x": X[i : i + 30], "y": y[i : i + 30], "w": w[i : i + 30]} for i in range(0, 90, 30)]
    pipeline.fit_generator(batches, sample_weight="w")
    reference = SGDRegressor(max_iter=1, tol=None, random_state=0, learning_rate="constant", eta0=0.01)
    for batch in batches:
        reference.partial_fit(batch["x"], batch["y"], sample_weight=batch["w"])
    np.testing.assert_allclose(model.estimator.coef_, reference.coef_)
    with pytest.raises(ConfigError, match="stream of batches cannot cut"):
        pipeline.fit_generator(batches, sample_weight=w)
    pipeline.partial_fit(batches[0], sample_weight=batches[0]["w"])


def test_classifier_weights_and_threads():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 2))
    y = (X[:, 0] > 0).astype(int)
    w = rng.uniform(0.1, 2, 80)
    x, t = Input("x", (2,)), Input("y")
    model = Sklearn(LogisticRegression())
    pipeline = megatron.Pipeline([x, t], model([x, t], "p"), name="c", executor="threads")
    pipeline.fit({"x": X, "y": y}, sample_weight=w)
    np.testing.assert_allclose(model.estimator.coef_, LogisticRegression().fit(X, y, sample_weight=w).coef_)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(4, 30), cut=st.integers(1, 3), seed=st.integers(0, 10))
def test_weights_of_any_wrong_length_are_refused_and_right_ones_equal_sklearn(n, cut, seed):
    X, y, w = regression(n, seed)
    pipeline, model = weighted_pipeline()
    with pytest.raises(DataError, match="values; the data holds"):
        pipeline.fit({"x": X, "y": y}, fit_params={"model": {"sample_weight": w[:-cut]}})
    pipeline.fit({"x": X, "y": y}, fit_params={"model": {"sample_weight": w}})
    expected = LinearRegression().fit(StandardScaler().fit_transform(X), y, sample_weight=w)
    np.testing.assert_allclose(model.estimator.coef_, expected.coef_, rtol=1e-7, atol=1e-9)
