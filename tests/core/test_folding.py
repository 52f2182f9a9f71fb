"""Folding chains of affine layers: the same results as the layers one by one, up to the stated
rounding; never stale coefficients; only where nothing else reads the intermediates; the
unfolded chain's dtype; the layers' own errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import LayerInputError
from megatron.execution.folding import FoldedChain
from megatron.execution.threads import ThreadExecutor
from megatron.layers.affine import compose
from megatron.nodes import Input

KINDS = ("whiten", "minmax", "multiply", "add", "dot")


def make_layer(kind: str, width: int, rng: np.random.Generator, out: int) -> layers.Layer:
    if kind == "whiten":
        return layers.Whiten()
    if kind == "minmax":
        return layers.MinMaxScale(feature_range=(-1.0, 2.0))
    if kind == "multiply":
        return layers.ScalarMultiply(float(rng.uniform(-3, 3)))
    if kind == "add":
        return layers.ScalarAdd(float(rng.uniform(-5, 5)))
    return layers.StaticDot(rng.normal(size=(width, out)))


def build_chain(kinds, width, rng, dtype=np.float64):
    """A pipeline over the chain of ``kinds`` (fitted on generated data), and its layers."""
    x = Input("x", (width,))
    node, chain = x, []
    for i, kind in enumerate(kinds):
        out = int(rng.integers(1, 5))
        layer = make_layer(kind, width, rng, out)
        chain.append(layer)
        node = layer(node, "out" if i == len(kinds) - 1 else None)
        if kind == "dot":
            width = out
    train = (rng.normal(size=(30, x.spec.shape[0])) * 4 + 1).astype(dtype)
    folded = megatron.Pipeline(x, node, name="folded").fit({"x": train})
    unfolded = megatron.Pipeline(x, node, name="unfolded", optimize=False)
    return folded, unfolded, chain


def through(layer, M: np.ndarray) -> np.ndarray:
    """A bound on every partial term ``layer`` computes from inputs of magnitude ``M``."""
    if isinstance(layer, layers.Whiten):
        return (M + np.abs(layer.metadata["mean"])) / layer.metadata["scale"]
    if isinstance(layer, layers.MinMaxScale):
        low, high = layer.feature_range
        span = layer.metadata["max"] - layer.metadata["min"]
        scale = (high - low) / np.where(span == 0, 1, span)
        return (M + np.abs(layer.metadata["min"])) * scale + abs(low)
    if isinstance(layer, layers.ScalarMultiply):
        return M * abs(layer.factor)
    if isinstance(layer, layers.ScalarAdd):
        return M + abs(layer.value)
    return M @ np.abs(layer.W)


def bound(chain, X, dtype) -> np.ndarray:
    """The stated tolerance: 4 (k + n + 2) eps M, with eps that of the input's dtype, k layers, n
    the widest input of a matrix, and M the largest magnitude met on the way: each partial
    term of the layers (taken through the rest of the chain in absolute value) and of the folded
    map (the input through the composed map in absolute value, the bias, the result)."""
    magnitude = np.abs(X.astype(np.float64))
    for layer in chain:
        magnitude = through(layer, magnitude)
    folded = compose([layer.affine() for layer in chain])
    A, b = np.abs(folded.coef), np.abs(folded.intercept)
    X64 = np.abs(X.astype(np.float64))
    terms = (X64 * A if folded.elementwise else X64 @ A) + b
    n = max(X.shape[1], max((c.W.shape[0] for c in chain if isinstance(c, layers.StaticDot)), default=1))
    return 4 * (len(chain) + n + 2) * np.finfo(dtype).eps * (magnitude + terms)


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=2, max_size=5),
    width=st.integers(1, 6),
    rows=st.integers(0, 12),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_folded_chain_gives_the_layers_results_up_to_rounding(kinds, width, rows, dtype, seed):
    rng = np.random.default_rng(seed)
    folded, unfolded, chain = build_chain(kinds, width, rng, dtype)
    assert len(folded.plan_of("transform").folded) == 1
    X = (rng.normal(size=(rows, width)) * 10).astype(dtype)
    got, want = folded.transform({"x": X})["out"], unfolded.transform({"x": X})["out"]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_less(np.abs(got - want), bound(chain, X, dtype) + np.finfo(dtype).tiny)


def chain_pipelines(W=None):
    rng = np.random.default_rng(1)
    W = rng.normal(size=(5, 3)) if W is None else W
    x = Input("x", (5,))
    whiten, dot = layers.Whiten(), layers.StaticDot(W)
    out = layers.Clip(-1.0, 1.0)(dot(whiten(x)), "out")
    return (
        megatron.Pipeline(x, out, name="folded"),
        megatron.Pipeline(x, out, name="unfolded", optimize=False),
        whiten,
        dot,
    )


def same(folded, unfolded, X):
    np.testing.assert_allclose(
        folded.transform({"x": X})["out"], unfolded.transform({"x": X})["out"], rtol=1e-12, atol=1e-12
    )


DATA = np.random.default_rng(2).normal(size=(40, 5)) * 3 + 2
OTHER = np.random.default_rng(3).normal(size=(40, 5)) * 0.5 - 7


def test_folded_coefficients_follow_a_refit_and_a_partial_fit():
    folded, unfolded, _, _ = chain_pipelines()
    folded.fit({"x": DATA})
    same(folded, unfolded, OTHER)
    folded.fit({"x": OTHER})
    same(folded, unfolded, DATA)
    folded.partial_fit({"x": DATA * 5})
    same(folded, unfolded, DATA)


def test_folded_coefficients_follow_set_state_and_replaced_metadata():
    folded, unfolded, whiten, _ = chain_pipelines()
    folded.fit({"x": DATA})
    same(folded, unfolded, OTHER)
    other = layers.Whiten()
    other.fit(OTHER)
    whiten.set_state(other.get_state())
    same(folded, unfolded, DATA)
    whiten.metadata["mean"] = whiten.metadata["mean"] + 100.0  # a key replaced by hand
    same(folded, unfolded, DATA)


def test_folded_coefficients_follow_a_hyperparameter_change():
    folded, unfolded, _, dot = chain_pipelines()
    folded.fit({"x": DATA})
    same(folded, unfolded, OTHER)
    dot.W = np.full((5, 3), 0.25)
    same(folded, unfolded, OTHER)
    np.testing.assert_allclose(
        folded.transform({"x": OTHER})["out"][:, 0], unfolded.transform({"x": OTHER})["out"][:, 0]
    )


def test_a_loaded_pipeline_folds_its_own_state(tmp_path):
    folded, unfolded, _, _ = chain_pipelines()
    folded.fit({"x": DATA})
    folded.transform({"x": OTHER})  # folded once, before saving
    loaded = megatron.load_pipeline(folded.save(tmp_path))
    np.testing.assert_allclose(loaded.transform({"x": OTHER})["out"], unfolded.transform({"x": OTHER})["out"])
    assert loaded.plan_of("transform").folded


def test_only_chains_whose_intermediates_nothing_else_reads_are_folded():
    x = Input("x", (3,))
    whiten = layers.Whiten()(x, "white")
    scaled = layers.ScalarMultiply(2.0)(whiten)
    out = layers.ScalarAdd(1.0)(scaled, "out")
    assert megatron.Pipeline(x, out, name="p").plan_of("transform").folded  # all three
    # an intermediate that is an output cuts the chain
    plan = megatron.Pipeline(x, [whiten, out], name="q").plan_of("transform")
    assert [f.layers for f in plan.folded] == [(scaled.layer, out.layer)]
    # an intermediate read by another call cuts it too
    other = layers.Clip(0.0, 1.0)(scaled, "other")
    plan = megatron.Pipeline(x, [out, other], name="r").plan_of("transform")
    assert [f.layers for f in plan.folded] == [(whiten.layer, scaled.layer)]
    # a metric's input is never folded away
    metric = megatron.metrics.MeanSquaredError()([x, scaled], "mse")
    pipeline = megatron.Pipeline(x, out, name="s", metrics=[metric]).fit({"x": DATA[:, :3]})
    assert [f.layers for f in pipeline.plan_of("evaluate").folded] == [(whiten.layer, scaled.layer)]
    # the fit plan fits Whiten: nothing fitted there is folded
    assert not megatron.Pipeline(x, out, name="t").plan_of("fit").folded
    assert not megatron.Pipeline(x, out, name="u", optimize=False).plan_of("transform").folded


def test_float32_chains_stay_float32_and_integers_keep_integer_arithmetic():
    x = Input("x", (4,))
    out = layers.ScalarMultiply(3)(layers.ScalarAdd(2)(x), "out")
    folded, unfolded = (
        megatron.Pipeline(x, out, name="f"),
        megatron.Pipeline(x, out, name="u", optimize=False),
    )
    big = np.full((2, 4), 2**62, dtype=np.int64)  # wraps around as integers do
    np.testing.assert_array_equal(folded.transform({"x": big})["out"], unfolded.transform({"x": big})["out"])
    assert folded.transform({"x": big})["out"].dtype == np.int64
    small = np.arange(8, dtype=np.float32).reshape(2, 4)
    assert folded.transform({"x": small})["out"].dtype == np.float32
    np.testing.assert_allclose(folded.transform({"x": small})["out"], (small + 2) * 3, rtol=1e-6)


def test_nan_stays_in_its_own_feature_through_an_elementwise_chain():
    x = Input("x", (3,))
    out = layers.ScalarAdd(1.0)(layers.ScalarMultiply(2.0)(layers.Whiten()(x)), "out")
    folded = megatron.Pipeline(x, out, name="f").fit({"x": DATA[:, :3]})
    X = DATA[:4, :3].copy()
    X[1, 2] = np.nan
    got = folded.transform({"x": X})["out"]
    assert np.isnan(got).sum() == 1 and np.isnan(got[1, 2])


def test_a_folded_chain_raises_the_error_of_the_layer_that_refuses_its_input():
    folded, unfolded, _, _ = chain_pipelines()
    folded.fit({"x": DATA})
    narrow = [np.zeros((2, 4))]  # past the pipeline's own input check, as an executor is called
    with pytest.raises(LayerInputError, match="whiten") as got:
        folded._executor.run(folded.plan_of("transform"), narrow)
    with pytest.raises(LayerInputError) as want:
        unfolded._executor.run(unfolded.plan_of("transform"), narrow)
    assert str(got.value) == str(want.value)


def test_the_thread_executor_runs_folded_and_in_place_steps():
    rng = np.random.default_rng(5)
    x = Input("x", (5,))
    white = layers.Whiten()(x)
    left = layers.Clip(-1.0, 1.0)(layers.StaticDot(rng.normal(size=(5, 2)))(white), "left")
    right = layers.Clip(-2.0, 2.0)(layers.ScalarMultiply(3.0)(layers.MinMaxScale()(x)), "right")
    threads = megatron.Pipeline(x, [left, right], name="t", executor=ThreadExecutor(max_workers=2)).fit(
        {"x": DATA}
    )
    plain = megatron.Pipeline(x, [left, right], name="p", optimize=False)
    assert any(step.in_place for step in threads.plan_of("transform").steps)
    got, want = threads.transform({"x": OTHER}), plain.transform({"x": OTHER})
    for name in ("left", "right"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-12)


def test_the_summary_shows_the_folded_chains():
    folded, unfolded, _, _ = chain_pipelines()
    lines = []
    folded.summary(print_fn=lines.append)
    assert "Folded at transform: whiten -> static_dot" in lines[0]
    lines.clear()
    unfolded.summary(print_fn=lines.append)
    assert "Folded" not in lines[0]


def test_a_folded_chain_is_a_step_of_its_own():
    folded, _, _, _ = chain_pipelines()
    plan = folded.plan_of("transform")
    assert [type(step.call.layer) for step in plan.steps] == [FoldedChain, layers.Clip]


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["multiply", "add"]), st.floats(-300, 300), st.booleans()),
        min_size=2,
        max_size=5,
    ),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_extreme_scales_fold_only_where_the_folded_map_gives_the_layers_results(steps, dtype, seed):
    """Coefficients far from 1 (a factor of 1e-200 then 1e300, whose product underflows to 0; a
    float32 intermediate that overflows) once folded into results far from the layers' own:
    such chains run layer by layer, and the others stay within the stated bound."""
    limit = 38 if dtype is np.float32 else 300
    chain = [
        (layers.ScalarMultiply if kind == "multiply" else layers.ScalarAdd)(
            (-1.0 if negative else 1.0) * 10.0 ** max(-limit, min(limit, power))
        )
        for kind, power, negative in steps
    ]
    x = Input("x", (3,))
    node = x
    for layer in chain[:-1]:
        node = layer(node)
    node = chain[-1](node, "out")
    X = (
        np.random.default_rng(seed).normal(size=(4, 3)) * 10.0 ** (10 if dtype is np.float32 else 90)
    ).astype(dtype)
    with np.errstate(all="ignore"):
        got = megatron.Pipeline(x, node, name="f").transform({"x": X})
        want = megatron.Pipeline(x, node, name="u", optimize=False).transform({"x": X})
    got, want = got[0], want[0]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    finite = np.isfinite(want)
    with np.errstate(all="ignore"):
        tolerance = bound(chain, X, dtype)
    assert (np.abs(got[finite] - want[finite]) <= tolerance[finite] + np.finfo(dtype).tiny).all()


def test_a_chain_whose_coefficients_underflow_or_overflow_runs_unfolded():
    x = Input("x")
    tiny = layers.ScalarMultiply(1e-200)(layers.ScalarMultiply(1e-200)(x))
    node = layers.ScalarMultiply(1e300)(tiny, "out")
    data = {"x": np.array([1e100, 1e200])}
    with np.errstate(all="ignore"):
        folded = megatron.Pipeline(x, node, name="f").transform(data)["out"]
        unfolded = megatron.Pipeline(x, node, name="u", optimize=False).transform(data)["out"]
    np.testing.assert_array_equal(folded, unfolded)  # [1e200, inf]; folded once gave [0, nan]
    y = Input("y", (2,))
    big = layers.ScalarMultiply(1e-30)(layers.ScalarMultiply(1e30)(y), "out")
    data32 = {"y": np.array([[1e20, 1.0]], np.float32)}
    with np.errstate(all="ignore"):
        folded = megatron.Pipeline(y, big, name="f").transform(data32)["out"]
        unfolded = megatron.Pipeline(y, big, name="u", optimize=False).transform(data32)["out"]
    np.testing.assert_array_equal(folded, unfolded)  # [inf, 1]; folded once gave [1e20, 1]


def test_an_in_place_clip_whose_bounds_widen_its_input_makes_a_new_array():
    x = Input("x", (None,))
    node = layers.Clip(np.zeros(3), np.ones(3))(layers.ScalarMultiply(2.0)(x), "o")
    data = {"x": np.full((2, 1), 0.3)}
    got = megatron.Pipeline(x, node, name="in place").transform(data)["o"]
    want = megatron.Pipeline(x, node, name="plain", optimize=False).transform(data)["o"]
    np.testing.assert_array_equal(got, want)  # shape (2, 3); in place it raised
