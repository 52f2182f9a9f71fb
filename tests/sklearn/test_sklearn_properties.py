"""The ``Sklearn`` layer on generated data: the property suites of ``megatron.testing`` with
scikit-learn itself as the reference.

Budget: derandomized, 5 to 7 examples per case and check, 2 save-and-reload round trips
(the supervised ones fitted on all rows); about 6 s.
"""

import numpy as np
import pytest
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import MultinomialNB
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from megatron.testing import LayerCase, layer_properties
from megatron.testing.layer_answers import (
    check_accepts_its_own_rows,
    check_declared_spec_guards_inputs,
    check_generated_round_trip,
    check_nonfinite_fit_data,
    check_one_pass_over_epochs,
    check_refuses_non_mappings,
)
from megatron_sklearn import Sklearn

rng = np.random.default_rng(5)
X = rng.normal(size=(40, 4))
COUNTS = rng.integers(0, 5, size=(40, 4)).astype(float)
LABELS = np.arange(40) % 3


def fitted(make, method="transform"):
    def reference(fit, rows):
        estimator = make().fit(*fit)
        if len(rows[0]) == 0:
            return (getattr(estimator, method)(np.zeros((1, rows[0].shape[1])))[:0],)
        return (getattr(estimator, method)(rows[0]),)

    return reference


CASES = {
    "StandardScaler": (LayerCase(lambda: Sklearn(StandardScaler()), (X,), name="StandardScaler"), fitted(StandardScaler), False),
    "MinMaxScaler": (LayerCase(lambda: Sklearn(MinMaxScaler()), (X,), name="MinMaxScaler"), fitted(MinMaxScaler), False),
    "PCA": (LayerCase(lambda: Sklearn(PCA(2, random_state=0)), (X,), name="PCA", rtol=1e-6, atol=1e-9), fitted(lambda: PCA(2, random_state=0)), True),
    "LogisticRegression": (
        LayerCase(lambda: Sklearn(LogisticRegression(), method="predict_proba"), (X, LABELS), name="LogisticRegression", rtol=1e-6),
        fitted(LogisticRegression, "predict_proba"),
        True,
    ),
    "MultinomialNB": (
        LayerCase(lambda: Sklearn(MultinomialNB(), method="predict_proba", classes=[0, 1, 2]), (COUNTS, LABELS), name="MultinomialNB"),
        fitted(MultinomialNB, "predict_proba"),
        True,
    ),
    "SGDClassifier": (
        LayerCase(lambda: Sklearn(SGDClassifier(random_state=0), classes=[0, 1, 2]), (X, LABELS), name="SGDClassifier"),
        fitted(lambda: SGDClassifier(random_state=0), "predict"),
        True,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_own_rows_are_accepted_and_match_scikit_learn(name):
    case, reference, fit_on_all = CASES[name]
    # a supervised model (and a PCA of 2 components) is fitted on every row: each class, enough rows
    check_accepts_its_own_rows(
        case, examples=6, reference=reference, fit_rows=st.just(case.inputs) if fit_on_all else None
    )


@pytest.mark.parametrize(
    "check",
    [
        check_one_pass_over_epochs,
        check_nonfinite_fit_data,
        check_refuses_non_mappings,
        check_declared_spec_guards_inputs,
    ],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("name", sorted(CASES))
def test_answer_properties(check, name):
    check(CASES[name][0], examples=5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip(name):
    case, _, fit_on_all = CASES[name]
    check_generated_round_trip(case, examples=2, fit_rows=st.just(case.inputs) if fit_on_all else None)


@pytest.mark.parametrize("check", layer_properties(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_batches(check, name):
    case = CASES[name][0]
    if check.__name__ == "check_generated_splits" and Sklearn.iterative.fget(case.layer()):
        pytest.skip("an iterative learner: batches are not one fit on all the data")
    check(case, examples=6)
