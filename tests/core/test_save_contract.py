"""Saving never loses a hyperparameter or a piece of state: every ``__init__`` argument is
captured, or the save is refused naming the layer and the argument."""

import numpy as np
import pytest

import megatron
from megatron import metrics
from megatron.errors import PersistenceError
from megatron.layers import StatefulLayer, StatelessLayer
from megatron.metrics import Metric
from megatron.nodes import Input


class Scale(StatelessLayer):
    """Keeps its hyperparameter under another attribute name."""

    def __init__(self, factor: float = 1.0) -> None:
        self._f = factor

    def transform(self, X):
        return X * self._f


class Weights(StatelessLayer):
    """Takes its weights as *args: they cannot be given back by name."""

    def __init__(self, *weights: float) -> None:
        self._w = np.array(weights)

    def transform(self, X):
        return X * self._w


class Options(StatelessLayer):
    """Takes its options as **kwargs."""

    def __init__(self, **options: float) -> None:
        self._shift = options.get("shift", 0.0)

    def transform(self, X):
        return X + self._shift


class Forgetful(StatelessLayer):
    """Its own get_config() leaves out an argument."""

    def __init__(self, factor: float, offset: float = 0.0) -> None:
        self.factor, self.offset = factor, offset

    def get_config(self):
        return {"factor": self.factor}

    def transform(self, X):
        return X * self.factor + self.offset


class SetState(StatefulLayer):
    def fit(self, X):
        self.metadata["seen"] = set(X.tolist())

    def transform(self, X):
        return X


class AboveLevel(Metric):
    """Keeps its parameter under another name."""

    def __init__(self, level: float = 0.0) -> None:
        self._level = level

    def initial_state(self):
        return (0, 0)

    def update(self, state, y, p):
        return state[0] + int((p > self._level).sum()), state[1] + len(p)

    def result(self, state):
        return state[0] / state[1]


CUSTOM = {c.__name__: c for c in (Scale, Weights, Options, Forgetful, SetState, AboveLevel)}


def saved(layer, tmp_path, fit=False):
    x = Input("x")
    pipeline = megatron.Pipeline(x, layer(x, "out"), name="saved")
    if fit:
        pipeline.fit({"x": np.arange(3.0)})
    return pipeline, pipeline.save(tmp_path)


def test_a_hyperparameter_kept_under_another_name_is_saved_and_reloaded(tmp_path):
    layer = Scale(3.0)
    assert layer.get_config() == {"factor": 3.0} and layer.factor == 3.0
    pipeline, path = saved(layer, tmp_path)
    loaded = megatron.load_pipeline(path, custom_objects=CUSTOM)
    data = {"x": np.arange(3.0)}
    assert (
        loaded.transform(data)["out"].tolist() == [0.0, 3.0, 6.0] == pipeline.transform(data)["out"].tolist()
    )
    assert loaded.fingerprint == pipeline.fingerprint


def test_keyword_arguments_are_saved_and_positional_ones_refused_naming_layer_and_argument(tmp_path):
    _, path = saved(Options(shift=2.0), tmp_path)
    loaded = megatron.load_pipeline(path, custom_objects=CUSTOM)
    assert loaded.transform({"x": np.zeros(2)})["out"].tolist() == [2.0, 2.0]
    with pytest.raises(
        PersistenceError, match=r"layer 'weights' \(Weights\).*positional arguments \*weights"
    ):
        saved(Weights(1.0, 2.0), tmp_path / "w")


def test_a_get_config_that_leaves_out_an_argument_is_refused(tmp_path):
    with pytest.raises(
        PersistenceError,
        match=r"layer 'forgetful' \(Forgetful\).*lacks the __init__ argument\(s\) \['offset'\]",
    ):
        saved(Forgetful(2.0, offset=1.0), tmp_path)


def test_state_a_codec_cannot_write_is_refused_at_save(tmp_path):
    with pytest.raises(PersistenceError, match=r"fitted state of layer 'set_state'.*builtins.set"):
        saved(SetState(), tmp_path, fit=True)
    assert not list(tmp_path.glob("*.megatron"))


def test_a_metric_parameter_kept_under_another_name_is_saved(tmp_path):
    x, y = Input("x"), Input("y")
    out = megatron.layers.Lambda(np.negative)(x, "out")
    AboveLevel(-0.5)([y, out], "above")
    metrics.Accuracy()([y, out], "acc")
    pipeline = megatron.Pipeline([x, y], out, name="metric")
    loaded = megatron.load_pipeline(
        pipeline.save(tmp_path), custom_objects={**CUSTOM, "numpy:negative": np.negative}
    )
    data = {"x": np.array([0.0, 1.0, 2.0]), "y": np.array([0, 1, 0])}
    assert loaded.evaluate(data) == pipeline.evaluate(data)
    assert loaded.metrics[0].metric.get_config() == {"level": -0.5}


def test_arguments_are_kept_read_only_like_the_attributes():
    weights = np.array([1.0, 2.0])

    class Kept(StatelessLayer):
        def __init__(self, w):
            self._w = w

        def transform(self, X):
            return X

    layer = Kept(weights)
    weights[0] = 9.0  # the caller's array is the caller's
    assert layer.get_config()["w"].tolist() == [1.0, 2.0]
    assert not layer.w.flags.writeable
