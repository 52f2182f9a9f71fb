"""Saving pipelines as data and loading them back, safely."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.errors import PersistenceError
from megatron.nodes import Input
from megatron.persistence import archive as archive_module
from megatron.testing.layers import Rename, named_pipeline

from .layers.test_conformance import ALL_CASES


class Whiten(megatron.layers.StatefulLayer):
    def fit(self, X):
        self.metadata["mean"] = X.mean(axis=0)
        self.metadata["std"] = X.std(axis=0)

    def transform(self, X):
        return (X - self.metadata["mean"]) / self.metadata["std"]


def dot_product(X, Y):
    return (X * Y).sum(axis=1)


def mean_dot(X, Y):
    return float(dot_product(X, Y).mean())


def functions_of(layer):
    return {getattr(v, "__qualname__", ""): v for v in layer.get_config().values() if callable(v)}


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_every_built_in_layer_round_trips_with_identical_outputs(case, tmp_path):
    pipeline, layer = named_pipeline(case)
    data = case.feed(case.inputs)
    if layer.stateful:
        pipeline.fit(data)
    path = pipeline.save(tmp_path)
    loaded = megatron.load_pipeline(path, custom_objects={**functions_of(layer), "Rename": Rename})
    before, after = pipeline.transform(data), loaded.transform(data)
    assert list(before) == list(after)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    np.testing.assert_array_equal(after.index, before.index)
    assert loaded.fingerprint == pipeline.fingerprint  # the same fit: cached rows stay valid


def seed_pipeline():
    X, Y = Input("X", (3,)), Input("Y", (3,))
    white = Whiten()(X, "white")
    dot = layers.Lambda(dot_product)([white, Y], "dot_product_result")
    megatron.metrics.Metric(mean_dot)([white, Y], "mean_dot")
    return megatron.Pipeline([X, Y], [white, dot], name="seed", version="0.1")


def test_seed_custom_layers_round_trip_through_custom_objects(tmp_path):
    pipeline = seed_pipeline()
    data = {"X": np.random.default_rng(0).normal(size=(20, 3)), "Y": np.ones((20, 3))}
    pipeline.fit(data)
    path = pipeline.save(tmp_path / "pipelines")  # created when missing
    assert path == tmp_path / "pipelines" / "seed-0.1.megatron"
    custom = {"Whiten": Whiten, "dot_product": dot_product, "mean_dot": mean_dot}
    loaded = megatron.load_pipeline(path, custom_objects=custom)
    np.testing.assert_array_equal(
        loaded.transform(data)["dot_product_result"], pipeline.transform(data)["dot_product_result"]
    )
    assert loaded.evaluate(data) == pipeline.evaluate(data)
    with pytest.raises(PersistenceError, match=r"needs the layer class 'Whiten'.*custom_objects=\{'Whiten'"):
        megatron.load_pipeline(path)
    with pytest.raises(PersistenceError, match=r"needs the function 'dot_product'"):
        megatron.load_pipeline(path, custom_objects={"Whiten": Whiten, "mean_dot": mean_dot})


def test_audit_lists_what_a_file_needs_without_loading_it(tmp_path):
    pipeline = seed_pipeline()
    pipeline.fit({"X": np.ones((4, 3)) + np.arange(4)[:, None], "Y": np.ones((4, 3))})
    lines = megatron.audit(pipeline.save(tmp_path))
    assert any("layer class" in line and "Whiten (from custom_objects)" in line for line in lines)
    assert "layer Lambda (registered by megatron-core)" in lines
    assert any(line.startswith("function") and "dot_product" in line for line in lines)


def rewrite(path, change):
    """Rewrite a saved file's members through ``change(members) -> members``."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members = change(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


class Payload:
    """Unpickling this creates a marker file: what a hostile pickle would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def saved(tmp_path):
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="victim")
    pipeline.fit({"x": np.arange(8.0).reshape(4, 2)})
    return pipeline.save(tmp_path)


def test_a_pickle_payload_in_the_archive_is_refused_and_never_runs(tmp_path):
    path = saved(tmp_path)
    marker = tmp_path / "pwned"
    hostile = np.empty(1, dtype=object)
    hostile[0] = Payload(str(marker))

    def poison(members):
        description = json.loads(members["pipeline.json"])
        array_name = description["layers"][0]["state"]["metadata"]["__dict__"][0][1]["__array__"]
        buffer = io.BytesIO()
        np.save(buffer, hostile, allow_pickle=True)
        members[array_name] = buffer.getvalue()
        members["extra.pkl"] = pickle.dumps(Payload(str(marker)))
        return members

    rewrite(path, poison)
    with pytest.raises(PersistenceError, match="is not a plain array and is refused"):
        megatron.load_pipeline(path)
    assert not marker.exists()


def test_a_class_outside_the_registry_is_refused(tmp_path):
    path = saved(tmp_path)

    def rename(members):
        description = json.loads(members["pipeline.json"])
        description["layers"][0]["class"] = "os.system"
        members["pipeline.json"] = json.dumps(description).encode()
        return members

    rewrite(path, rename)
    with pytest.raises(
        PersistenceError, match="names the layer 'os.system', which no installed plugin registers"
    ):
        megatron.load_pipeline(path)


def test_truncated_or_corrupted_files_get_a_clear_error(tmp_path):
    path = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PersistenceError, match=r"victim.megatron' is not a readable megatron pipeline file"):
        megatron.load_pipeline(path)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(PersistenceError, match="truncated or corrupted"):
        megatron.load_pipeline(path)


def test_format_versions(tmp_path, monkeypatch):
    path = saved(tmp_path)

    def newer(members):
        description = json.loads(members["pipeline.json"])
        description["format"] = 99
        members["pipeline.json"] = json.dumps(description).encode()
        return members

    monkeypatch.setattr(archive_module, "FORMAT", 2)  # this reader now reads format 2: format 1 is older
    assert megatron.load_pipeline(path).transform({"x": np.ones((1, 2))})["w"].shape == (1, 2)
    rewrite(path, newer)
    with pytest.raises(PersistenceError, match="file format 99, newer than this megatron reads"):
        megatron.load_pipeline(path)


def test_loading_reattaches_storage(tmp_path):
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(2)(x, "y"), name="stored", version=1)
    path = pipeline.save(tmp_path)
    loaded = megatron.load_pipeline(path, storage="memory://")
    loaded.transform({"x": np.ones((3, 2))})
    assert loaded.storage.read(rows=["0"])[0].shape == (1, 2)


class Holder(megatron.layers.StatelessLayer):
    def __init__(self, thing):
        self.thing = thing

    def transform(self, X):
        return X


def test_unsaveable_hyperparameters_are_named(tmp_path):
    x = Input("x")
    layer = Holder(object())  # not data
    pipeline = megatron.Pipeline(x, layer(x, "y"), name="bad")
    with pytest.raises(PersistenceError, match=r"hyperparameters of layer 'holder(_\d+)?' \(Holder\)"):
        pipeline.save(tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written
