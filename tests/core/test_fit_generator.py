"""Staged, exact fitting from batches."""

import numpy as np
import pytest

import megatron
from megatron.errors import DataError, IncrementalFitError
from megatron.layers import Lambda, StatefulLayer
from megatron.nodes import Input


class Standardize(StatefulLayer):
    """Exact incremental mean and variance (merged moments)."""

    def partial_fit(self, X):
        m = self.metadata
        n, mean, m2 = m.get("n", 0), m.get("mean", 0.0), m.get("m2", 0.0)
        bn, bmean = len(X), X.mean(axis=0)
        bm2 = ((X - bmean) ** 2).sum(axis=0)
        total = n + bn
        delta = bmean - mean
        m["mean"] = mean + delta * bn / total
        m["m2"] = m2 + bm2 + delta**2 * n * bn / total
        m["n"] = total

    def transform(self, X):
        return (X - self.metadata["mean"]) / np.sqrt(self.metadata["m2"] / self.metadata["n"])


class NoIncremental(StatefulLayer):
    def fit(self, X):
        self.metadata["k"] = 1

    def transform(self, X):
        return X


class CountingBatches:
    """A re-iterable source that counts how many passes were started and batches drawn."""

    def __init__(self, data, batch_size):
        self.data, self.batch_size = data, batch_size
        self.passes = self.batches = 0

    def __iter__(self):
        self.passes += 1
        for start in range(0, len(self.data), self.batch_size):
            self.batches += 1
            yield {"x": self.data[start : start + self.batch_size]}


def build():
    x = Input("x", (2,))
    first = Standardize()(x, "first")
    shifted = Lambda(lambda v: v * 3 + np.array([1.0, -2.0]))(first)
    second = Standardize()(shifted, "second")
    return x, first, second


@pytest.fixture
def data():
    return np.random.default_rng(2).normal(4, 2, size=(103, 2))


def test_staged_fit_equals_full_batch_fit_with_one_pass_per_stateful_depth(data):
    x, first, second = build()
    streamed = megatron.Pipeline(x, [first, second], name="streamed")
    source = CountingBatches(data, 10)
    streamed.fit_generator(source)
    assert source.passes == 2  # two stateful layers in a chain: depth 2

    x2, first2, second2 = build()
    full = megatron.Pipeline(x2, [first2, second2], name="full")
    full.fit({"x": data})
    for a, b in zip(streamed.layers, full.layers):
        if a.stateful:
            np.testing.assert_allclose(a.metadata["mean"], b.metadata["mean"])
            np.testing.assert_allclose(a.metadata["m2"], b.metadata["m2"])
    np.testing.assert_allclose(
        streamed.transform({"x": data})["second"], full.transform({"x": data})["second"]
    )


class Iterative(Standardize):
    """Counts the batches it learns from; declares that more passes teach it more."""

    iterative = True

    def partial_fit(self, X):
        self.metadata["seen"] = self.metadata.get("seen", 0) + 1
        super().partial_fit(X)


def test_steps_per_epoch_and_epochs_are_honoured(data):
    x, first, _ = build()
    learner = Iterative()
    pipeline = megatron.Pipeline(x, learner(first, "learned"), name="p")
    source = CountingBatches(data, 10)
    pipeline.fit_generator(source, steps_per_epoch=3, epochs=2)
    assert source.passes == 1 + 2  # the one-pass statistic once, then two epochs of the learner
    assert source.batches == (1 + 2) * 3
    assert learner.metadata["seen"] == 2 * 3


def test_epochs_give_one_pass_statistics_one_pass(data):
    x, first, second = build()
    pipeline = megatron.Pipeline(x, [first, second], name="p")
    source = CountingBatches(data, 10)
    pipeline.fit_generator(source, epochs=3)
    assert source.passes == 2  # two stages of one-pass statistics: epochs do not apply
    x2, first2, second2 = build()
    megatron.Pipeline(x2, [first2, second2], name="full").fit({"x": data})
    np.testing.assert_allclose(second.layer.metadata["mean"], second2.layer.metadata["mean"])
    assert first.layer.metadata["n"] == len(data)


def test_one_shot_iterator_draws_continuously_with_steps(data):
    x, _, second = build()
    pipeline = megatron.Pipeline(x, second, name="p")
    drawn = []

    def forever():
        while True:
            drawn.append(1)
            yield {"x": data[:10]}

    pipeline.fit_generator(forever(), steps_per_epoch=4)
    assert len(drawn) == 8


def test_one_shot_iterator_without_steps_is_refused_before_reading(data):
    x, _, second = build()
    pipeline = megatron.Pipeline(x, second, name="p")
    batches = iter([{"x": data}])
    with pytest.raises(DataError, match="one-shot iterator"):
        pipeline.fit_generator(batches)
    assert next(batches) is not None  # nothing was drawn


def test_layer_without_partial_fit_raises_before_any_batch_is_read(data):
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, NoIncremental()(x, "out"), name="p")
    source = CountingBatches(data, 10)
    with pytest.raises(IncrementalFitError, match=r"NoIncremental\) at node 'out' has no partial_fit"):
        pipeline.fit_generator(source)
    assert source.passes == 0


def test_source_running_out_before_steps_is_an_error(data):
    x, _, second = build()
    pipeline = megatron.Pipeline(x, second, name="p")
    with pytest.raises(DataError, match="ran out after 11 batches; 50 were asked"):
        pipeline.fit_generator(CountingBatches(data, 10), steps_per_epoch=50)


def test_transform_generator_keeps_each_batch_index_in_storage(data):
    x, _, second = build()
    pipeline = megatron.Pipeline(x, second, name="p", storage="memory://")
    pipeline.fit({"x": data})
    outputs = list(pipeline.transform_generator(CountingBatches(data[:40], 10)))
    assert [list(o.index) for o in outputs] == [list(range(i, i + 10)) for i in range(0, 40, 10)]
    assert sorted(pipeline.storage.keys()) == list(range(40))
    np.testing.assert_allclose(pipeline.storage.read(rows=[35])["second"], outputs[3]["second"][5:6])


def test_evaluate_generator_is_exact_over_uneven_batches():
    rng = np.random.default_rng(3)
    x, y = Input("x"), Input("y")
    pred = Lambda(lambda v: (v > 0).astype(int))(x, "pred")
    megatron.metrics.Accuracy()([y, pred], "acc")
    pipeline = megatron.Pipeline([x, y], pred, name="p")
    xs, ys = rng.normal(size=997), rng.integers(0, 2, size=997)
    cuts = np.sort(rng.choice(np.arange(1, 997), size=9, replace=False))
    batches = [{"x": a, "y": b} for a, b in zip(np.split(xs, cuts), np.split(ys, cuts))]
    assert pipeline.evaluate_generator(batches) == pipeline.evaluate({"x": xs, "y": ys})
