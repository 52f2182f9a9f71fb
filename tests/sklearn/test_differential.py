"""The same graph in megatron and in a plain scikit-learn ``Pipeline`` or ``ColumnTransformer``
gives the same predictions and scores on scikit-learn's bundled datasets, before and after the
megatron pipeline is saved and loaded back."""

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import megatron
from megatron import layers, metrics
from megatron.nodes import Input
from megatron_sklearn import Sklearn


def split(X, y):
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y if y.dtype.kind in "iu" else None)


def breast_cancer():
    """Standard scaling, then logistic regression."""
    x, y = Input("x", (30,)), Input("y")
    probs = Sklearn(LogisticRegression(max_iter=5000), method="predict_proba")(
        [layers.Whiten()(x), y], "probs"
    )
    metrics.Accuracy()([y, probs], "accuracy")
    metrics.F1()([y, probs], "f1")
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return (
        megatron.Pipeline([x, y], probs, name="breast_cancer"),
        reference,
        load_breast_cancer(return_X_y=True),
    )


def digits():
    """Scaling to [0, 1], a PCA, then a classifier."""
    x, y = Input("x", (64,)), Input("y")
    components = Sklearn(PCA(20, random_state=0))(layers.MinMaxScale()(x))
    probs = Sklearn(LogisticRegression(max_iter=5000), method="predict_proba")([components, y], "probs")
    metrics.Accuracy()([y, probs], "accuracy")
    metrics.F1(average="macro")([y, probs], "f1")
    reference = make_pipeline(MinMaxScaler(), PCA(20, random_state=0), LogisticRegression(max_iter=5000))
    return megatron.Pipeline([x, y], probs, name="digits"), reference, load_digits(return_X_y=True)


def wine():
    """Two groups of columns scaled two ways (a ColumnTransformer), joined, then a classifier."""
    x, y = Input("x", (13,)), Input("y")
    left = layers.Whiten()(layers.Slice(0, 7)(x))
    right = layers.MinMaxScale()(layers.Slice(7, 13)(x))
    joined = layers.Concatenate()([left, right])
    probs = Sklearn(LogisticRegression(max_iter=5000), method="predict_proba")([joined, y], "probs")
    metrics.Accuracy()([y, probs], "accuracy")
    metrics.F1(average="macro")([y, probs], "f1")
    columns = ColumnTransformer(
        [("std", StandardScaler(), list(range(7))), ("mm", MinMaxScaler(), list(range(7, 13)))]
    )
    reference = make_pipeline(columns, LogisticRegression(max_iter=5000))
    return megatron.Pipeline([x, y], probs, name="wine"), reference, load_wine(return_X_y=True)


def diabetes():
    """Missing values filled with the mean, standard scaling, then ridge regression."""
    X, y = load_diabetes(return_X_y=True)
    X = X.copy()
    X[np.random.default_rng(0).random(X.shape) < 0.05] = np.nan
    x, target = Input("x", (10,)), Input("y")
    filled = layers.SimpleImpute("mean")(x)
    predicted = Sklearn(Ridge(alpha=0.5))([layers.Whiten()(filled), target], "predicted")
    metrics.R2()([target, predicted], "r2")
    metrics.MeanSquaredError()([target, predicted], "mse")
    reference = make_pipeline(SimpleImputer(), StandardScaler(), Ridge(alpha=0.5))
    return megatron.Pipeline([x, target], predicted, name="diabetes"), reference, (X, y)


def reference_scores(name, reference, X, y):
    if name == "diabetes":
        predicted = reference.predict(X)
        return {"r2": r2_score(y, predicted), "mse": mean_squared_error(y, predicted)}
    predicted = reference.predict(X)
    average = "binary" if name == "breast_cancer" else "macro"
    return {"accuracy": accuracy_score(y, predicted), "f1": f1_score(y, predicted, average=average)}


@pytest.mark.parametrize("build", [breast_cancer, digits, wine, diabetes], ids=lambda b: b.__name__)
def test_megatron_and_scikit_learn_agree(build, tmp_path):
    pipeline, reference, (X, y) = build()
    X_train, X_test, y_train, y_test = split(X, y)
    pipeline.fit({"x": X_train, "y": y_train})
    reference.fit(X_train, y_train)
    (output,) = pipeline.output_names
    want = reference.predict(X_test) if output == "predicted" else reference.predict_proba(X_test)
    want_scores = reference_scores(pipeline.name, reference, X_test, y_test)
    loaded = megatron.load_pipeline(pipeline.save(tmp_path))
    for which in (pipeline, loaded):
        got = which.transform({"x": X_test})[output]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"{which.name}: outputs")
        if output == "probs":  # the predicted classes are the same, every one
            np.testing.assert_array_equal(got.argmax(axis=1), reference.predict(X_test))
        scores = which.evaluate({"x": X_test, "y": y_test})
        assert scores.keys() == want_scores.keys()
        for key, value in want_scores.items():
            assert scores[key] == pytest.approx(value, rel=1e-9), (which.name, key)
    assert loaded.fingerprint == pipeline.fingerprint
