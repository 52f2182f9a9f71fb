"""The shared layer protocol on ``Sklearn``: feature names of its output, and its inverse."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

import megatron
from megatron.errors import NotInvertibleError
from megatron.nodes import Input
from megatron_sklearn import Sklearn


def test_feature_names_come_from_the_estimator_and_the_inputs_columns():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    colour = np.array(["red", "blue"] * 20, dtype=object)
    x, t, c = Input("x", (3,), columns=["a", "b", "c"]), Input("y"), Input("colour", dtype=object)
    scaled = Sklearn(StandardScaler())(x, "scaled")
    onehot = Sklearn(OneHotEncoder(sparse_output=False))(c, "onehot")
    pca = Sklearn(PCA(2))
    pca.name = "pca"
    reduced = pca(scaled, "reduced")
    model = Sklearn(LogisticRegression(), method="predict_proba")
    model.name = "model"
    probs = model([reduced, t], "probs")
    labels = Sklearn(LogisticRegression())([reduced, t], "labels")
    pipeline = megatron.Pipeline([x, t, c], [scaled, onehot, reduced, probs, labels], name="names")
    pipeline.fit({"x": X, "y": y, "colour": colour})
    names = pipeline.feature_names()
    assert names["scaled"] == ["a", "b", "c"]
    assert names["onehot"] == ["colour_blue", "colour_red"]
    assert names["reduced"] == ["pca0", "pca1"]
    assert names["probs"] == ["model0", "model1"]
    assert names["labels"] == [labels.call.layer.name]


def test_inverse_transform_where_the_estimator_has_one_and_a_clear_refusal_elsewhere():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 2)) * 5 + 3
    x, t = Input("x", (2,)), Input("y")
    scaler = Sklearn(MinMaxScaler())
    scaled = scaler(x, "scaled")
    model = Sklearn(LinearRegression())
    preds = model([scaled, t], "preds")
    pipeline = megatron.Pipeline([x, t], [scaled, preds], name="inv")
    pipeline.fit({"x": X, "y": X[:, 0]})
    assert scaler.invertible and not model.invertible
    out = pipeline.transform({"x": X})
    np.testing.assert_allclose(pipeline.inverse_transform(out, to="x", at="scaled"), X)
    with pytest.raises(NotInvertibleError, match="cannot map its output back"):
        model.inverse_transform(out["preds"])


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(3, 30),
    width=st.integers(1, 5),
    seed=st.integers(0, 100),
    kind=st.sampled_from([StandardScaler, MinMaxScaler]),
)
def test_scalers_invert_what_they_transform(n, width, seed, kind):
    X = np.random.default_rng(seed).normal(size=(n, width)) * 10
    layer = Sklearn(kind())
    layer(Input("x", (width,)))
    layer.fit(X)
    np.testing.assert_allclose(layer.inverse_transform(layer.transform(X)), X, atol=1e-8)
    assert layer.get_feature_names_out([f"f{i}" for i in range(width)]) == [f"f{i}" for i in range(width)]
