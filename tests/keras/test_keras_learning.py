"""Keras models with cv= (out-of-fold outputs), routed fit arguments and feature names."""

import keras
import numpy as np
import pytest

import megatron
from megatron.errors import IncrementalFitError
from megatron.nodes import Input
from megatron_keras import Keras

FIT = {"epochs": 2, "batch_size": 8, "shuffle": False}


def regression_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4, activation="relu")(inputs)))
    model.compile(optimizer="adam", loss="mse")
    return model


def data(n=30):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)).astype("float32")
    return X, np.column_stack([X.sum(1), X[:, 0]]).astype("float32")


def fresh_fit(X, y, **params):
    """A model with the same starting weights and optimizer, trained on (X, y)."""
    model = regression_model()
    model.fit(X, y, verbose=0, **FIT, **params)
    return model


def test_out_of_fold_outputs_come_from_models_trained_from_the_same_start_without_the_fold():
    X, y = data()
    layer = Keras(regression_model(), fit_kwargs=FIT, cv=3)
    x, t = Input("x", (3,)), Input("y", (2,))
    preds = layer([x, t], "preds")
    out = layer.fit_transform(X, y)
    for test in np.array_split(np.arange(len(X)), 3):
        train = np.setdiff1d(np.arange(len(X)), test)
        np.testing.assert_allclose(
            out[test], fresh_fit(X[train], y[train]).predict(X[test], verbose=0), atol=1e-5
        )
    # transform uses the model refit on every row from the same start
    np.testing.assert_allclose(layer.transform(X), fresh_fit(X, y).predict(X, verbose=0), atol=1e-5)
    pipeline = megatron.Pipeline([x, t], preds, name="k")
    with pytest.raises(IncrementalFitError, match="cv="):
        pipeline.fit_generator([{"x": X, "y": y}])


def test_sample_weight_reaches_model_fit_and_feature_names_are_numbered():
    X, y = data()
    w = np.linspace(0.1, 2.0, len(X)).astype("float32")
    x, t = Input("x", (3,)), Input("y", (2,))
    layer = Keras(regression_model(), fit_kwargs=FIT)
    layer.name = "net"
    pipeline = megatron.Pipeline([x, t], layer([x, t], "preds"), name="kw")
    pipeline.fit({"x": X, "y": y}, sample_weight=w)
    expected = fresh_fit(X, y, sample_weight=w).predict(X, verbose=0)
    np.testing.assert_allclose(pipeline.transform({"x": X})["preds"], expected, atol=1e-5)
    assert pipeline.feature_names() == {"preds": ["net0", "net1"]}
