"""The ``Keras`` layer on generated data: the answer properties of ``megatron.testing``.

Budget: derandomized, 3 examples per check (each fits or predicts with a small model); about
10 s.
"""

import keras
import numpy as np
import pytest
from hypothesis import strategies as st

from megatron.testing import LayerCase
from megatron.testing.layer_answers import (
    check_accepts_its_own_rows,
    check_declared_spec_guards_inputs,
    check_generated_round_trip,
    check_nonfinite_fit_data,
    check_refuses_non_mappings,
)
from megatron_keras import Keras

rng = np.random.default_rng(6)
X = rng.normal(size=(32, 3)).astype("float32")
Y = (X @ np.array([1.0, -2.0, 0.5], dtype="float32"))[:, None]


def regression():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return Keras(model, fit_kwargs={"epochs": 1, "verbose": 0})


CASE = LayerCase(regression, (X, Y), name="Keras", rtol=1e-5, atol=1e-6)


def test_own_rows_are_accepted():
    check_accepts_its_own_rows(CASE, examples=3, fit_rows=st.just(CASE.inputs))


def test_round_trip():
    check_generated_round_trip(CASE, examples=2, fit_rows=st.just(CASE.inputs))


@pytest.mark.parametrize(
    "check", [check_refuses_non_mappings, check_declared_spec_guards_inputs], ids=lambda c: c.__name__
)
def test_guards(check):
    check(CASE, examples=4)


def test_nonfinite_fit_data():
    check_nonfinite_fit_data(CASE, examples=3)
