"""Eager mode: layers compute as soon as they are called on nodes holding data."""

import numpy as np
import pytest

import megatron
from megatron.layers import Lambda, StatefulLayer
from megatron.nodes import Input


class Whiten(StatefulLayer):
    def fit(self, X):
        self.metadata["mean"] = X.mean(axis=0)
        self.metadata["std"] = X.std(axis=0)

    def transform(self, X):
        return (X - self.metadata["mean"]) / self.metadata["std"]


def test_eager_nodes_compute_at_once_and_pipelines_keep_what_they_learned():
    rng = np.random.default_rng(1)
    train = rng.normal(5, 3, size=(100, 3))
    x = Input("x", (3,))(train)
    white = Whiten()(x, "white")
    doubled = Lambda(lambda v: 2 * v)(white, "doubled")
    assert x.output is not None
    np.testing.assert_allclose(white.output.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(doubled.output, 2 * white.output)

    pipeline = megatron.Pipeline(x, doubled, name="eager")
    new = rng.normal(size=(4, 3))
    expected = 2 * (new - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_allclose(pipeline.transform({"x": new})["doubled"], expected)


def test_eager_input_checks_its_declared_shape():
    with pytest.raises(megatron.errors.InputShapeError, match="'x' declares per-observation shape"):
        Input("x", (3,))(np.zeros((5, 4)))


def test_errors_in_eager_layers_name_the_node():
    x = Input("x")(np.zeros(3))
    with pytest.raises(megatron.errors.LayerError, match="at node 'bad'"):
        Lambda(lambda v: v.reshape(7))(x, "bad")
