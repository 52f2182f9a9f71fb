"""Getting started: the tutorial pipeline, end to end (``megatron demo``).

RGB images are turned grey, labels one-hot encoded, and both fed to a small Keras CNN whose
accuracy is tracked by a metric. The data is synthetic: random images, those of label 1 a
little brighter. The pipeline is fitted on 800 of them, its predictions for all 1000 are stored
in the default storage (with megatron-sql, the embedded SQLite database ``megatron.db`` in the
working directory) by observation index and looked up, and it is evaluated on the 200 it was
not fitted on; then it is saved to ``pipelines/`` and reloaded, storage reattached.

    python examples/getting_started.py      # or: megatron demo

It needs this plugin and a plugin that provides the default storage: from a clone of the
repository, ``pip install -e packages/megatron-keras -e packages/megatron-sql``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

import megatron
from megatron.storage import default_url

N_TRAIN = 800


def _keras() -> Any:
    """Keras, imported without TensorFlow's start-up log lines."""
    from megatron_keras.quiet import import_keras

    return import_keras()


def make_model() -> Any:
    """A small CNN from (48, 48, 1) grey images to two class probabilities."""
    keras = _keras()
    image_input = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu")(image_input)
    x = keras.layers.MaxPooling2D(4)(x)
    x = keras.layers.Flatten()(x)
    two_class_output = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(image_input, two_class_output)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def make_data(n: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Random RGB images; label 1 images are a little brighter, so there is something to learn."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.random((n, 48, 48, 3)) * 0.8 + 0.2 * labels[:, None, None, None]
    return {"image": images.astype(np.float32), "label": labels}


def build_pipeline(storage: object = "default") -> megatron.Pipeline:
    images = megatron.nodes.Input("image", (48, 48, 3))
    labels = megatron.nodes.Input("label")

    grey_images = megatron.layers.RGBtoGrey(method="luminosity", keep_dim=True)(images)
    ohe_labels = megatron.layers.OneHotRange(max_val=1)(labels)
    preds = megatron.layers.Keras(make_model(), fit_kwargs={"epochs": 3})([grey_images, ohe_labels], "preds")
    megatron.metrics.Accuracy()([ohe_labels, preds], "model_acc")

    return megatron.Pipeline([images, labels], preds, name="getting_started", version=0.1, storage=storage)


def database_path() -> str:
    """Where ``storage='default'`` keeps outputs: the SQLite file's absolute path, or the URL."""
    url = default_url()
    return str(Path(url[len("sqlite:///") :]).resolve()) if url.startswith("sqlite:///") else url


def main() -> dict[str, object]:
    """Run the tutorial in the working directory, print what it did, and return its results."""
    where = database_path()  # first: says what to install when there is no default storage
    _keras().utils.set_random_seed(0)
    pipeline = build_pipeline()
    data = make_data()
    train = {name: array[:N_TRAIN] for name, array in data.items()}
    held_out = {name: array[N_TRAIN:] for name, array in data.items()}

    pipeline.fit(train)
    outputs = pipeline.transform(data)  # all 1000 rows, stored by observation index
    storage = pipeline.storage
    assert storage is not None  # storage='default'
    one_output = storage.read(rows=["0"])
    train_metrics = pipeline.evaluate(train)
    metrics = pipeline.evaluate(held_out)

    path = pipeline.save("pipelines/")  # pipelines/getting_started-0.1.megatron: data, not code
    reloaded = megatron.load_pipeline(path, storage="default")
    same = np.allclose(reloaded.transform({"image": data["image"][:10]})[0], outputs[0][:10], atol=1e-6)

    n_held_out = len(data["label"]) - N_TRAIN
    print(pipeline)
    print("outputs[0].shape    ", outputs[0].shape)  # (1000, 2)
    print("one_output[0].shape ", one_output[0].shape)  # (1, 2)
    print("outputs stored in   ", where, "(one row per observation)")
    print(f"model_acc            {metrics['model_acc']:.3f} on {n_held_out} held-out images", end=" ")
    print(f"({train_metrics['model_acc']:.3f} on the {N_TRAIN} it was fitted on)")
    print("                     synthetic data: random images, those of label 1 slightly brighter")
    print("saved to            ", path, "- reloads with the same outputs:", same)
    return {
        "pipeline": pipeline,
        "outputs": outputs,
        "one_output": one_output,
        "metrics": metrics,
        "train_metrics": train_metrics,
        "path": path,
        "reloaded": reloaded,
        "same": same,
    }


def run(args: argparse.Namespace) -> int:
    """``megatron demo``: run the tutorial in the working directory."""
    main()
    return 0


if __name__ == "__main__":
    main()
