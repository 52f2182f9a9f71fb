"""Parameters over a whole graph: Pipeline.get_params, set_params and clone.

Property budget: 25 derandomized mistyped names (well under 1 s).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import ConfigError
from megatron.nodes import Input


class Estimator:
    """A stand-in for a scikit-learn estimator: parameters by get_params and set_params."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def get_params(self, deep=True):
        return {"alpha": self.alpha}

    def set_params(self, **params):
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def fit(self, X):
        return self


class Wrapper(layers.StatelessLayer):
    def __init__(self, estimator):
        self.estimator = estimator

    def transform(self, X):
        return X * self.estimator.alpha


def build():
    x, label = Input("x", (2,)), Input("label")
    scaled = layers.MinMaxScale()(x, "scaled")
    wrapped = Wrapper(Estimator())(scaled, "wrapped")
    codes = layers.OneHotLabels()(label, "codes")
    megatron.metrics.Accuracy()([codes, codes], "acc")
    return megatron.Pipeline([x, label], [wrapped, codes], name="params", version=2)


DATA = {"x": np.array([[0.0, 1.0], [2.0, 5.0], [4.0, 3.0]]), "label": np.array(["a", "b", "a"])}


def test_get_params_by_layer_name_and_nested_estimator_parameters():
    pipeline = build()
    params = pipeline.get_params()
    assert params["min_max_scale__feature_range"] == (0.0, 1.0)
    assert params["one_hot_labels__labels"] is None
    assert isinstance(params["wrapper__estimator"], Estimator)
    assert params["wrapper__estimator__alpha"] == 1.0  # scikit-learn's nesting of meta-estimators
    assert "wrapper__estimator__alpha" not in pipeline.get_params(deep=False)


def test_set_params_changes_the_fingerprint_and_keeps_what_was_learned():
    pipeline = build().fit(DATA)
    scaler = pipeline.layers[0]
    before, token = pipeline.fingerprint, scaler.state_token
    assert (
        pipeline.set_params(min_max_scale__feature_range=[-1, 1], wrapper__estimator__alpha=3.0) is pipeline
    )
    assert scaler.feature_range == (-1, 1)  # as MinMaxScale's __init__ keeps it
    assert pipeline.get_params()["wrapper__estimator__alpha"] == 3.0
    assert pipeline.fingerprint != before  # stored outputs are not served
    assert scaler.fitted and scaler.state_token == token  # as assigning the attribute does
    out = pipeline.transform(DATA)["wrapped"]
    assert out.min() == -3.0 and out.max() == 3.0


def test_set_params_refuses_an_unknown_name_with_a_suggestion():
    with pytest.raises(ConfigError, match="Did you mean 'min_max_scale__feature_range'"):
        build().set_params(min_max_scale__feature_rnge=(0, 2))


def test_set_params_checks_values_with_the_layers_init_and_changes_nothing_on_refusal():
    pipeline = build()
    with pytest.raises(ConfigError, match="min_max_scale.*low < high"):
        pipeline.set_params(one_hot_labels__strict=True, min_max_scale__feature_range=(1, 0))
    assert pipeline.get_params()["one_hot_labels__strict"] is False


def test_new_labels_are_learned_at_the_next_fit():
    """Labels given as a hyperparameter are the layer's state: a new list is seen when refitted
    (before, a fit kept the labels given to __init__)."""
    pipeline = build()
    pipeline.set_params(one_hot_labels__labels=["a", "b"]).fit(DATA)
    pipeline.set_params(one_hot_labels__labels=["a", "b", "c"]).fit(DATA)
    assert pipeline.transform(DATA)["codes"].shape == (3, 3)


def test_constant_fill_is_taken_again_at_the_next_fit():
    x = Input("x", (2,))
    impute = layers.SimpleImpute("constant", fill_value=0.0)
    pipeline = megatron.Pipeline(x, impute(x, "filled"), name="fill")
    pipeline.set_params(simple_impute__fill_value=7.0).fit({"x": np.array([[np.nan, 1.0]])})
    assert pipeline.transform({"x": np.array([[np.nan, 1.0]])})["filled"].tolist() == [[7.0, 1.0]]


def test_clone_is_the_same_graph_unfitted_and_independent():
    pipeline = build().fit(DATA)
    copy = pipeline.clone()
    assert (copy.name, copy.version) == (pipeline.name, pipeline.version)
    assert [n.name for n in copy.nodes] == [n.name for n in pipeline.nodes]
    assert [layer.name for layer in copy.layers] == [layer.name for layer in pipeline.layers]
    assert [m.name for m in copy.metrics] == ["acc"]
    assert not any(layer.fitted for layer in copy.graph.stateful_layers if layer.name != "one_hot_labels")
    assert all(a is not b for a, b in zip(copy.layers, pipeline.layers))
    assert copy.get_params()["wrapper__estimator"] is not pipeline.get_params()["wrapper__estimator"]
    copy.set_params(wrapper__estimator__alpha=5.0)
    assert pipeline.get_params()["wrapper__estimator__alpha"] == 1.0
    copy.fit(DATA)
    np.testing.assert_array_equal(copy.transform(DATA)["codes"], pipeline.transform(DATA)["codes"])
    assert copy.evaluate(DATA) == pipeline.evaluate(DATA)


def test_clone_keeps_a_shared_layer_shared_and_automatic_names_automatic():
    a, b = Input("a", (2,)), Input("b", (2,))
    scaler = layers.Whiten()
    clipped = layers.Clip(0, 1)(scaler(a), "clipped")  # scaler(a) is node 'whiten/0', unnamed
    pipeline = megatron.Pipeline([a, b], [clipped, scaler(b, "sb")], name="shared")
    copy = pipeline.clone()
    assert len(copy.layers) == 2 and copy.layers[0].auto_named
    assert [(n.name, n.named) for n in copy.nodes] == [(n.name, n.named) for n in pipeline.nodes]
    copy.fit({"a": np.eye(2), "b": 2 * np.eye(2)})
    assert copy.layers[0].fitted and not scaler.fitted


def test_clone_takes_its_own_storage():
    pipeline = build()
    pipeline_with_storage = megatron.Pipeline(
        pipeline.inputs, pipeline.outputs, name="s", storage="memory://"
    )
    assert pipeline_with_storage.clone().storage is None
    assert pipeline_with_storage.clone(storage="memory://").storage is not pipeline_with_storage.storage


@settings(max_examples=25, deadline=None, derandomize=True)
@given(name=st.text(st.characters(codec="ascii", categories=["Ll", "Pc"]), min_size=1, max_size=30))
def test_any_name_not_among_get_params_is_refused(name):
    pipeline = build()
    if name in pipeline.get_params():
        return
    with pytest.raises(ConfigError, match="unknown parameter"):
        pipeline.set_params(**{name: 1})
