"""Keras models as layers: the seed tutorial, multi-input/output models, streaming, real data."""

import sqlite3
from pathlib import Path

import keras
import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.nodes import Input

ROOT = Path(__file__).resolve().parents[2]


def load_example():
    import megatron_keras.demo

    return megatron_keras.demo


def test_seed_tutorial_end_to_end(tmp_path, monkeypatch):
    # the tutorial stores its outputs in SQLite
    pytest.importorskip("megatron_sql", reason="needs megatron_sql: pip install -e packages/megatron-sql")
    monkeypatch.chdir(tmp_path)
    example = load_example()
    result = example.main()
    pipeline = result["pipeline"]
    assert result["outputs"][0].shape == (1000, 2)
    assert result["one_output"][0].shape == (1, 2)
    assert set(result["metrics"]) == {"model_acc"}
    assert result["metrics"]["model_acc"] > 0.9  # brighter images are label 1: learnable
    assert (tmp_path / "megatron.db").exists()  # the embedded SQLite default
    assert result["path"].resolve() == tmp_path / "pipelines" / "getting_started-0.1.megatron"
    assert result["same"]  # the reloaded pipeline predicts the same
    assert result["reloaded"].storage.read(rows=["0"])[0].shape == (1, 2)  # storage reattached
    # the labels only feed training: transform needs the images alone
    only_images = pipeline.transform({"image": example.make_data(5, seed=1)["image"]})
    assert only_images["preds"].shape == (5, 2)
    # the seed's own storage: a sqlite3 connection
    seeded = example.build_pipeline(storage=sqlite3.connect(tmp_path / "seed.db"))
    seeded.fit(example.make_data(100))
    seeded.transform(example.make_data(100))
    assert seeded.storage.read(rows=["0"])[0].shape == (1, 2)


def two_in_two_out():
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    hidden = keras.layers.Dense(4, activation="relu")(keras.layers.Concatenate()([a, b]))
    first = keras.layers.Dense(1, name="first")(hidden)
    second = keras.layers.Dense(2, activation="softmax", name="second")(hidden)
    model = keras.Model([a, b], [first, second])
    model.compile(optimizer="adam", loss=["mse", "categorical_crossentropy"])
    return model


class CountingBatches:
    def __init__(self, n_batches, size=16):
        self.n_batches, self.size, self.drawn = n_batches, size, 0
        self.rng = np.random.default_rng(0)

    def __iter__(self):
        for _ in range(self.n_batches):
            self.drawn += 1
            labels = self.rng.integers(0, 2, self.size)
            yield {
                "a": self.rng.normal(size=(self.size, 3)),
                "b": self.rng.normal(size=(self.size, 2)),
                "y": self.rng.normal(size=(self.size, 1)),
                "label": labels,
            }


def test_two_inputs_two_outputs_and_fit_generator_draws_exactly_the_batches_it_should():
    keras.utils.set_random_seed(1)
    a, b, y, label = Input("a", (3,)), Input("b", (2,)), Input("y", (1,)), Input("label")
    scaled = layers.Whiten()(a)
    ohe = layers.OneHotRange(0, 1)(label)
    first, second = layers.Keras(two_in_two_out())([scaled, b, y, ohe], ["regression", "classes"])
    assert first.shape == (1,) and second.shape == (2,)
    pipeline = megatron.Pipeline([a, b, y, label], [first, second], name="two_by_two")
    source = CountingBatches(n_batches=8)
    pipeline.fit_generator(source, steps_per_epoch=5, epochs=2)
    # stage 1 (Whiten, a one-pass statistic): 1 pass of 5 steps; stage 2 (the model, iterative):
    # 2 epochs x 5 steps, each batch computed once
    assert source.drawn == 5 + 10
    out = pipeline.transform({"a": np.zeros((4, 3)), "b": np.zeros((4, 2))})
    assert out["regression"].shape == (4, 1) and out["classes"].shape == (4, 2)
    np.testing.assert_allclose(out["classes"].sum(axis=1), 1, rtol=1e-5)


def test_an_encoder_feeding_a_second_model_fits_in_order():
    keras.utils.set_random_seed(2)
    encoder_in = keras.Input((4,))
    encoder = keras.Model(encoder_in, keras.layers.Dense(2)(encoder_in))
    encoder.compile(optimizer="adam", loss="mse")
    head_in = keras.Input((2,))
    head = keras.Model(head_in, keras.layers.Dense(1)(head_in))
    head.compile(optimizer="adam", loss="mse")
    x, y, code_target = Input("x", (4,)), Input("y", (1,)), Input("code", (2,))
    code = layers.Keras(encoder, fit_kwargs={"epochs": 2})([x, code_target], "code_out")
    pred = layers.Keras(head, fit_kwargs={"epochs": 2})([code, y], "pred")
    pipeline = megatron.Pipeline([x, y, code_target], [code, pred], name="stacked")
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(64, 4)), "y": rng.normal(size=(64, 1)), "code": rng.normal(size=(64, 2))}
    pipeline.fit(data)
    pipeline.fit_generator([data, data], epochs=1)
    assert pipeline.transform({"x": data["x"]})["pred"].shape == (64, 1)


def test_eager_mode_and_progress_switch(capsys):
    keras.utils.set_random_seed(3)
    inp = keras.Input((2,))
    model = keras.Model(inp, keras.layers.Dense(1)(inp))
    model.compile(optimizer="sgd", loss="mse")
    x = Input("x", (2,))(np.ones((8, 2)))
    y = Input("y", (1,))(np.ones((8, 1)))
    pred = layers.as_layer(model)([x, y])  # a Keras model where a layer is expected
    assert isinstance(pred.layer, layers.Keras)
    assert pred.output.shape == (8, 1)
    capsys.readouterr()
    pipeline = megatron.Pipeline([x, y], layers.Lambda(lambda v: v)(pred, "p"), name="eager_keras")
    pipeline.fit({"x": np.ones((8, 2)), "y": np.ones((8, 1))}, progress=False)
    assert "Epoch" not in capsys.readouterr().out + capsys.readouterr().err
    pipeline.fit({"x": np.ones((8, 2)), "y": np.ones((8, 1))}, progress=True)
    captured = capsys.readouterr()
    assert "1/1" in captured.out + captured.err


def test_digits_images_through_image_layers_and_a_cnn_reach_90_percent():
    datasets = pytest.importorskip(
        "sklearn.datasets", reason="needs sklearn: pip install -e packages/megatron-sklearn"
    )
    load_digits = datasets.load_digits

    keras.utils.set_random_seed(4)
    digits = load_digits()
    images, labels = digits.images.astype(np.uint8), digits.target
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    train, test = order[:1400], order[1400:]

    inp = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(16, 3, activation="relu")(inp)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(10, activation="softmax")(h)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")

    image, label = Input("image", (8, 8)), Input("label")
    pixels = layers.ScalePixels(max_value=16)(image)
    big = layers.AddDim()(layers.Upsample((16, 16))(pixels))
    ohe = layers.OneHotRange(0, 9)(label)
    pred = layers.Keras(model, fit_kwargs={"epochs": 8, "batch_size": 32})([big, ohe], "digit")
    megatron.metrics.Accuracy()([ohe, pred], "accuracy")
    pipeline = megatron.Pipeline([image, label], pred, name="digits")
    pipeline.fit({"image": images[train], "label": labels[train]})
    held_out = pipeline.evaluate({"image": images[test], "label": labels[test]})["accuracy"]
    assert held_out >= 0.9, held_out


def write_marker(t):
    """Python code inside a Keras model: loading must never run it."""
    import os

    open(os.environ["MEGATRON_TEST_MARKER"], "w").close()
    return t


def test_keras_model_round_trips_and_code_in_a_model_is_refused(tmp_path, monkeypatch):
    from megatron.errors import PersistenceError

    keras.utils.set_random_seed(5)
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(4)(inp)))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, label = Input("x", (3,)), Input("label")
    pred = layers.Keras(model, fit_kwargs={"epochs": 2})([x, layers.OneHotRange(0, 1)(label)], "pred")
    pipeline = megatron.Pipeline([x, label], pred, name="keras_saved")
    data = {"x": np.random.default_rng(0).normal(size=(32, 3)), "label": np.arange(32) % 2}
    pipeline.fit(data)
    path = pipeline.save(tmp_path)
    assert any("Keras model" in line for line in megatron.audit(path))
    loaded = megatron.load_pipeline(path)
    np.testing.assert_allclose(loaded.transform(data)["pred"], pipeline.transform(data)["pred"], rtol=1e-6)

    marker = tmp_path / "pwned"
    monkeypatch.setenv("MEGATRON_TEST_MARKER", str(marker))
    inp = keras.Input((3,))
    hostile = keras.Model(inp, keras.layers.Lambda(write_marker)(inp))
    x = Input("x", (3,))
    hostile_pipeline = megatron.Pipeline(x, layers.Keras(hostile)(x, "out"), name="hostile")
    hostile_path = hostile_pipeline.save(tmp_path)
    marker.unlink(missing_ok=True)  # tracing the model while saving may have called the function
    with pytest.raises(PersistenceError, match="refused or could not be loaded"):
        megatron.load_pipeline(hostile_path)
    assert not marker.exists()


def test_an_empty_batch_through_a_model_with_an_axis_of_any_length():
    # a sequence model's output has an axis of unknown length: no rows of it have none either
    sequence = keras.Input((None, 3))
    model = keras.Model(sequence, keras.layers.Dense(2)(sequence))
    model.compile(loss="mse")
    x = Input("x", (None, 3))
    pipeline = megatron.Pipeline(x, layers.Keras(model)(x, "out"), name="sequences")
    layer = pipeline.layers[0]
    layer.restore({}, fitted=True)  # the compiled model as it is: nothing to learn for this check
    out = pipeline.transform({"x": np.zeros((0, 4, 3), dtype="float32")})["out"]
    assert out.shape == (0, 0, 2) and out.dtype == np.float32
