"""A pipeline of the plugin's layers and metric saves and loads back without custom_objects,
and the file records that the plugin provided them."""

import json
import zipfile

import numpy as np

import megatron


def test_a_pipeline_of_the_plugin_saves_and_loads_back(tmp_path, megatron_plugins):
    x = megatron.nodes.Input("x", (2,))
    y = megatron.nodes.Input("y", (2,))
    scaled = megatron.layers.MaxAbsScale()(x, "scaled")
    blend = megatron.layers.WeightedSum((0.5, 2.0))([scaled, y], "blend")
    megatron.metrics.MaxError()([y, blend], "worst")
    pipeline = megatron.Pipeline([x, y], blend, name="template", version="1")
    data = {"x": np.array([[1.0, -4.0], [2.0, 2.0]]), "y": np.ones((2, 2))}
    pipeline.fit(data)

    path = pipeline.save(tmp_path)
    loaded = megatron.load_pipeline(path)  # every class is registered: no custom_objects

    np.testing.assert_array_equal(loaded.transform(data)["blend"], pipeline.transform(data)["blend"])
    assert loaded.evaluate(data) == pipeline.evaluate(data)
    assert loaded.fingerprint == pipeline.fingerprint  # the stored outputs stay valid
    with zipfile.ZipFile(path) as archive:
        description = json.loads(archive.read("pipeline.json"))
    plugins = {entry["class"]: entry["plugin"] for entry in description["layers"] + description["metrics"]}
    assert plugins["WeightedSum"]["distribution"] == "megatron-template"
    assert plugins["MaxError"]["name"] == "template"
    assert "layer WeightedSum (registered by megatron-template)" in megatron.audit(path)


def test_the_source_feeds_fit_generator(tmp_path, megatron_plugins):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(40, 2)))
    x = megatron.nodes.Input("x", (2,))
    pipeline = megatron.Pipeline(x, megatron.layers.MaxAbsScale()(x, "scaled"), name="streamed")
    pipeline.fit_generator(megatron.io.NpzSource(tmp_path / "train.npz", batch_size=16))
    whole = megatron.Pipeline(x, megatron.layers.MaxAbsScale()(x, "scaled"), name="whole")
    data = {"x": np.load(tmp_path / "train.npz")["x"]}
    whole.fit(data)
    np.testing.assert_array_equal(pipeline.transform(data)["scaled"], whole.transform(data)["scaled"])
