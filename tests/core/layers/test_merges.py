"""The door to what a layer learned (``get_state``/``set_state``) and merges of states: what
each built-in declares, what the base class keeps for every merge (fitted shapes, refusals),
and the cases the conformance suite's merge check (run on every built-in case by
``test_conformance``) does not reach."""

import numpy as np
import pytest

from megatron import layers
from megatron.errors import LayerInputError
from megatron.layers import StatefulLayer
from megatron.layers.scaling import combined_moments
from megatron.nodes import Input
from megatron.pipeline import Pipeline
from megatron.testing import LayerCase
from megatron.testing.layers import check_merge_matches_partial_fit
from megatron.testing.states import state_difference

from .test_conformance import ALL_CASES

rng = np.random.default_rng(3)
X = rng.normal(5, 2, size=(30, 3))

EXACTNESS = {
    "Whiten": "rounding",
    "MinMaxScale": "exact",
    "OneHotRange-learned": "exact",
    "OneHotRange-strict": "exact",
    "OneHotLabels": "exact",
    "CountVectorize": "exact",
    "SimpleImpute-mean": "rounding",
    "SimpleImpute-most_frequent": "exact",
    "SimpleImpute-constant": "exact",
}


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_each_built_in_layer_declares_how_its_states_merge(case):
    layer = case.layer()
    want = EXACTNESS.get(str(case))
    if isinstance(layer, StatefulLayer):
        assert layer.merge_exactness() == want
        assert layer.supports_merge() is (want is not None)
    else:
        assert want is None


def fitted(make, *batches):
    layer = make()
    for batch in batches:
        layer.partial_fit(batch)
    return layer


def test_a_layer_that_declares_no_merge_refuses_to_merge():
    median = layers.SimpleImpute(strategy="median")
    median.fit(X)
    with pytest.raises(NotImplementedError, match="cannot merge"):
        median.merge_states(median.get_state(), median.get_state())

    class Counter(StatefulLayer):
        def partial_fit(self, X):
            self.metadata["n"] = self.metadata.get("n", 0) + len(X)

    with pytest.raises(NotImplementedError, match="cannot merge"):
        Counter().merge(Counter())


def test_states_learned_from_observations_of_other_shapes_are_refused():
    a, b = fitted(layers.Whiten, X), fitted(layers.Whiten, X[:, :2])
    with pytest.raises(LayerInputError, match=r"shape \(3,\) with .* shape \(2,\)"):
        a.merge(b)


def test_a_merge_keeps_the_fitted_shapes_which_transform_then_requires():
    merged = fitted(layers.MinMaxScale, X[:10])
    merged.merge(fitted(layers.MinMaxScale, X[10:]))
    assert merged.metadata["_fitted_shapes"] == ((3,),)
    with pytest.raises(LayerInputError, match="fitted on observations of shape"):
        merged.transform(X[:, :2])


def test_a_layer_of_any_shape_keeps_the_last_parts_shapes_as_partial_fit_does():
    words = np.array(["a b", "b c", "c d", "a a"])
    a = fitted(layers.CountVectorize, words[:2])
    b = fitted(layers.CountVectorize, words[2:])
    merged = a.merge_states(a.get_state(), b.get_state())
    assert merged["_fitted_shapes"] == b.get_state()["_fitted_shapes"]
    assert merged["vocabulary"].tolist() == ["a", "b", "c", "d"] and merged["counts"].tolist() == [3, 2, 2, 1]


def test_get_state_is_a_copy_and_set_state_installs_a_copy_as_if_fitted():
    source = fitted(layers.Whiten, X)
    state = source.get_state()
    state["mean"][:] = 0
    assert source.metadata["mean"][0] != 0
    target = layers.Whiten()
    token = target.state_token
    state = source.get_state()
    target.set_state(state)
    state["mean"][:] = 0  # the layer holds its own copy
    assert target.fitted and target.state_token != token
    np.testing.assert_array_equal(target.transform(X), source.transform(X))
    with pytest.raises(LayerInputError, match="mapping"):
        target.set_state([("mean", 0)])


def test_merge_renews_the_state_token_so_the_pipeline_fingerprint_changes():
    x = Input("x", (3,))
    layer = layers.Whiten()
    pipeline = Pipeline(x, layer(x, "scaled"), name="merged")
    pipeline.fit({"x": X[:10]})
    before = pipeline.fingerprint
    layer.merge(fitted(layers.Whiten, X[10:]))
    assert pipeline.fingerprint != before
    np.testing.assert_allclose(pipeline.transform({"x": X})["scaled"], (X - X.mean(axis=0)) / X.std(axis=0))


def test_count_vectorize_counts_on_from_an_installed_state_not_from_what_it_counted_before():
    A, B, C = np.array(["x x x x y"]), np.array(["y z"]), np.array(["z w"])
    layer = fitted(lambda: layers.CountVectorize(max_features=2), A)
    layer.set_state(fitted(lambda: layers.CountVectorize(max_features=2), B).get_state())
    layer.partial_fit(C)
    want = fitted(lambda: layers.CountVectorize(max_features=2), B, C)
    assert state_difference(layer.get_state(), want.get_state()) is None


def test_most_frequent_merges_keep_the_dtype_of_the_values_when_a_part_lacks_a_feature():
    A = np.array([[1, 2], [1, 3]], dtype=np.float32)
    B = np.array([[4, np.nan], [1, np.nan]], dtype=np.float32)  # no value of feature 1
    make = lambda: layers.SimpleImpute("most_frequent")  # noqa: E731
    a, b = fitted(make, A), fitted(make, B)
    assert b.metadata["fill"].dtype == np.float64  # NaN kept for the feature without a value
    merged = a.merge_states(a.get_state(), b.get_state())
    whole = fitted(make, A, B).get_state()
    assert merged["fill"].dtype == np.float32 and state_difference(merged, whole) is None
    del b.metadata["_dtype"]  # a state saved before the values' dtype was kept: its fill's
    assert a.merge_states(a.get_state(), b.get_state())["fill"].dtype == np.float64


def test_whiten_learns_each_batch_by_the_same_merge():
    a, b = fitted(layers.Whiten, X[:7]), fitted(layers.Whiten, X[7:])
    whole = fitted(layers.Whiten, X[:7], X[7:])
    moments = combined_moments(a.get_state(), b.get_state())
    for key in ("n", "mean", "m2"):
        np.testing.assert_array_equal(moments[key], whole.metadata[key])
    assert state_difference(combined_moments({}, b.metadata), combined_moments(b.metadata, {})) is None
    assert combined_moments({}, {}) == {}


@pytest.mark.parametrize("ignore_nan", [False, True])
def test_whiten_merges_with_missing_values_and_float32(ignore_nan):
    data = X.astype(np.float32)
    if ignore_nan:
        data = np.where(rng.random(data.shape) < 0.3, np.nan, data).astype(np.float32)
        data[:10, 0] = np.nan  # a feature without a value in the first part
    check_merge_matches_partial_fit(LayerCase(lambda: layers.Whiten(ignore_nan=ignore_nan), (data,)))


def test_min_max_and_ranges_merge_with_missing_values_and_other_dtypes():
    data = np.where(rng.random(X.shape) < 0.3, np.nan, X)
    data[:10, 1] = np.nan
    check_merge_matches_partial_fit(LayerCase(lambda: layers.MinMaxScale(ignore_nan=True), (data,)))
    check_merge_matches_partial_fit(LayerCase(layers.OneHotRange, (np.arange(-5, 25, dtype=np.int16),)))
    check_merge_matches_partial_fit(LayerCase(layers.OneHotLabels, (np.array([3.5, 1.0, 2.25] * 10),)))
    check_merge_matches_partial_fit(
        LayerCase(lambda: layers.OneHotLabels(labels=["b", "a"]), (np.array(["a", "b"] * 9),))
    )


def test_simple_impute_merges_strings_and_features_without_values():
    words = np.array(
        [["a", None], ["b", None], ["a", "x"], [None, "y"], ["b", "y"], ["b", None]] * 3, dtype=object
    )
    check_merge_matches_partial_fit(LayerCase(lambda: layers.SimpleImpute("most_frequent"), (words,)))
    data = X.copy()
    data[:10, 2] = np.nan
    check_merge_matches_partial_fit(LayerCase(layers.SimpleImpute, (data,)))


class Center(StatefulLayer):
    """Subtracts the mean; states merge by adding counts and sums, up to rounding."""

    def partial_fit(self, X):
        self.metadata["n"] = self.metadata.get("n", 0) + len(X)
        self.metadata["total"] = self.metadata.get("total", 0.0) + X.sum(axis=0)

    def transform(self, X):
        return X - self.metadata["total"] / self.metadata["n"]

    def merge_exactness(self):
        return "rounding"

    def merge_states(self, a, b):
        return {"n": a.get("n", 0) + b.get("n", 0), "total": a.get("total", 0.0) + b.get("total", 0.0)}


class ChangesItsArgument(Center):
    def merge_states(self, a, b):
        a["n"], a["total"] = a.get("n", 0) + b.get("n", 0), a.get("total", 0.0) + b.get("total", 0.0)
        return a


class Forgets(Center):
    def merge_states(self, a, b):
        return {"n": a.get("n", 0) + b.get("n", 0), "total": a.get("total", 0.0)}


class ClaimsExact(Center):
    def merge_exactness(self):
        return "exact"


class LosesAKey(Center):
    def partial_fit(self, X):
        super().partial_fit(X)
        self.metadata["batches"] = self.metadata.get("batches", 0) + 1


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (ChangesItsArgument, "changed the state of part 0"),
        (Forgets, r"against partial_fit: state\['total'\]"),
        (ClaimsExact, "bit for bit"),
        (LosesAKey, r"keys \[\] that were not expected, and \['batches'\] missing"),
    ],
)
def test_the_merge_check_catches_a_wrong_merge(cls, message):
    data = np.random.default_rng(0).normal(size=(20, 3))  # sums that round differently by order
    check_merge_matches_partial_fit(LayerCase(Center, (data,)))
    with pytest.raises(AssertionError, match=message):
        check_merge_matches_partial_fit(LayerCase(cls, (data,)))
