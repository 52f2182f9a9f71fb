"""The lean path of ``transform`` (a dict of numpy arrays on a compiled, fitted plan) gives what
the ordinary path gives, for any data: the same Outputs (names, arrays, dtypes, index), or the
same error with the same message. The ordinary path is reached with a read-only view of the
same dict (a Mapping that is not a dict), which the lean path never takes."""

from __future__ import annotations

import pickle
import types
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.execution.lean import lean_feeds
from megatron.nodes import Input

RNG = np.random.default_rng(0)
TRAIN = {"x": RNG.normal(size=(50, 4)), "w": RNG.normal(size=(50, 4)), "k": RNG.integers(0, 3, 50)}
PROJECTION = RNG.normal(size=(4, 2))


def chain(storage: Any = None) -> megatron.Pipeline:
    x = Input("x", (4,))
    out = layers.Clip(-1.0, 1.0)(layers.StaticDot(PROJECTION)(layers.Whiten()(x)), "out")
    return megatron.Pipeline(x, out, name="chain", storage=storage)


def two_inputs() -> megatron.Pipeline:
    x, w = Input("x", (4,)), Input("w", (4,), dtype="float32")
    total = layers.Add()([layers.MinMaxScale()(x), w], "total")
    return megatron.Pipeline([x, w], [total, layers.Dot()([x, total], "dot")], name="two")


def filtered() -> megatron.Pipeline:
    x, k = Input("x", (4,)), Input("k")
    kept = layers.Filter()([layers.Lambda(lambda v: v > 0)(k), x])
    return megatron.Pipeline([x, k], layers.Whiten()(kept, "white"), name="filtered")


def any_shape() -> megatron.Pipeline:
    x = Input("x", (None,))
    return megatron.Pipeline(x, layers.ScalarMultiply(2.0)(x, "double"), name="any")


PIPELINES = {"chain": chain, "two": two_inputs, "filtered": filtered, "any": any_shape}
FITTED = {name: make().fit(TRAIN) for name, make in PIPELINES.items()}


def outcome(pipeline: megatron.Pipeline, data: Any) -> tuple[str, Any]:
    try:
        result = pipeline.transform(data)
    except Exception as exc:  # the same error, message and all, is what the property asks
        return "error", (type(exc), str(exc))
    return "outputs", result


def assert_same(lean: tuple[str, Any], ordinary: tuple[str, Any]) -> None:
    assert lean[0] == ordinary[0], (lean, ordinary)
    if lean[0] == "error":
        assert lean[1] == ordinary[1]
        return
    a, b = lean[1], ordinary[1]
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape
        np.testing.assert_array_equal(a[name], b[name])
    assert a.index.dtype == b.index.dtype
    np.testing.assert_array_equal(a.index, b.index)
    assert type(a.given_index) is type(b.given_index)


def arrays(rows: int, good: bool) -> st.SearchStrategy[Any]:
    width = st.just(4) if good else st.sampled_from([3, 4, 5])
    dtype = st.just(np.float64) if good else st.sampled_from([np.float64, np.float32, np.int64, np.bool_])
    return st.tuples(width, dtype).map(lambda wd: RNG.normal(size=(rows, wd[0])).astype(wd[1]))


@st.composite
def data(draw: st.DrawFn, good: bool) -> dict[str, Any]:
    rows = draw(st.sampled_from([1, 1, 1, 2, 7]))  # one row most often: the case the lean path serves
    found: dict[str, Any] = {
        "x": draw(arrays(rows, good)),
        "w": draw(arrays(rows, good)),
        "k": RNG.integers(-1, 2, rows),
    }
    if not good:
        if draw(st.booleans()):
            found.pop(draw(st.sampled_from(sorted(found))))
        if draw(st.booleans()):
            found["k"] = RNG.integers(-1, 2, rows + 1)  # a length of its own
        if draw(st.booleans()):
            found["extra"] = draw(st.sampled_from([[1.0], 3, "text", np.zeros(())]))
        if draw(st.booleans()) and "x" in found:
            found["x"] = found["x"][0]  # one observation without its batch axis
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(PIPELINES)), given_data=data(good=True))
def test_the_lean_path_gives_the_outputs_of_the_ordinary_one(name, given_data):
    pipeline = FITTED[name]
    ordinary = outcome(pipeline, types.MappingProxyType(given_data))  # compiles the plan if not yet
    assert lean_feeds(pipeline._plans, given_data) is not None  # the lean path is the one taken
    assert_same(outcome(pipeline, given_data), ordinary)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(PIPELINES)), given_data=data(good=False))
def test_any_data_gives_the_same_outputs_or_error_on_both_paths(name, given_data):
    pipeline = FITTED[name]
    assert_same(outcome(pipeline, given_data), outcome(pipeline, types.MappingProxyType(given_data)))


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_an_unfitted_pipeline_raises_the_same_error_on_both_paths(name):
    pipeline = PIPELINES[name]()
    row = {key: value[:1] for key, value in TRAIN.items()}
    if pipeline.plan_of("transform").requires_fitted:
        lean, ordinary = outcome(pipeline, row), outcome(pipeline, types.MappingProxyType(row))
        assert lean[0] == "error" and "is not fitted" in lean[1][1]
        assert_same(lean, ordinary)


def test_the_lean_path_stores_as_the_ordinary_one():
    stored = {}
    for kind, wrap in (("lean", dict), ("ordinary", types.MappingProxyType)):
        pipeline = chain(storage="memory://").fit(TRAIN)
        pipeline.transform(wrap({"x": TRAIN["x"][:3]}))
        stored[kind] = pipeline.storage.read([0, 1, 2])
    assert_same(("outputs", stored["lean"]), ("outputs", stored["ordinary"]))


def test_a_copy_of_the_pipeline_compiles_and_reads_its_own_plan():
    pipeline = chain().fit(TRAIN)
    row = {"x": TRAIN["x"][:1]}
    first = pipeline.transform(row)
    pipeline.transform(row)  # the lean path, its plan read and kept
    copy = pickle.loads(pickle.dumps(pipeline))
    assert lean_feeds(copy._plans, row) is None  # the copy's plans start empty
    for _ in range(2):  # the ordinary path compiles the copy's plan, then the lean path reads it
        np.testing.assert_array_equal(copy.transform(row)["out"], first["out"])
    assert lean_feeds(copy._plans, row) is not None
