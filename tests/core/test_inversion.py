"""Inverse transforms: each invertible built-in layer undoes itself on generated data (the
conformance check of megatron.testing.inverting), and Pipeline.inverse_transform undoes a chain.

Property budget: 15 derandomized batches per invertible conformance case (9 cases, about 2 s),
each fitted on itself and compared with the case's tolerance (rtol 1e-7, atol 1e-9 unless the
case says otherwise).
"""

import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.errors import LayerInputError, NotFittedError, NotInvertibleError, UnknownOutputError
from megatron.layers import StatelessLayer
from megatron.nodes import Input
from megatron.testing import LayerCase
from megatron.testing.inverting import check_generated_inverse, check_inverse_transform

from .layers.test_conformance import ALL_CASES

INVERTIBLE = [case for case in ALL_CASES if case.layer().invertible]


def test_the_invertible_built_ins():
    names = {type(case.layer()).__name__ for case in INVERTIBLE}
    assert names == {
        "Whiten",
        "MinMaxScale",
        "ScalarMultiply",
        "ScalarAdd",
        "Log",
        "OneHotRange",
        "OneHotLabels",
    }
    assert not layers.ScalarMultiply(0).invertible
    assert not layers.Clip(0, 1).invertible


@pytest.mark.parametrize("case", INVERTIBLE, ids=str)
def test_inverse_of_transform_is_the_input_on_generated_data(case):
    check_generated_inverse(case)


class Halve(StatelessLayer):
    """A third-party layer whose inverse is wrong."""

    def transform(self, X):
        return X / 2

    def inverse_transform(self, Y):
        return Y * 3


def test_the_conformance_check_catches_a_wrong_inverse():
    case = LayerCase(Halve, (np.arange(6.0).reshape(3, 2),))
    with pytest.raises(AssertionError, match="inverse_transform"):
        check_inverse_transform(case)
    with pytest.raises(AssertionError, match="inverse_transform"):
        check_generated_inverse(case)


def chain():
    y = Input("y")
    logged = layers.Log(offset=1)(y, "logged")
    scaled = layers.Whiten()(logged, "scaled")
    doubled = layers.ScalarMultiply(2.0)(scaled, "doubled")
    clipped = layers.Clip(-1, 1)(scaled, "clipped")
    return megatron.Pipeline(y, [doubled, clipped], name="chain")


def test_a_chain_maps_back_to_original_units():
    y = np.array([0.0, 1.0, 5.0, 100.0])
    pipeline = chain().fit({"y": y})
    outputs = pipeline.transform({"y": y})
    np.testing.assert_allclose(pipeline.inverse_transform(outputs, to="y", at="doubled"), y, rtol=1e-12)
    # predictions made in the scaled units read back in y's own
    np.testing.assert_allclose(
        pipeline.inverse_transform(outputs["doubled"] / 2, to="y", at="scaled"), y, rtol=1e-12
    )
    # a mapping with one entry leading back needs no at=
    np.testing.assert_allclose(
        pipeline.inverse_transform({"doubled": outputs["doubled"]}, to="y"), y, rtol=1e-12
    )


def test_a_layer_without_an_inverse_is_named():
    pipeline = chain().fit({"y": np.array([1.0, 2.0])})
    outputs = pipeline.transform({"y": np.array([1.0, 2.0])})
    with pytest.raises(
        NotInvertibleError, match=r"layer 'clip' \(Clip\) at node 'clipped' is not invertible"
    ):
        pipeline.inverse_transform(outputs, to="y", at="clipped")


def test_a_layer_of_several_inputs_breaks_the_chain():
    a, b = Input("a"), Input("b")
    total = layers.Add()([a, b], "total")
    pipeline = megatron.Pipeline([a, b], layers.ScalarAdd(1.0)(total, "shifted"), name="sum")
    with pytest.raises(
        NotInvertibleError, match=r"'total' comes from layer 'add' \(Add\) with 2 feature inputs"
    ):
        pipeline.inverse_transform(np.ones(2), to="a")


def test_an_unfitted_layer_cannot_invert():
    with pytest.raises(NotFittedError, match="whiten"):
        chain().inverse_transform(np.ones(2), to="y", at="scaled")


def test_an_unknown_input_gets_a_suggestion():
    with pytest.raises(UnknownOutputError, match="Did you mean 'y'"):
        chain().inverse_transform(np.ones(2), to="yy", at="scaled")


def test_an_ambiguous_mapping_asks_for_at():
    pipeline = chain().fit({"y": np.array([1.0, 2.0])})
    outputs = pipeline.transform({"y": np.array([1.0, 2.0])})
    with pytest.raises(NotInvertibleError, match="pass at="):
        pipeline.inverse_transform({**outputs, "scaled": outputs["doubled"]}, to="y")


def test_a_failure_inside_an_inverse_names_the_layer():
    codes = Input("codes")
    pipeline = megatron.Pipeline(codes, layers.OneHotRange(0, 2)(codes, "ohe"), name="codes")
    with pytest.raises(LayerInputError, match="one_hot_range.*no non-zero column"):
        pipeline.inverse_transform(np.zeros((2, 3)), to="codes")


def test_one_hot_decodes_probabilities_to_the_likeliest_value():
    labels = layers.OneHotLabels(labels=["cat", "dog", "eel"])
    probabilities = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    assert labels.inverse_transform(probabilities).tolist() == ["dog", "cat"]
