"""Damaged or hostile Keras artifacts in pipeline files: a PersistenceError naming the member."""

import io
import zipfile

import keras
import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.errors import PersistenceError
from megatron.nodes import Input
from megatron.persistence import audit_report


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
