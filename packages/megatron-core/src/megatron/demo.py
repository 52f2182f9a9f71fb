"""Getting started: the tutorial pipeline, end to end (``megatron demo``).

RGB images are turned grey, labels one-hot encoded, and both fed to a small Keras CNN whose
accuracy is tracked by a metric. The pipeline is fitted, its predictions are stored in the
embedded SQLite database (``megatron.db``) by observation index and looked up, and it is
evaluated; then it is saved to ``pipelines/`` and reloaded, storage reattached.

    python examples/getting_started.py      # or: megatron demo

It needs the Keras and SQL plugins (``pip install megatron-keras megatron-sql``).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up notes quiet

from typing import Any

import numpy as np

import megatron

try:
    import keras
except ImportError:  # pragma: no cover - the demo's own error message below
    keras = None


def make_model() -> Any:
    """A small CNN from (48, 48, 1) grey images to two class probabilities."""
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


def main() -> dict[str, object]:
    if keras is None:
        raise megatron.MegatronError("The demo needs Keras: pip install megatron-keras megatron-sql")
    keras.utils.set_random_seed(0)
    pipeline = build_pipeline()
    data = make_data()

    pipeline.fit(data)
    outputs = pipeline.transform(data)
    one_output = pipeline.storage.read(rows=["0"])
    metrics = pipeline.evaluate(data)

    path = pipeline.save("pipelines/")  # pipelines/getting_started-0.1.megatron: data, not code
    reloaded = megatron.load_pipeline(path, storage="default")
    same = np.allclose(reloaded.transform({"image": data["image"][:10]})[0], outputs[0][:10], atol=1e-6)

    print(pipeline)
    print("outputs[0].shape    ", outputs[0].shape)  # (1000, 2)
    print("one_output[0].shape ", one_output[0].shape)  # (1, 2)
    print("model_acc           ", round(metrics["model_acc"], 3))
    print("saved to            ", path, "- reloads with the same outputs:", same)
    return {
        "pipeline": pipeline,
        "outputs": outputs,
        "one_output": one_output,
        "metrics": metrics,
        "path": path,
        "reloaded": reloaded,
        "same": same,
    }


if __name__ == "__main__":
    main()
