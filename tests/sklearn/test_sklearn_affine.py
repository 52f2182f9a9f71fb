"""scikit-learn estimators folded with the affine layers around them: the same outputs as the
estimators themselves, refits seen, and the estimators' own refusals kept."""

import numpy as np
import pytest
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
    SGDRegressor,
)
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

import megatron
from megatron import layers
from megatron.errors import LayerInputError
from megatron.nodes import Input
from megatron_sklearn import Sklearn
from megatron_sklearn.affine import affine_of

RNG = np.random.default_rng(0)
X = RNG.normal(size=(120, 6)) * 3 + 1
Y = X @ RNG.normal(size=6) + 0.1 * RNG.normal(size=120)
BINARY = (np.median(Y) < Y).astype(int)
THREE = np.digitize(Y, np.quantile(Y, [0.33, 0.66]))

CASES = [
    (StandardScaler(), None, None),
    (PCA(3), None, None),
    (PCA(3, whiten=True), None, None),
    (TruncatedSVD(3), None, None),
    (LinearRegression(), "predict", Y),
    (Ridge(), "predict", Y),
    (Lasso(alpha=0.01), "predict", Y),
    (ElasticNet(alpha=0.01), "predict", Y),
    (SGDRegressor(random_state=0), "predict", Y),
    (LogisticRegression(), "decision_function", BINARY),
    (LogisticRegression(), "decision_function", THREE),
    (LinearSVC(), "decision_function", BINARY),
    (RidgeClassifier(), "decision_function", THREE),
]


@pytest.mark.parametrize(("estimator", "method", "target"), CASES, ids=lambda v: type(v).__name__)
def test_an_affine_estimator_folds_with_the_layers_around_it(estimator, method, target):
    x, y = Input("x", (6,)), Input("y")
    scaled = layers.ScalarMultiply(0.5)(layers.Whiten()(x))
    inputs = [scaled] if target is None else [scaled, y]
    out = Sklearn(estimator, method=method)(inputs, "out")
    data = {"x": X} if target is None else {"x": X, "y": target}
    folded = megatron.Pipeline([x, y], out, name="f").fit(data)
    plain = megatron.Pipeline([x, y], out, name="p", optimize=False)
    assert len(folded.plan_of("transform").folded) == 1
    got, want = folded.transform({"x": X})["out"], plain.transform({"x": X})["out"]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    folded.fit({"x": -X, "y": target} if target is not None else {"x": X[::-1] ** 2})  # a refit is seen
    again = {"x": X[:7]}
    np.testing.assert_allclose(
        folded.transform(again)["out"], plain.transform(again)["out"], rtol=1e-10, atol=1e-10
    )


def test_non_affine_methods_and_estimators_are_not_folded():
    assert affine_of(LogisticRegression().fit(X, BINARY), "predict") is None
    assert affine_of(LogisticRegression().fit(X, BINARY), "predict_proba") is None
    assert affine_of(StandardScaler(), "transform") is None  # not fitted


def test_a_folded_estimator_still_refuses_what_it_refuses():
    x = Input("x", (6,))
    out = Sklearn(PCA(2))(layers.Whiten()(x), "out")
    folded = megatron.Pipeline(x, out, name="f").fit({"x": X})
    bad = X[:3].copy()
    bad[1, 1] = np.nan
    with pytest.raises(LayerInputError, match="PCA.transform"):
        folded.transform({"x": bad})
