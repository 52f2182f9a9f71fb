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
    x_kept, y_kept, _w_kept = keep([x, t, w], ["x_kept", "y_kept", "w_kept"])
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


def test_a_weight_node_computed_off_the_way_to_the_outputs_is_routed_as_the_node_itself():
    """A weight computed from an input only for the fit is not on the way to any output, so the
    pipeline does not know it by name: the node itself routes it, and the name's error says so."""
    X, y, w = regression()
    x, t, wi = Input("x", (3,)), Input("y"), Input("w")
    squared = megatron.layers.Lambda(lambda v: v**2)(wi, "w2")
    model = Sklearn(LinearRegression())
    model.name = "model"
    pipeline = megatron.Pipeline([x, t, wi], model([x, t], "preds"), name="off")
    data = {"x": X, "y": y, "w": w}
    expected = LinearRegression().fit(X, y, sample_weight=w**2).coef_
    with pytest.raises(
        ConfigError, match="names no node of the pipeline.*as the node itself: sample_weight=node"
    ):
        pipeline.fit(data, fit_params={"model": {"sample_weight": "w2"}})
    pipeline.fit(data, fit_params={"model": {"sample_weight": squared}})
    np.testing.assert_allclose(model.estimator.coef_, expected)
    pipeline.fit(data, sample_weight=squared)
    np.testing.assert_allclose(model.estimator.coef_, expected)
    learned = Sklearn(LinearRegression())([x, wi], "learned")
    with pytest.raises(ConfigError, match="'learned' for layer 'model' is computed by layers that learn"):
        pipeline.fit(data, sample_weight=learned)
    foreign = megatron.layers.Lambda(abs)(Input("v"), "foreign")
    with pytest.raises(
        ConfigError, match="computed from \\['v'\\], which is not among the pipeline's declared"
    ):
        pipeline.fit(data, sample_weight=foreign)


@settings(max_examples=15, deadline=None)
@given(
    steps=st.lists(st.sampled_from(["square", "add", "scale", "cbrt"]), min_size=1, max_size=4),
    seed=st.integers(0, 5),
    stream=st.booleans(),
)
def test_weights_computed_from_an_input_by_any_chain_without_learning_reach_the_model(steps, seed, stream):
    X, y, w = regression(30, seed)
    x, t, wi = Input("x", (3,)), Input("y"), Input("w")
    node, value = wi, w
    layers = megatron.layers
    for step in steps:
        layer, fn = {
            "square": (layers.Lambda(np.square), np.square),
            "add": (layers.ScalarAdd(0.5), lambda v: v + 0.5),
            "scale": (layers.ScalarMultiply(3.0), lambda v: v * 3.0),
            "cbrt": (layers.Lambda(np.cbrt), np.cbrt),
        }[step]
        node, value = layer(node), fn(value)
    if stream:
        model = Sklearn(SGDRegressor(max_iter=1, tol=None, random_state=0))
        pipeline = megatron.Pipeline([x, t, wi], model([x, t], "preds"), name="chain")
        pipeline.fit_generator([{"x": X, "y": y, "w": w}], sample_weight=node)
        reference = SGDRegressor(max_iter=1, tol=None, random_state=0).partial_fit(X, y, sample_weight=value)
    else:
        model = Sklearn(LinearRegression())
        pipeline = megatron.Pipeline([x, t, wi], model([x, t], "preds"), name="chain")
        pipeline.fit({"x": X, "y": y, "w": w}, sample_weight=node)
        reference = LinearRegression().fit(X, y, sample_weight=value)
    np.testing.assert_allclose(model.estimator.coef_, reference.coef_, rtol=1e-6, atol=1e-9)


def estimator_pipeline():
    x, t = Input("x", (3,)), Input("y")
    return megatron.Pipeline([x, t], Sklearn(LinearRegression())([x, t], "output"), name="est")


def test_pipeline_estimator_routes_sample_weight_and_fit_params_as_pipeline_fit_does():
    import sklearn
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

    from megatron_sklearn import PipelineEstimator

    X, y, w = regression(40)
    fitted = PipelineEstimator(estimator_pipeline, estimator_type="regressor").fit(X, y, sample_weight=w)
    np.testing.assert_allclose(fitted.predict(X), LinearRegression().fit(X, y, sample_weight=w).predict(X))
    by_layer = PipelineEstimator(estimator_pipeline, estimator_type="regressor")
    by_layer.fit(X, y, fit_params={"output": {"sample_weight": w}})
    np.testing.assert_allclose(by_layer.predict(X), fitted.predict(X))
    with pytest.raises(ConfigError, match="no layer's fit"):
        PipelineEstimator(estimator_pipeline).fit(X, y, sampel_weight=w)
    folds = KFold(4)
    got = cross_val_score(
        PipelineEstimator(estimator_pipeline, estimator_type="regressor"),
        X,
        y,
        cv=folds,
        params={"sample_weight": w},
    )
    want = cross_val_score(LinearRegression(), X, y, cv=folds, params={"sample_weight": w})
    np.testing.assert_allclose(got, want)
    with sklearn.config_context(enable_metadata_routing=True):
        requested = PipelineEstimator(estimator_pipeline, estimator_type="regressor").set_fit_request(
            sample_weight=True
        )
        reference = (
            LinearRegression().set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        )
        grid = {"output__fit_intercept": [True, False]}
        search = GridSearchCV(requested, grid, cv=folds).fit(X, y, sample_weight=w)
        expected = GridSearchCV(reference, {"fit_intercept": [True, False]}, cv=folds).fit(
            X, y, sample_weight=w
        )
        np.testing.assert_allclose(
            search.cv_results_["mean_test_score"], expected.cv_results_["mean_test_score"]
        )
