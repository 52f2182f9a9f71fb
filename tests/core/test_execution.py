"""Running graphs: sub-graphs, training targets, fit order, memory, mutation, errors."""

import gc
import weakref

import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.errors import LayerError, NotFittedError
from megatron.layers import Lambda, StatefulLayer
from megatron.nodes import Input


class MeanTarget(StatefulLayer):
    """Predicts the mean training target: features, then one target."""

    def n_targets(self, n_inputs):
        return 1

    def fit(self, X, y):
        self.metadata["mean"] = float(np.mean(y))

    def transform(self, X):
        return np.full(len(X), self.metadata["mean"])


class Center(StatefulLayer):
    fits = 0

    def fit(self, X):
        type(self).fits += 1
        self.metadata["mean"] = X.mean(axis=0)

    def transform(self, X):
        return X - self.metadata["mean"]


def test_target_only_input_is_not_required_by_transform():
    x, y = Input("x", (2,)), Input("y")
    pred = MeanTarget()([x, y], "pred")
    pipeline = megatron.Pipeline([x, y], pred, name="supervised")
    pipeline.fit({"x": np.zeros((4, 2)), "y": np.array([1.0, 2.0, 3.0, 4.0])})
    out = pipeline.transform({"x": np.zeros((3, 2))})  # no 'y'
    np.testing.assert_array_equal(out["pred"], [2.5, 2.5, 2.5])


def test_fit_uses_fully_fitted_upstream_outputs():
    x = Input("x")
    first = Center()(x)
    scaled = Lambda(lambda v: v * 10)(first)
    second = Center()(scaled, "out")
    pipeline = megatron.Pipeline(x, second, name="chain")
    data = {"x": np.array([1.0, 2.0, 6.0])}
    pipeline.fit(data)
    # the downstream mean is of already-centred values, hence zero
    assert pipeline.layers[-1].metadata["mean"] == pytest.approx(0.0)
    np.testing.assert_allclose(pipeline.transform(data)["out"], [-20.0, -10.0, 30.0])


def test_fit_computes_only_what_fitting_needs():
    seen = []

    class Recording(Center):
        def transform(self, X):
            seen.append("center")
            return super().transform(X)

    x = Input("x")
    c = Recording()(x, "c")
    after = Lambda(lambda v: seen.append("after") or v)(c, "after")
    pipeline = megatron.Pipeline(x, after, name="p")
    pipeline.fit({"x": np.ones(3)})
    assert seen == []  # nothing from the last stateful layer on runs during fit
    pipeline.transform({"x": np.ones(3)})
    assert seen == ["center", "after"]


def test_shared_stateful_layer_fits_once_on_all_its_calls():
    a, b = Input("a"), Input("b")
    center = Center()
    ca, cb = center(a, "ca"), center(b, "cb")
    pipeline = megatron.Pipeline([a, b], [ca, cb], name="shared")
    Center.fits = 0
    pipeline.fit({"a": np.array([0.0, 2.0]), "b": np.array([4.0, 6.0])})
    assert Center.fits == 1
    assert center.metadata["mean"] == pytest.approx(3.0)


def test_transform_before_fit_names_the_layer_and_node():
    x = Input("x")
    pipeline = megatron.Pipeline(x, Center()(x, "centred"), name="p")
    with pytest.raises(
        NotFittedError, match=r"layer 'center(_\d+)?' \(Center\) at node 'centred' is not fitted"
    ):
        pipeline.transform({"x": np.ones(2)})


def test_layer_exception_names_node_layer_and_shapes_and_chains_the_cause():
    def broken(v):
        raise ZeroDivisionError("boom")

    x = Input("x", (3,))
    pipeline = megatron.Pipeline(x, Lambda(broken)(x, "bad"), name="p")
    with pytest.raises(LayerError) as caught:
        pipeline.transform({"x": np.zeros((5, 3))})
    message = str(caught.value)
    assert "at node 'bad'" in message and "Lambda" in message
    assert "(5, 3)" in message and "ZeroDivisionError: boom" in message
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


def test_caller_arrays_are_never_mutated():
    x = Input("x", (2,))
    c = Center()(x, "c")
    pipeline = megatron.Pipeline(x, c, name="p")
    data = np.arange(6.0).reshape(3, 2)
    data.setflags(write=False)  # any in-place write would raise
    pipeline.fit({"x": data})
    pipeline.transform({"x": data})
    np.testing.assert_array_equal(data, np.arange(6.0).reshape(3, 2))


def test_intermediates_are_freed_after_their_last_use():
    refs = {}

    def produce(v):
        out = v + 1.0
        refs["first"] = weakref.ref(out)
        return out

    def check_freed(v):
        gc.collect()
        refs["alive_at_third"] = refs["first"]() is not None
        return v * 2

    x = Input("x")
    first = Lambda(produce)(x)
    second = Lambda(lambda v: v + 0.0)(first)
    third = Lambda(check_freed)(second, "out")
    megatron.Pipeline(x, third, name="p").transform({"x": np.zeros(1000)})
    assert refs["alive_at_third"] is False


def test_evaluate_runs_only_the_metric_subgraph_and_finds_unlisted_metrics():
    ran = []
    x, y = Input("x"), Input("y")
    pred = Lambda(lambda v: (v > 0).astype(int))(x, "pred")
    other = Lambda(lambda v: ran.append("other") or v)(x, "other")
    megatron.metrics.Accuracy()([y, pred], "acc")
    pipeline = megatron.Pipeline([x, y], [pred, other], name="p")
    result = pipeline.evaluate({"x": np.array([1.0, -1.0, 2.0, -3.0]), "y": np.array([1, 0, 0, 0])})
    assert result == {"acc": 0.75}
    assert ran == []


def test_fingerprint_follows_refits_and_replaced_hyperparameters():
    x = Input("x")
    scale = layers.ScalarMultiply(2.0)
    centred = Center()(scale(x), "centred")
    pipeline = megatron.Pipeline(x, centred, name="fingerprint")
    pipeline.fit({"x": np.arange(4.0)})
    first = pipeline.fingerprint
    assert pipeline.fingerprint == first  # unchanged state, same fingerprint
    scale.factor = 3.0
    second = pipeline.fingerprint
    assert second != first
    pipeline.fit({"x": np.arange(4.0)})
    assert pipeline.fingerprint not in (first, second)
