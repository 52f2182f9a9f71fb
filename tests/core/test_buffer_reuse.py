"""Element-wise steps write into the arrays the plan frees: only arrays the plan alone holds
(never the caller's, never one handed back or read again), with the same results."""

from typing import ClassVar

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.layers import Lambda, StatelessLayer
from megatron.nodes import Input


class Doubled(StatelessLayer):
    """A fresh array per call, remembered so a test can see where a later step wrote."""

    fresh_output = True
    made: ClassVar[list] = []

    def transform(self, X):
        out = X * 2.0
        Doubled.made.append(out)
        return out


def test_an_elementwise_step_writes_into_the_fresh_array_it_frees():
    x = Input("x", (3,))
    out = layers.ScalarMultiply(3.0)(layers.Clip(-1.0, 1.0)(Doubled()(x)), "out")
    pipeline = megatron.Pipeline(x, out, name="p")
    assert [step.in_place for step in pipeline.plan_of("transform").steps] == [False, True, True]
    X = np.linspace(-1, 1, 6).reshape(2, 3)
    got = pipeline.transform({"x": X})["out"]
    assert np.shares_memory(got, Doubled.made[-1])
    np.testing.assert_array_equal(got, np.clip(X * 2, -1, 1) * 3)


def test_no_step_writes_into_an_input_an_output_a_shared_value_or_an_array_of_unknown_origin():
    x = Input("x", (3,))
    same = Lambda(lambda v: v)(x)  # hands back the caller's own array: not fresh
    a = layers.Clip(0.0, 1.0)(same, "a")
    doubled = Doubled()(x, "doubled")  # an output
    b = layers.ScalarMultiply(2.0)(doubled, "b")
    shared = Doubled()(x)
    c = layers.Clip(0.0, 1.0)(shared, "c")
    d = layers.ScalarMultiply(2.0)(shared, "d")  # two readers
    e = layers.Clip(0.0, 1.0)(x, "e")  # the caller's array
    pipeline = megatron.Pipeline(x, [a, doubled, b, c, d, e], name="p")
    assert not any(step.in_place for step in pipeline.plan_of("transform").steps)
    X = np.linspace(-2, 2, 9).reshape(3, 3)
    kept = X.copy()
    got = pipeline.transform({"x": X})
    np.testing.assert_array_equal(X, kept)
    np.testing.assert_array_equal(got["doubled"], kept * 2)


ELEMENTWISE = {
    "clip": lambda: layers.Clip(-1.0, 1.0),
    "multiply": lambda: layers.ScalarMultiply(-2.0),
    "add": lambda: layers.ScalarAdd(0.5),
    "whiten": lambda: layers.Whiten(),
    "minmax": lambda: layers.MinMaxScale(),
    "same": lambda: Lambda(lambda v: v),
    "view": lambda: Lambda(lambda v: v[:, ::-1]),
    "fresh": lambda: Doubled(),
}


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(sorted(ELEMENTWISE)), min_size=1, max_size=6),
    parents=st.lists(st.integers(0, 10), min_size=6, max_size=6),
    shown=st.lists(st.booleans(), min_size=6, max_size=6),
    dtype=st.sampled_from([np.float32, np.float64, np.int64]),
)
def test_reusing_buffers_never_changes_a_caller_array_nor_a_result(kinds, parents, shown, dtype):
    """Random graphs of element-wise layers, views and pass-throughs, any of their nodes an
    output: the caller's array stays as it was, and every output equals the unoptimized plan's."""
    x = Input("x", (4,))
    nodes = [x]
    for i, kind in enumerate(kinds):
        nodes.append(ELEMENTWISE[kind]()(nodes[parents[i] % len(nodes)], f"n{i}"))
    outputs = [n for n, show in zip(nodes[1:], shown) if show] or [nodes[-1]]
    train = np.arange(12, dtype=np.float64).reshape(3, 4)
    optimized = megatron.Pipeline(x, outputs, name="o").fit({"x": train})
    plain = megatron.Pipeline(x, outputs, name="p", optimize=False)
    X = (np.arange(12).reshape(3, 4) - 5).astype(dtype)
    kept = X.copy()
    got, want = optimized.transform({"x": X}), plain.transform({"x": X})
    np.testing.assert_array_equal(X, kept)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-9)
        assert got[name].dtype == want[name].dtype
