"""One fitted pipeline, transformed from several threads at once."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import megatron
from megatron.layers import Lambda, StatefulLayer
from megatron.nodes import Input


class Scale(StatefulLayer):
    def fit(self, X):
        self.metadata["scale"] = np.abs(X).max(axis=0)

    def transform(self, X):
        return X / self.metadata["scale"]


def test_four_threads_give_the_same_outputs_as_one():
    x = Input("x", (8,))
    scaled = Scale()(x)
    mixed = Lambda(lambda v: np.tanh(v @ np.ones((8, 8))))(scaled, "mixed")
    pipeline = megatron.Pipeline(x, mixed, name="threads")
    rng = np.random.default_rng(4)
    pipeline.fit({"x": rng.normal(size=(1000, 8))})
    batches = [rng.normal(size=(500, 8)) for _ in range(32)]
    expected = [pipeline.transform({"x": b})["mixed"] for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda b: pipeline.transform({"x": b})["mixed"], batches))
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)
