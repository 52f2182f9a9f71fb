"""Inverse transforms: each invertible built-in layer undoes itself on generated data (the
conformance check of megatron.testing.inverting), and Pipeline.inverse_transform undoes a chain.

Property budget: 15 derandomized batches per invertible conformance case (9 cases, about 2 s),
each fitted on itself and compared with the case's tolerance (rtol 1e-7, atol 1e-9 unless the
case says otherwise).
"""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import LayerInputError, NotFittedError, NotInvertibleError, UnknownOutputError
from megatron.layers import StatelessLayer
from megatron.nodes import Input
from megatron.specs import Spec
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


def one_hot_pipeline():
    label = Input("label")
    pipeline = megatron.Pipeline(label, layers.OneHotRange()(label, "codes"), name="codes")
    return pipeline.fit({"label": np.array([3, 4, 5, 6, 7])})


def test_one_hot_refuses_rows_holding_nan():
    """A model that gave NaN said nothing: numpy's argmax would pick the NaN's column (an all-NaN
    row the first value), so such rows are refused, as rows of zeros are."""
    pipeline = one_hot_pipeline()
    rows = np.array([[np.nan] * 5, [0.1, np.nan, 0.9, 0, 0], [0.1, 0.2, 0.7, 0, 0]])
    with pytest.raises(LayerInputError, match=r"rows \[0, 1\] hold NaN"):
        pipeline.inverse_transform(rows, to="label", at="codes")
    with pytest.raises(LayerInputError, match=r"rows \[0\] hold NaN"):
        layers.OneHotLabels(labels=["a", "b"]).inverse_transform(np.array([[np.nan, np.nan], [0.3, 0.7]]))
    assert pipeline.inverse_transform(rows[2:], to="label", at="codes").tolist() == [5]


def probability_rows():
    """Batches of 1 to 6 rows of 2 to 4 scores in [0, 1], some NaN, some zero."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    score = st.one_of(st.just(np.nan), st.just(0.0), st.floats(0, 1, allow_subnormal=False))
    return st.tuples(st.integers(1, 6), st.integers(2, 4)).flatmap(
        lambda shape: hnp.arrays(np.float64, shape, elements=score)
    )


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(scores=probability_rows(), by_labels=st.booleans())
def test_one_hot_decodes_a_row_only_to_its_largest_number(scores, by_labels):
    """Any row holding NaN is refused (never decoded, so never to the NaN's column or the first
    value), a row of zeros too; any other row decodes to the value of its largest score."""
    k = scores.shape[1]
    values = np.array(["v0", "v1", "v2", "v3"][:k]) if by_labels else np.arange(10, 10 + k)
    layer = layers.OneHotLabels(labels=values) if by_labels else layers.OneHotRange(10, 9 + k)
    with_nan = np.isnan(scores).any(axis=1)
    zero = ~with_nan & ~(scores != 0).any(axis=1)
    if with_nan.any():
        with pytest.raises(LayerInputError, match=re.escape(f"rows {np.flatnonzero(with_nan)[:5].tolist()}")):
            layer.inverse_transform(scores)
    elif zero.any():
        with pytest.raises(LayerInputError, match="no non-zero column"):
            layer.inverse_transform(scores)
    else:
        decoded = layer.inverse_transform(scores)
        for row, value in zip(scores, decoded):
            assert row[list(values).index(value)] == row.max()


class Columns(StatelessLayer):
    """A third-party layer that, as scikit-learn does, works on (n, k) and flattens each row."""

    def output_spec(self, X):
        return Spec((None,), X.dtype)

    def transform(self, X):
        return X.reshape(len(X), -1) * 2

    def inverse_transform(self, Y):
        if Y.ndim != 2:
            raise ValueError(f"Expected 2D array, got {Y.ndim}D array")
        return Y / 2


def test_values_of_one_column_read_back_in_the_inputs_shape():
    """Predictions of a one-column node are one value per row; an input of one value per row
    comes back as (n,), never (n, 1), which would broadcast against (n,) silently."""
    y = Input("y")
    pipeline = megatron.Pipeline(y, Columns()(layers.ScalarAdd(1.0)(y, "shifted"), "wide"), name="cols")
    data = np.array([1.0, 2.0, 5.0])
    own = pipeline.transform({"y": data})["wide"]
    assert own.shape == (3, 1)
    np.testing.assert_allclose(pipeline.inverse_transform(own, to="y", at="wide"), data)
    assert pipeline.inverse_transform(own, to="y", at="wide").shape == (3,)
    predictions = own[:, 0]  # a regressor's (n,)
    assert pipeline.inverse_transform(predictions, to="y", at="wide").shape == (3,)
    np.testing.assert_allclose(pipeline.inverse_transform(predictions, to="y", at="wide"), data)


def test_a_scikit_learn_scaler_of_one_value_per_row_inverts_predictions():
    pytest.importorskip("megatron_sklearn")
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import StandardScaler

    from megatron.layers import Sklearn

    rng = np.random.default_rng(0)
    x, y = Input("x", (2,)), Input("y")
    ys = Sklearn(StandardScaler())(y, "ys")
    pipeline = megatron.Pipeline([x, y], Sklearn(LinearRegression())([x, ys], "pred"), name="t")
    X = rng.normal(size=(30, 2))
    Y = X @ [3.0, -2.0] * 100 + 1000
    pipeline.fit({"x": X, "y": Y})
    own = pipeline.transform({"x": X, "y": Y}, outputs=["ys"], store=False)["ys"]
    back = pipeline.inverse_transform(own, to="y", at="ys")
    assert back.shape == Y.shape
    np.testing.assert_allclose(back, Y)
    predictions = pipeline.transform({"x": X})["pred"]
    assert predictions.shape == (30,)
    np.testing.assert_allclose(pipeline.inverse_transform(predictions, to="y", at="ys"), Y, rtol=1e-9)


STEPS = {
    "whiten": layers.Whiten,
    "min_max": layers.MinMaxScale,
    "double": lambda: layers.ScalarMultiply(2.0),
    "shift": lambda: layers.ScalarAdd(-3.0),
    "columns": Columns,
}


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    shape=st.sampled_from([(), (1,), (2,)]),
    steps=st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=3),
    n=st.integers(2, 6),
    flat=st.booleans(),
)
def test_a_chain_inverts_to_the_inputs_shape(shape, steps, n, flat):
    """Through any chain of invertible layers (some flattening rows to columns), the inverse
    has the input's shape; values of a one-column node may be given as one value per row."""
    y = Input("y", shape)
    node = y
    for i, step in enumerate(steps):
        node = STEPS[step]()(node, f"step{i}")
    pipeline = megatron.Pipeline(y, node, name="chain")
    data = {"y": np.arange(1.0, 1.0 + n * int(np.prod(shape))).reshape(n, *shape) ** 1.5}
    pipeline.fit(data)
    out = pipeline.transform(data)[node.name]
    if flat and out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    back = pipeline.inverse_transform(out, to="y", at=node.name)
    assert back.shape == data["y"].shape
    np.testing.assert_allclose(back, data["y"], rtol=1e-9)


def test_a_zero_factor_is_named_as_the_reason():
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(0)(x, "z"), name="zero")
    assert not layers.ScalarMultiply(0).invertible
    assert layers.ScalarMultiply(0).why_not_invertible() == "its factor is 0, which maps every value to 0"
    assert layers.Clip(0, 1).why_not_invertible() == "it has no inverse_transform"
    assert layers.ScalarMultiply(2).why_not_invertible() is None
    with pytest.raises(NotInvertibleError, match=r"'z' is not invertible: its factor is 0, which maps every"):
        pipeline.inverse_transform(np.ones((1, 2)), to="x", at="z")
    with pytest.raises(NotInvertibleError, match="its factor holds a 0, which maps values to 0"):
        layers.ScalarMultiply(np.array([2, 0])).inverse_transform(np.ones((1, 2)))


def test_to_defaults_to_the_input_the_values_lead_back_to():
    y = np.array([0.0, 1.0, 5.0, 100.0])
    pipeline = chain().fit({"y": y})
    outputs = pipeline.transform({"y": y})
    np.testing.assert_allclose(pipeline.inverse_transform(outputs, at="doubled"), y, rtol=1e-12)
    np.testing.assert_allclose(pipeline.inverse_transform({"doubled": outputs["doubled"]}), y, rtol=1e-12)
    a, b = Input("a"), Input("b")
    two = megatron.Pipeline(
        [a, b], [layers.ScalarAdd(1.0)(a, "a1"), layers.ScalarAdd(2.0)(b, "b2")], name="two"
    )
    np.testing.assert_allclose(two.inverse_transform(np.array([3.0]), at="b2"), [1.0])
    np.testing.assert_allclose(two.inverse_transform({"b2": np.array([3.0])}), [1.0])
    with pytest.raises(NotInvertibleError, match="pass at="):
        two.inverse_transform({"a1": np.array([3.0]), "b2": np.array([3.0])})
    total = layers.Add()([a, b], "total")
    summed = megatron.Pipeline([a, b], layers.ScalarAdd(1.0)(total, "shifted"), name="sum")
    with pytest.raises(NotInvertibleError, match=r"back to an input: node 'total' comes from layer 'add'"):
        summed.inverse_transform(np.ones(2))
