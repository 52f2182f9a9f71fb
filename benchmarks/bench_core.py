"""Benchmarks of the core engine: executor overhead and single-row latency."""

from __future__ import annotations

import numpy as np

import megatron
from megatron import layers
from megatron.layers import StatelessLayer
from megatron.nodes import Input

from harness import Result, interleaved


class Identity(StatelessLayer):
    def transform(self, x):
        return x


def executor_overhead(quick: bool) -> Result:
    """Marginal cost of one more node in a pipeline, against calling ``transform`` directly.

    Both are measured as the difference between a chain of ``n + 1`` layers and a chain of one,
    so the per-call costs of ``transform`` (input checks, the ``Outputs``) cancel out. The goal
    is an overhead of at most 1 µs per node: ratio <= (direct + 1 µs) / direct.
    """
    n = 200
    data = {"x": np.zeros((1, 4))}
    array = data["x"]

    def chain(length: int) -> tuple[megatron.Pipeline, list[Identity]]:
        x = Input("x", (4,))
        node, layers = x, []
        for _ in range(length):
            layers.append(Identity())
            node = layers[-1](node)
        node = Identity()(node, "out")
        return megatron.Pipeline(x, node, name=f"chain{length}"), layers

    long_pipeline, long_layers = chain(n)
    short_pipeline, short_layers = chain(0)

    def direct(layers: list[Identity]) -> None:
        value = array
        for layer in layers:
            value = layer.transform(value)

    times = interleaved(
        {
            "pipeline_long": lambda: long_pipeline.transform(data),
            "pipeline_short": lambda: short_pipeline.transform(data),
            "direct_long": lambda: direct(long_layers),
            "direct_short": lambda: direct(short_layers),
        },
        calls=200 if quick else 2000,
        repeats=5 if quick else 15,
    )
    ours = (times["pipeline_long"] - times["pipeline_short"]) / n * 1e6
    baseline = (times["direct_long"] - times["direct_short"]) / n * 1e6
    return Result(
        name="executor overhead per node",
        ours=ours,
        baseline=baseline,
        baseline_name="the layer's transform called directly",
        goal=(baseline + 1.0) / baseline,
        unit="µs per node",
        size=f"chain of {n} layers, 1 row",
    )


def single_row_transform(quick: bool) -> Result:
    """Built-in layers (Whiten, StaticDot, Clip) on one row, against the same numpy math inline."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(1000, 16))
    projection = rng.normal(size=(16, 4))

    x = Input("x", (16,))
    white = layers.Whiten()(x)
    projected = layers.StaticDot(projection)(white)
    out = layers.Clip(-1.0, 1.0)(projected, "out")
    pipeline = megatron.Pipeline(x, out, name="single_row")
    pipeline.fit({"x": train})
    mean, std = train.mean(axis=0), train.std(axis=0)
    row = {"x": rng.normal(size=(1, 16))}

    def raw() -> np.ndarray:
        return np.clip(((row["x"] - mean) / std) @ projection, -1.0, 1.0)

    np.testing.assert_allclose(pipeline.transform(row)["out"], raw())
    times = interleaved(
        {"ours": lambda: pipeline.transform(row), "raw": raw},
        calls=2000 if quick else 20000,
        repeats=5 if quick else 15,
    )
    return Result(
        name="single-row transform, 3 numpy layers",
        ours=times["ours"] * 1e6,
        baseline=times["raw"] * 1e6,
        baseline_name="the same numpy math inline",
        goal=3.0,
        unit="µs per call",
        size="1 row x 16 features",
    )


BENCHMARKS = [executor_overhead, single_row_transform]
