"""Building graphs: calls, shared layers, multi-output layers, outputs, build-time checks."""

import numpy as np
import pytest

import megatron
from megatron.errors import ConfigError, GraphError, SpecError, UnknownOutputError
from megatron.layers import Lambda, StatelessLayer
from megatron.nodes import Input
from megatron.specs import Spec


class MinMax(StatelessLayer):
    """Two outputs per call: row minima and row maxima."""

    n_outputs = 2

    def transform(self, X):
        return X.min(axis=1), X.max(axis=1)

    def output_spec(self, X):
        return Spec((), X.dtype), Spec((), X.dtype)


class AddSame(StatelessLayer):
    def transform(self, a, b):
        return a + b

    def output_spec(self, a, b):
        if not a.compatible(b):
            raise SpecError(f"shapes {a.shape} and {b.shape} differ")
        return a


def test_two_inputs_shared_layer_multi_output_and_named_outputs():
    a, b = Input("a", (3,)), Input("b", (3,))
    double = Lambda(lambda x: 2 * x)
    da, db = double(a), double(b)  # one layer instance, called twice
    total = AddSame()([da, db], "total")
    low, high = MinMax()(total, ["low", "high"])
    pipeline = megatron.Pipeline([a, b], [high, total, low], name="graph")

    A = np.arange(12.0).reshape(4, 3)
    B = np.ones((4, 3))
    out = pipeline.transform({"a": A, "b": B})

    assert list(out) == ["high", "total", "low"]
    expected_total = 2 * A + 2 * B
    np.testing.assert_array_equal(out["total"], expected_total)
    np.testing.assert_array_equal(out[0], expected_total.max(axis=1))
    np.testing.assert_array_equal(out[1], out["total"])
    np.testing.assert_array_equal(out[2], expected_total.min(axis=1))
    np.testing.assert_array_equal(out.index, np.arange(4))
    assert low.spec == Spec((), None)


def test_multi_output_layer_computes_once_per_call():
    calls = []

    def split(x):
        calls.append(1)
        return x[:, 0], x[:, 1]

    x = Input("x", (2,))
    first, second = Lambda(split, n_outputs=2)(x, "part")
    assert (first.name, second.name) == ("part:0", "part:1")
    pipeline = megatron.Pipeline(x, [first, second], name="split")
    out = pipeline.transform({"x": np.eye(2)})
    assert len(calls) == 1
    np.testing.assert_array_equal(out["part:1"], [0.0, 1.0])


def test_shape_mismatch_fails_at_build_time_naming_both_nodes():
    a, b = Input("left", (3,)), Input("right", (4,))
    with pytest.raises(SpecError, match=r"'left' \(3,\).*'right' \(4,\).*differ"):
        AddSame()([a, b])


def test_output_must_be_named():
    x = Input("x")
    y = Lambda(np.abs)(x)
    with pytest.raises(GraphError, match="has no name"):
        megatron.Pipeline(x, y, name="p")


def test_undeclared_input_is_refused():
    x, z = Input("x"), Input("z")
    y = AddSame()([x, z], "y")
    with pytest.raises(GraphError, match="needs input 'z'"):
        megatron.Pipeline(x, y, name="p")


def test_duplicate_node_names_are_refused():
    x = Input("x")
    y = Lambda(np.abs)(x, "x")
    with pytest.raises(GraphError, match="two different nodes are named 'x'"):
        megatron.Pipeline(x, y, name="p")


def test_layer_called_on_non_node_says_what_it_got():
    with pytest.raises(GraphError, match="expects Nodes; got ndarray"):
        Lambda(np.abs)([np.zeros(3)])


def test_unknown_output_name_and_position():
    x = Input("x")
    pipeline = megatron.Pipeline(x, Lambda(np.abs)(x, "abs"), name="p")
    out = pipeline.transform({"x": [-1.0, 2.0]})
    with pytest.raises(UnknownOutputError, match=r"No output named 'ab'; the outputs are \['abs'\]"):
        out["ab"]
    with pytest.raises(UnknownOutputError, match="position 3 is out of range"):
        out[3]


def test_nodes_hold_no_run_data():
    x = Input("x")
    y = Lambda(np.abs)(x, "y")
    megatron.Pipeline(x, y, name="p").transform({"x": [-1.0]})
    assert not y.is_eager
    with pytest.raises(megatron.errors.GraphError, match="holds no value"):
        y.output


def test_multi_output_names_must_match_the_outputs():
    x = Input("x", (2,))
    with pytest.raises(GraphError, match="has 2 outputs; name= must be a string or 2 strings"):
        Lambda(lambda v: (v, v), n_outputs=2)(x, ["only_one"])


@pytest.mark.parametrize(("shape", "columns"), [((), ["a"]), ((2,), ["a", "b", "c"]), ((2, 2), ["a", "b"])])
def test_an_input_of_columns_has_one_value_per_column(shape, columns):
    """An input reading k columns holds k values per observation: another shape is refused
    where it is declared (it failed later, blaming a layer downstream)."""
    with pytest.raises(ConfigError, match=rf"reads {len(columns)} columns .* pass shape=\({len(columns)},\)"):
        Input("z", shape, columns=columns)
    assert Input("z", (len(columns),), columns=columns).columns == columns
    assert Input("z", (None,), columns=columns).columns == columns
