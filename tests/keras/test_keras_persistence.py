"""Damaged or hostile Keras artifacts in pipeline files: a PersistenceError naming the member."""

import io
import re
import zipfile

import keras
import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.errors import PersistenceError
from megatron.nodes import Input
from megatron.persistence import audit_report
from megatron.persistence.limits import size


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    x = Input("x", (3,))
    pipeline = megatron.Pipeline(x, layers.Keras(model)(x, "out"), name="keras_artifact")
    path = pipeline.save(tmp_path_factory.mktemp("keras"))
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def with_bomb(data):
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as model,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for name in model.namelist():
            out.writestr(name, model.read(name))
        out.writestr("padding.bin", bytes(80 << 20))  # 80 MiB that deflate to 80 KB
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda data: b"not a zip", r"model.keras is not a readable zip archive"),
        (with_bomb, r"model.keras: padding.bin inflates \d+ times"),
        (lambda data: data[: len(data) // 2], r"model.keras is not a readable zip archive"),
    ],
    ids=["not-a-zip", "bomb", "truncated"],
)
def test_a_damaged_keras_artifact_is_a_persistence_error_naming_it(saved_model, tmp_path, change, pattern):
    members = dict(saved_model)
    name = next(n for n in members if n.endswith(".keras"))
    members[name] = change(members[name])
    path = tmp_path / "damaged.megatron"
    write(path, members)
    with pytest.raises(PersistenceError, match=pattern):
        megatron.load_pipeline(path)
    refused = audit_report(path).refused
    assert refused and "model.keras" in refused[-1]


def test_the_undamaged_artifact_loads(saved_model, tmp_path):
    path = tmp_path / "intact.megatron"
    write(path, saved_model)
    loaded = megatron.load_pipeline(path)
    assert loaded.layers[0].model.predict(np.ones((2, 3)), verbose=0).shape == (2, 2)
    assert not audit_report(path).refused


def with_config(data, edit):
    """The ``.keras`` archive ``data`` with its config.json changed by ``edit(text) -> text``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as model, zipfile.ZipFile(buffer, "w") as out:
        for name in model.namelist():
            content = model.read(name)
            out.writestr(name, edit(content.decode()).encode() if name == "config.json" else content)
    return buffer.getvalue()


@pytest.mark.parametrize("units", [200_000, 2_000_000])
def test_a_config_declaring_more_weights_than_the_file_holds_is_refused_before_keras_builds_it(
    saved_model, tmp_path, units
):
    members = dict(saved_model)
    name = next(n for n in members if n.endswith(".keras"))
    members[name] = with_config(members[name], lambda text: text.replace('"units": 2', f'"units": {units}'))
    path = tmp_path / "units.megatron"
    write(path, members)
    assert path.stat().st_size < 20_000
    declared = (3 * units + units) * 4  # float32 kernel and bias
    with pytest.raises(
        PersistenceError,
        match=rf"model.keras: config.json declares weights of {re.escape(size(declared))}, but the model's "
        r"archive holds .* in all: refused before Keras builds the model",
    ):
        megatron.load_pipeline(path)


def test_a_config_keras_cannot_build_is_refused_naming_the_artifact(saved_model, tmp_path):
    members = dict(saved_model)
    name = next(n for n in members if n.endswith(".keras"))
    members[name] = with_config(members[name], lambda text: text.replace('"units": 2', '"units": -5'))
    path = tmp_path / "negative.megatron"
    write(path, members)
    with pytest.raises(PersistenceError, match=r"model.keras: .*Keras model"):
        megatron.load_pipeline(path)


def test_models_of_many_layer_kinds_pass_the_weight_check(tmp_path):
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(keras.layers.RandomFlip(seed=1)(inp))
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Reshape((6, 24))(x)
    x = keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True))(x)
    x = keras.layers.MultiHeadAttention(2, 4)(x, x)
    x = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x))
    model = keras.Model(inp, x)
    model.compile(optimizer="adam", loss="mse")
    images = Input("images", (8, 8, 3))
    pipeline = megatron.Pipeline(images, layers.Keras(model)(images, "out"), name="kinds")
    loaded = megatron.load_pipeline(pipeline.save(tmp_path)).layers[0].model
    assert [w.shape for w in loaded.get_weights()] == [w.shape for w in model.get_weights()]
    for after, before in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(after, before)


def test_keras_refuses_an_option_it_does_not_read_or_custom_objects_that_are_not_a_mapping(
    saved_model, tmp_path
):
    path = tmp_path / "model.megatron"
    write(path, saved_model)
    with pytest.raises(
        PersistenceError,
        match=r"option 'custom_object', which the 'keras' serializer .*Did you mean 'custom_objects'",
    ):
        megatron.load_pipeline(path, serializer_options={"keras": {"custom_object": {}}})
    with pytest.raises(PersistenceError, match=r"option 'custom_objects' takes a mapping.*got a list"):
        megatron.load_pipeline(path, serializer_options={"keras": {"custom_objects": [keras.layers.Dense]}})
    loaded = megatron.load_pipeline(
        path, serializer_options={"keras": {"custom_objects": {"Dense": keras.layers.Dense}}}
    )
    assert loaded.layers[0].model.count_params() == 8
