"""Getting started: the tutorial pipeline, on random images and binary labels.

Inputs are RGB images and labels; the images are turned grey, whitened, and fed to a
classifier with the labels as its training targets; an accuracy metric is attached. The
pipeline is fitted, transformed (outputs are stored by observation index), looked up by
index, and evaluated.
"""

from __future__ import annotations

import numpy as np

import megatron
from megatron.layers import Lambda, StatefulLayer


class Whiten(StatefulLayer):
    """Zero mean and unit variance per feature (the tutorial's custom stateful layer)."""

    def fit(self, X):
        self.metadata["mean"] = X.mean(axis=0)
        self.metadata["std"] = X.std(axis=0)

    def transform(self, X):
        return (X - self.metadata["mean"]) / self.metadata["std"]


class NearestCentroid(StatefulLayer):
    """A tiny classifier: called on ``[features, labels]``; the labels only feed ``fit``."""

    def n_targets(self, n_inputs):
        return 1

    def fit(self, X, y):
        X = X.reshape(len(X), -1)
        self.metadata["classes"] = np.unique(y)
        self.metadata["centroids"] = np.stack([X[y == c].mean(axis=0) for c in self.metadata["classes"]])

    def transform(self, X):
        X = X.reshape(len(X), -1)
        distances = ((X[:, None, :] - self.metadata["centroids"][None]) ** 2).sum(axis=-1)
        return self.metadata["classes"][distances.argmin(axis=1)]


def rgb_to_grey(images):
    """Luminosity greyscale, keeping a channel axis."""
    return (images @ np.array([0.21, 0.72, 0.07]))[..., None]


def main() -> None:
    images = megatron.nodes.Input("image", (48, 48, 3))
    labels = megatron.nodes.Input("label")

    grey = Lambda(rgb_to_grey, output_shape=(48, 48, 1))(images, "grey")
    white = Whiten()(grey, "white")
    preds = NearestCentroid()([white, labels], "preds")
    megatron.metrics.Accuracy()([labels, preds], "model_acc")

    pipeline = megatron.Pipeline(
        [images, labels], preds, name="getting_started", version=0.1, storage="memory://"
    )

    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 1000)
    image = rng.random((1000, 48, 48, 3)) + 0.05 * label[:, None, None, None]
    data = {"image": image, "label": label}

    pipeline.fit(data)
    outputs = pipeline.transform(data)
    one_output = pipeline.storage.read(rows=["0"])
    metrics = pipeline.evaluate(data)

    print(pipeline)
    print("outputs[0].shape    ", outputs[0].shape)
    print("one_output[0].shape ", one_output[0].shape)
    print("model_acc           ", round(metrics["model_acc"], 3))


if __name__ == "__main__":
    main()
