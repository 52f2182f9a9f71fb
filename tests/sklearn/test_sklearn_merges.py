"""Merges of what copies of a ``Sklearn`` layer learned, checked against the real
scikit-learn: the whole conformance suite (its merge check included) and the merge property
on generated parts for every estimator class with a registered merge, and the registry's
refusals.

Budget: derandomized, 5 generated merges of 2 or 3 parts per case (11 cases); about 6 s with
the conformance suite.
"""

import copy

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.naive_bayes import BernoulliNB, ComplementNB, GaussianNB, MultinomialNB
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

from megatron.errors import ConfigError, LayerInputError
from megatron.testing import LayerCase, layer_checks
from megatron.testing.layer_answers import check_merges_on_generated_parts
from megatron.testing.layers import check_merge_matches_partial_fit
from megatron.testing.states import state_difference
from megatron_sklearn import Sklearn
from megatron_sklearn.merging import merge_for, register_merge

# parts of a row or two, NaN features and one-row classes make scikit-learn warn as it fits
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

rng = np.random.default_rng(11)
X = rng.normal(3, 2, size=(48, 4))
WITH_NAN = np.where(rng.random((48, 4)) < 0.15, np.nan, X)
COUNTS = rng.integers(0, 6, size=(48, 4)).astype(float)
LABELS = np.arange(48) % 3


def classifier(estimator):
    return lambda: Sklearn(copy.deepcopy(estimator), method="predict_proba", classes=[0, 1, 2])


CASES = [
    LayerCase(lambda: Sklearn(StandardScaler()), (X,), name="StandardScaler"),
    LayerCase(lambda: Sklearn(StandardScaler()), (WITH_NAN,), name="StandardScaler-nan"),
    LayerCase(lambda: Sklearn(StandardScaler(with_mean=False)), (X,), name="StandardScaler-no-mean"),
    LayerCase(lambda: Sklearn(StandardScaler(with_std=False)), (X,), name="StandardScaler-no-std"),
    LayerCase(lambda: Sklearn(MinMaxScaler((-1, 2))), (X,), name="MinMaxScaler"),
    LayerCase(lambda: Sklearn(MinMaxScaler()), (WITH_NAN,), name="MinMaxScaler-nan"),
    LayerCase(lambda: Sklearn(MaxAbsScaler()), (WITH_NAN - 3,), name="MaxAbsScaler"),
    LayerCase(classifier(GaussianNB()), (X, LABELS), name="GaussianNB"),
    LayerCase(classifier(GaussianNB(priors=[0.2, 0.3, 0.5])), (X, LABELS), name="GaussianNB-priors"),
    LayerCase(classifier(MultinomialNB(alpha=0.5)), (COUNTS, LABELS), name="MultinomialNB"),
    LayerCase(classifier(BernoulliNB(binarize=2.0)), (COUNTS, LABELS), name="BernoulliNB"),
    LayerCase(classifier(ComplementNB(norm=True)), (COUNTS, LABELS), name="ComplementNB"),
]
EXACTNESS = {
    StandardScaler: "rounding",
    MinMaxScaler: "exact",
    MaxAbsScaler: "exact",
    GaussianNB: "rounding",
    MultinomialNB: "exact",
    BernoulliNB: "exact",
    ComplementNB: "exact",
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_estimator_declares_its_exactness(case):
    layer = case.layer()
    assert layer.merge_exactness() == EXACTNESS[type(layer.estimator)]
    assert layer.supports_merge()


@pytest.mark.parametrize("check", layer_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_merging_estimators_pass_the_conformance_suite(check, case):
    check(case)


# scikit-learn's StandardScaler keeps a feature's mean NaN from a first batch without a value
# of it on (0 * NaN), and a merge does as partial_fit does: parts that small are not associative
GENERATED = [case for case in CASES if case.name != "StandardScaler-nan"]


@pytest.mark.parametrize("case", GENERATED, ids=str)
def test_merges_on_generated_parts_match_partial_fit(case):
    check_merges_on_generated_parts(case, examples=5)


def _fitted(make, *inputs):
    layer = make()
    layer.partial_fit(*inputs)
    return layer


def test_an_estimator_without_a_registered_merge_does_not_merge():
    layer = Sklearn(SGDClassifier(random_state=0), classes=[0, 1, 2])
    assert layer.merge_exactness() is None and not layer.supports_merge()
    a, b = (
        _fitted(lambda: copy.deepcopy(layer), X[:20], LABELS[:20]),
        _fitted(lambda: copy.deepcopy(layer), X[20:], LABELS[20:]),
    )
    with pytest.raises(NotImplementedError, match="cannot merge"):
        a.merge_states(a.get_state(), b.get_state())
    check_merge_matches_partial_fit(LayerCase(lambda: copy.deepcopy(layer), (X, LABELS)))  # skipped: no merge


def test_a_subclass_does_not_inherit_the_merge_of_its_class():
    class Mine(StandardScaler):
        pass

    assert merge_for(Mine()) is None and merge_for(StandardScaler()) is not None


def test_the_state_holds_a_copy_of_the_fitted_estimator():
    layer = _fitted(lambda: Sklearn(StandardScaler()), X)
    state = layer.get_state()
    assert state["estimator"] is not layer.estimator
    np.testing.assert_array_equal(state["estimator"].mean_, layer.estimator.mean_)
    state["estimator"].mean_[:] = 0  # the layer's own estimator is not changed
    assert layer.estimator.mean_[0] != 0


def test_set_state_installs_a_copy_of_the_estimator_and_a_new_token():
    source = _fitted(lambda: Sklearn(StandardScaler()), X)
    target = Sklearn(StandardScaler())
    token = target.state_token
    state = source.get_state()
    target.set_state(state)
    assert target.fitted and target.state_token != token
    assert target.estimator is not state["estimator"]
    np.testing.assert_array_equal(target.transform(X), source.transform(X))


def test_a_state_without_an_estimator_keeps_the_layers_own():
    layer = _fitted(lambda: Sklearn(StandardScaler()), X)
    estimator = layer.estimator
    layer.set_state({})
    assert layer.estimator is estimator and layer.fitted


def test_a_state_whose_estimator_is_not_one_is_refused():
    with pytest.raises(LayerInputError, match="must be an estimator"):
        Sklearn(StandardScaler()).set_state({"estimator": "StandardScaler"})


def test_copies_that_learned_other_classes_are_refused_naming_classes():
    make = lambda: Sklearn(GaussianNB())  # noqa: E731  classes from each copy's first batch
    a = _fitted(make, X[:10], np.zeros(10, dtype=int))
    b = _fitted(make, X[10:20], np.ones(10, dtype=int))
    with pytest.raises(LayerInputError, match="classes="):
        a.merge(b)


def test_a_copy_that_learned_classes_the_first_knows_merges_as_partial_fit_does():
    make = lambda: Sklearn(MultinomialNB())  # noqa: E731
    a = _fitted(make, COUNTS[:24], LABELS[:24])
    b = _fitted(make, COUNTS[24:30], np.full(6, 2))  # only class 2
    whole = _fitted(make, COUNTS[:24], LABELS[:24])
    whole.partial_fit(COUNTS[24:30], np.full(6, 2))
    a.merge(b)
    assert state_difference(a.get_state(), whole.get_state(), exact=True) is None


def test_estimators_of_other_parameters_are_not_merged():
    a = _fitted(lambda: Sklearn(MinMaxScaler()), X)
    b = _fitted(lambda: Sklearn(MinMaxScaler((-1, 1))), X)
    with pytest.raises(LayerInputError, match="copies of one estimator"):
        a.merge_states(a.get_state(), b.get_state())


def test_states_fitted_on_other_numbers_of_features_are_refused():
    a = _fitted(lambda: Sklearn(StandardScaler()), X)
    b = _fitted(lambda: Sklearn(StandardScaler()), X[:, :3])
    with pytest.raises(LayerInputError, match=r"shape \(4,\).*shape \(3,\)"):
        a.merge(b)


def test_register_merge_adds_a_class_and_refuses_an_unknown_exactness():
    class Counted(StandardScaler):
        pass

    try:
        register_merge(Counted, "rounding", merge_for(StandardScaler()).function)
        layer = Sklearn(Counted())
        assert layer.merge_exactness() == "rounding"
        check_merge_matches_partial_fit(LayerCase(lambda: Sklearn(Counted()), (X,)))
    finally:
        from megatron_sklearn import merging

        merging._MERGES.pop(Counted, None)
    with pytest.raises(ConfigError, match="exactness"):
        register_merge(Counted, "close enough", lambda a, b: a)


def test_gaussian_nb_keeps_the_moments_of_a_class_neither_part_has_rows_of():
    # the last part's variance smoothing comes off every class and goes back on; a class with
    # rows in neither part is not updated in between (found by the generated merges)
    make = lambda: Sklearn(GaussianNB(), classes=[0, 1, 2])  # noqa: E731
    a = _fitted(make, X[:1], np.array([0]))
    b = _fitted(make, X[:2], np.array([0, 1]))
    whole = _fitted(make, X[:1], np.array([0]))
    whole.partial_fit(X[:2], np.array([0, 1]))
    a.merge(b)
    assert a.estimator.var_[2, 0] == whole.estimator.var_[2, 0] == 0
    assert state_difference(a.get_state(), whole.get_state(), exact=False) is None
