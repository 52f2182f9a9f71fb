"""A stateful layer fitted directly (``layer.fit(X)``, not through a pipeline) is fitted: the
pipeline it belongs to transforms with what it learned, and the cache serves no rows of an
older fit."""

import numpy as np
import pytest

import megatron
from megatron.errors import NotFittedError
from megatron.layers import StatefulLayer, Whiten

X = np.array([[1.0], [3.0]])


def fit_batches(layer):
    layer.fit_batches(lambda: iter([(X[:1],), (X[1:],)]), epochs=1)


@pytest.mark.parametrize(
    "fit",
    [
        lambda layer: layer.fit(X),
        lambda layer: layer.partial_fit(X),
        lambda layer: layer.fit_transform(X),
        fit_batches,
    ],
    ids=["fit", "partial_fit", "fit_transform", "fit_batches"],
)
def test_a_layer_fitted_directly_is_fitted_for_its_pipeline(fit):
    x = megatron.nodes.Input("x", (1,))
    whiten = Whiten()
    pipeline = megatron.Pipeline(x, whiten(x, "y"), name="direct", storage="memory://")
    with pytest.raises(NotFittedError):
        pipeline.transform({"x": X})
    fit(whiten)
    assert whiten.fitted
    assert pipeline.transform({"x": X}, index=["a", "b"], cache=True)["y"].tolist() == [[-1.0], [1.0]]
    whiten.fit(X * 2)  # a new direct fit: a new state, so the stored rows are not served
    assert pipeline.transform({"x": X}, index=["a", "b"], cache=True)["y"].tolist() == [[-1.5], [-0.5]]
    whiten.reset()
    assert not whiten.fitted


class Failing(StatefulLayer):
    def fit(self, X):
        raise RuntimeError("cannot learn")

    def transform(self, X):
        return X


def test_a_direct_fit_that_fails_leaves_the_layer_unfitted():
    layer = Failing()
    with pytest.raises(RuntimeError, match="cannot learn"):
        layer.fit(X)
    assert not layer.fitted
