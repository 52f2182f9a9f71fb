"""Out-of-fold stacking with ``cv=``: a model fed another model's predictions trains on
predictions for rows the first model never saw, as scikit-learn's ``StackingClassifier``."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import megatron
from megatron.errors import ConfigError, GraphError, IncrementalFitError
from megatron.layers.out_of_fold import kfold
from megatron.nodes import Input
from megatron_sklearn import Sklearn

ESTIMATORS = [("nb", GaussianNB()), ("tree", DecisionTreeClassifier(max_depth=3, random_state=0))]


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def stacked_pipeline(cv, stack_method="predict_proba"):
    x, t = Input("x", (30,)), Input("y")
    columns = []
    for name, estimator in ESTIMATORS:
        out = Sklearn(estimator, method=stack_method, cv=cv)([x, t], name)
        # StackingClassifier keeps one column of a binary classifier's probabilities
        columns.append(
            megatron.layers.Lambda(lambda p: p[:, 1:])(out) if stack_method == "predict_proba" else out
        )
    stacked = megatron.layers.Concatenate()(columns) if stack_method == "predict_proba" else columns
    final = Sklearn(LogisticRegression(), method="predict_proba")
    return megatron.Pipeline([x, t], final([*np.atleast_1d(stacked), t], "out"), name="stacked")


@pytest.mark.parametrize(
    ("cv", "reference_cv"),
    [
        (5, 5),
        (StratifiedKFold(4, shuffle=True, random_state=3), StratifiedKFold(4, shuffle=True, random_state=3)),
    ],
)
def test_stacked_models_match_stacking_classifier_on_held_out_rows(cancer, cv, reference_cv):
    X_train, X_test, y_train, y_test = cancer
    reference = StackingClassifier(
        ESTIMATORS, final_estimator=LogisticRegression(), cv=reference_cv, stack_method="predict_proba"
    ).fit(X_train, y_train)
    pipeline = stacked_pipeline(cv).fit({"x": X_train, "y": y_train})
    got = pipeline.transform({"x": X_test})["out"]
    np.testing.assert_allclose(got, reference.predict_proba(X_test), atol=1e-12)
    assert (got.argmax(1) == y_test).mean() == pytest.approx(reference.score(X_test, y_test))
    # transform uses the models refit on every row, as StackingClassifier's estimators_
    refit = [layer for layer in pipeline.layers if isinstance(layer, Sklearn) and layer.cv is not None]
    for layer, fitted in zip(refit, reference.estimators_):
        np.testing.assert_allclose(layer.estimator.predict_proba(X_test), fitted.predict_proba(X_test))


def test_without_cv_the_final_model_trains_on_in_sample_predictions(cancer):
    X_train, X_test, y_train, _ = cancer
    reference = StackingClassifier(ESTIMATORS, final_estimator=LogisticRegression(), cv=5).fit(
        X_train, y_train
    )
    plain = stacked_pipeline(None).fit({"x": X_train, "y": y_train}).transform({"x": X_test})["out"]
    assert np.abs(plain - reference.predict_proba(X_test)).max() > 1e-3


def test_saved_and_reloaded_stacked_pipeline_transforms_the_same(cancer, tmp_path):
    X_train, X_test, y_train, _ = cancer
    pipeline = stacked_pipeline(5).fit({"x": X_train, "y": y_train})
    loaded = megatron.load_pipeline(
        pipeline.save(tmp_path), trusted=["sklearn.tree._tree.Tree"], custom_objects=_lambdas(pipeline)
    )
    np.testing.assert_array_equal(
        loaded.transform({"x": X_test})["out"], pipeline.transform({"x": X_test})["out"]
    )
    assert [getattr(layer, "cv", None) for layer in loaded.layers] == [
        getattr(layer, "cv", None) for layer in pipeline.layers
    ]


def _lambdas(pipeline):
    return {
        layer.function.__name__: layer.function
        for layer in pipeline.layers
        if isinstance(layer, megatron.layers.Lambda)
    }


def test_regressor_out_of_fold_outputs_equal_cross_val_predict_and_eager_mode_gives_them_too():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(53, 3)), rng.normal(size=53)
    x, t = Input("x", (3,)), Input("y")
    layer = Sklearn(LinearRegression(), cv=4)
    preds = layer([x, t], "preds")
    # what the fit hands downstream: an out-of-fold prediction per row
    outputs = layer.fit_transform(X, y)
    np.testing.assert_allclose(outputs, cross_val_predict(LinearRegression(), X, y, cv=KFold(4)))
    assert megatron.Pipeline([x, t], preds, name="r").fit({"x": X, "y": y})  # single calls fit
    np.testing.assert_allclose(layer.transform(X), LinearRegression().fit(X, y).predict(X))
    eager_x, eager_y = Input("x", (3,))(X), Input("y")(y)
    eager = Sklearn(LinearRegression(), cv=4)([eager_x, eager_y], "eager")
    np.testing.assert_allclose(eager.output, outputs)


def test_sample_weights_are_sliced_with_each_fold():
    rng = np.random.default_rng(1)
    X, y, w = rng.normal(size=(40, 2)), rng.normal(size=40), rng.uniform(0.1, 2, size=40)
    got = Sklearn(LinearRegression(), cv=4)
    got([Input("x", (2,)), Input("y")])
    expected = cross_val_predict(LinearRegression(), X, y, cv=KFold(4), params={"sample_weight": w})
    np.testing.assert_allclose(got.fit_transform(X, y, sample_weight=w), expected)


def test_refusals_of_routes_where_out_of_fold_outputs_cannot_hold():
    x, t = Input("x", (2,)), Input("y")
    layer = Sklearn(LogisticRegression(), cv=3)
    layer([x, t], "a")
    with pytest.raises(GraphError, match="cv= and is called already"):
        layer([x, t], "b")
    from sklearn.linear_model import SGDClassifier

    sgd = Sklearn(SGDClassifier(), cv=3)
    pipeline = megatron.Pipeline([x, t], sgd([x, t], "sgd"), name="sgd")
    data = {"x": np.zeros((6, 2)), "y": np.array([0, 1] * 3)}
    with pytest.raises(IncrementalFitError, match="cv="):
        pipeline.fit_generator([data])
    with pytest.raises(IncrementalFitError, match="cv="):
        pipeline.partial_fit(data)
    with pytest.raises(ConfigError, match="exactly once"):
        Sklearn(LinearRegression(), cv=[(np.arange(3), np.arange(3, 5))]).fold_splits((np.zeros((6, 1)),), 6)
    with pytest.raises(ConfigError, match="at least 2 folds"):
        kfold(1, 5)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 60), k=st.integers(2, 10))
def test_kfold_matches_scikit_learn_and_partitions_the_rows(n, k):
    if n < k:
        with pytest.raises(ConfigError):
            kfold(k, n)
        return
    for (train, test), (want_train, want_test) in zip(kfold(k, n), KFold(k).split(np.zeros((n, 1)))):
        np.testing.assert_array_equal(train, want_train)
        np.testing.assert_array_equal(test, want_test)


def test_a_transformer_with_cv_gives_out_of_fold_transforms():
    X = np.arange(24.0).reshape(12, 2)
    layer = Sklearn(StandardScaler(), cv=3)
    layer(Input("x", (2,)))
    out = layer.fit_transform(X)
    for train, test in KFold(3).split(X):
        np.testing.assert_allclose(out[test], StandardScaler().fit(X[train]).transform(X[test]))


def test_folds_that_train_on_their_own_test_rows_are_refused_when_the_layer_is_built():
    """Each fold tests half the rows but trains on all of them: a meta-model would learn from
    in-sample predictions (a tree fitted to noise predicts it perfectly)."""
    everything = np.arange(80)
    leaky = [(everything, np.arange(0, 40)), (everything, np.arange(40, 80))]
    with pytest.raises(ConfigError, match="fold 0 of cv= trains on 40 of its own 40 test rows"):
        Sklearn(DecisionTreeClassifier(), cv=leaky)
    layer, x = Sklearn(LinearRegression()), Input("x", (2,))
    pipeline = megatron.Pipeline(x, layer(x, "out"), name="leak")
    with pytest.raises(ConfigError, match="fold 1 of cv= trains on"):
        pipeline.set_params(sklearn__cv=[(np.arange(1, 4), np.array([0])), (np.arange(4), np.arange(1, 4))])
    assert layer.cv is None


@pytest.mark.parametrize("cv", [True, False, 2.5, 0, 1, -3, "five", np.float64(3.0)])
def test_a_cv_that_is_no_number_of_folds_is_refused_when_the_layer_is_built(cv):
    with pytest.raises(ConfigError, match="cv= takes"):
        Sklearn(LinearRegression(), cv=cv)
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, Sklearn(LinearRegression())(x, "o"), name="c")
    with pytest.raises(ConfigError, match="cv= takes"):
        pipeline.set_params(sklearn__cv=cv)


def test_folds_given_once_as_an_iterator_serve_every_fit():
    X, y = np.arange(12.0).reshape(6, 2), np.arange(6.0)
    folds = [(np.arange(3, 6), np.arange(3)), (np.arange(3), np.arange(3, 6))]
    layer = Sklearn(LinearRegression(), cv=iter(folds))
    layer([Input("x", (2,)), Input("y")])
    first = layer.fit_transform(X, y)
    np.testing.assert_allclose(layer.fit_transform(X, y), first)
    np.testing.assert_allclose(first, cross_val_predict(LinearRegression(), X, y, cv=folds))
