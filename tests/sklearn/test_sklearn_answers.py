"""scikit-learn layers and the estimator adapter give no wrong answer: epochs only for iterative
learners, no other pipeline's model, nested parameter names that stay put, the incremental-fit
error, NaN left out as scikit-learn leaves it out."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.naive_bayes import MultinomialNB
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import check_estimators_overwrite_params

import megatron
from megatron import layers, metrics
from megatron.errors import IncrementalFitError
from megatron.nodes import Input
from megatron_sklearn import PipelineEstimator, Sklearn


# -- epochs ---------------------------------------------------------------------------------------
def test_iterative_learners_are_told_apart_from_one_pass_statistics():
    assert Sklearn(SGDClassifier()).iterative
    assert not Sklearn(MultinomialNB()).iterative
    assert not Sklearn(StandardScaler()).iterative
    assert not Sklearn(LogisticRegression()).iterative  # no partial_fit at all
    assert Sklearn(MultinomialNB(), iterative=True).iterative  # the user has the last word


def test_naive_bayes_counts_once_whatever_epochs_says():
    X, y = make_classification(n_samples=300, n_features=6, random_state=1)
    X = np.abs(X)
    x, label = Input("x", (6,)), Input("label")
    nb = Sklearn(MultinomialNB(), classes=[0, 1])
    pipeline = megatron.Pipeline([x, label], nb([x, label], "p"), name="nb")
    pipeline.fit_generator(
        [{"x": X[i : i + 50], "label": y[i : i + 50]} for i in range(0, 300, 50)], epochs=4
    )
    whole = MultinomialNB().fit(X, y)
    np.testing.assert_array_equal(nb.estimator.class_count_, whole.class_count_)
    np.testing.assert_allclose(nb.estimator.feature_count_, whole.feature_count_)


# -- a pipeline on shared inputs ---------------------------------------------------------------------
def test_a_pipeline_on_shared_inputs_neither_lists_nor_fits_another_pipelines_model():
    X, y = make_classification(n_samples=200, n_features=4, random_state=0)
    x, label = Input("x", (4,)), Input("label")
    lr = Sklearn(LogisticRegression(), method="predict_proba")
    probs = lr([x, label], "probs")
    metrics.Accuracy()([label, probs], "acc")
    pipeline_a = megatron.Pipeline([x, label], probs, name="a")
    p2 = Sklearn(SGDClassifier(random_state=0), classes=[0, 1])([x, label], "p2")
    pipeline_b = megatron.Pipeline([x, label], p2, name="b")

    summary = pipeline_b.summary_text()
    assert "probs" not in summary and "acc" not in summary and pipeline_b.metrics == ()
    data = {"x": X, "label": y}
    pipeline_b.fit_generator([data])  # LogisticRegression has no partial_fit: it is not B's
    pipeline_b.fit(data)
    assert not hasattr(lr.estimator, "coef_")  # A's model was never fitted by B
    pipeline_a.fit(data)
    assert pipeline_a.evaluate(data)["acc"] > 0.8


# -- nested parameter names -------------------------------------------------------------------------
def build_unnamed():
    x, y = Input("x", (None,)), Input("y")
    scaled = layers.MinMaxScale()(x)  # unnamed: its nested parameters use its automatic name
    predicted = Sklearn(LogisticRegression(max_iter=500))([scaled, y], "predicted")
    return megatron.Pipeline([x, y], predicted, name="unnamed")


def test_nested_parameter_names_are_the_same_on_every_build():
    estimator = PipelineEstimator(build_unnamed)
    first, second = estimator.get_params(), estimator.get_params()
    assert first.keys() == second.keys()
    assert "min_max_scale__feature_range" in first and "predicted__C" in first
    estimator.set_params(min_max_scale__feature_range=(-1.0, 1.0))
    X, y = make_classification(n_samples=60, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    estimator.fit(X, y)
    (scale,) = [layer for layer in estimator.pipeline_.layers if type(layer).__name__ == "MinMaxScale"]
    assert scale.feature_range == (-1.0, 1.0)
    assert estimator.pipeline_.transform({"x": X})["predicted"].shape == (60,)


def test_scikit_learn_sees_its_parameters_left_alone():
    check_estimators_overwrite_params("unnamed", PipelineEstimator(build_unnamed))


def test_grid_search_tunes_an_unnamed_layer():
    X, y = load_breast_cancer(return_X_y=True)
    grid = {"min_max_scale__feature_range": [(0.0, 1.0), (-1.0, 1.0)]}
    search = GridSearchCV(PipelineEstimator(build_unnamed), grid, cv=2).fit(X, y)
    assert search.best_params_["min_max_scale__feature_range"] in grid["min_max_scale__feature_range"]
    assert search.best_score_ > 0.9


# -- the incremental-fit error ---------------------------------------------------------------------
def test_partial_fit_of_an_estimator_without_one_is_the_incremental_fit_error():
    layer = Sklearn(DecisionTreeClassifier())
    with pytest.raises(IncrementalFitError, match="DecisionTreeClassifier has no partial_fit"):
        layer.partial_fit(np.ones((4, 3)), np.arange(4))


# -- NaN left out, as scikit-learn leaves it out ----------------------------------------------------
def test_ignore_nan_matches_scikit_learns_scalers():
    rng = np.random.default_rng(4)
    data = rng.normal(3, 2, size=(50, 4))
    data[rng.random(data.shape) < 0.2] = np.nan
    whiten = layers.Whiten(ignore_nan=True)
    whiten.fit(data)
    np.testing.assert_allclose(whiten.transform(data), StandardScaler().fit(data).transform(data), rtol=1e-12)
    scale = layers.MinMaxScale(ignore_nan=True)
    for part in np.array_split(data, 3):
        scale.partial_fit(part)
    np.testing.assert_allclose(scale.transform(data), MinMaxScaler().fit(data).transform(data), rtol=1e-12)
