"""Loading puts a layer's learned state in through its ``set_state`` (the one door), and the
state tokens come out as the file's rules say: the derived token and the recorded one after
loading, a new token (and no recorded one) once a state is installed or merged."""

from typing import ClassVar

import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.layers import StatefulLayer
from megatron.nodes import Input
from megatron.pipeline import Pipeline

X = np.random.default_rng(4).normal(size=(12, 2))


class Tracked(StatefulLayer):
    """Sums its inputs, and keeps a cache built from its state outside ``metadata``."""

    installed: ClassVar[list[dict]] = []

    def partial_fit(self, X):
        self.metadata["total"] = self.metadata.get("total", 0.0) + X.sum(axis=0)
        self.__dict__["_cache"] = self.metadata["total"] * 2

    def set_state(self, state):
        Tracked.installed.append(dict(state))
        super().set_state(state)
        self.__dict__["_cache"] = self.metadata["total"] * 2

    def transform(self, X):
        return X + self.__dict__["_cache"]


def saved(tmp_path, layer):
    x = Input("x", (2,))
    pipeline = Pipeline(x, layer(x, "out"), name="door")
    pipeline.fit({"x": X})
    return pipeline, pipeline.save(tmp_path)


def test_loading_installs_the_files_state_through_set_state(tmp_path):
    Tracked.installed.clear()
    pipeline, path = saved(tmp_path, Tracked())
    assert not Tracked.installed  # saving gives the layer its token without installing anything
    loaded = megatron.load_pipeline(path, custom_objects={"Tracked": Tracked})
    (state,) = Tracked.installed
    np.testing.assert_array_equal(state["total"], X.sum(axis=0))
    np.testing.assert_array_equal(loaded.transform({"x": X})["out"], pipeline.transform({"x": X})["out"])
    assert loaded.fingerprint == pipeline.fingerprint


def test_a_loaded_layer_keeps_the_file_tokens_until_a_state_is_installed(tmp_path):
    pipeline, path = saved(tmp_path, layers.Whiten())
    layer = pipeline.layers[0]
    loaded_layer = megatron.load_pipeline(path).layers[0]
    assert loaded_layer.state_token == layer.state_token
    assert loaded_layer.recorded_token is not None and loaded_layer.recorded_token == layer.recorded_token
    loaded_layer.set_state(loaded_layer.get_state())
    assert loaded_layer.state_token != layer.state_token and loaded_layer.recorded_token is None


def test_restore_with_the_layers_own_state_changes_only_the_tokens():
    layer = layers.CountVectorize()
    layer.partial_fit(np.array(["a b", "b"]))
    counter = layer.__dict__["_counter"]
    layer.restore(layer.metadata, True, state_token="t", recorded_token="r")
    assert layer.__dict__["_counter"] is counter and layer.state_token == "t" and layer.recorded_token == "r"


@pytest.mark.parametrize("fitted", [True, False])
def test_restore_sets_fitted_as_the_file_says(fitted):
    layer = layers.Whiten()
    layer.restore({"n": np.asarray(1), "mean": np.zeros(2), "m2": np.zeros(2), "scale": np.ones(2)}, fitted)
    assert layer.fitted is fitted and layer.recorded_token is None
