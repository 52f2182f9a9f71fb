"""Benchmarks of the core engine: executor overhead and single-row latency."""

from __future__ import annotations

import os
import subprocess
import sys

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


def import_time(quick: bool) -> Result:
    """``import megatron`` (every plugin installed) against importing its own dependencies."""

    # As installed packages are: with their bytecode cached (the first, warm-up run writes it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def run(code: str) -> None:
        subprocess.run([sys.executable, "-c", code], check=True, env=env)

    times = interleaved(
        {"ours": lambda: run("import megatron"), "deps": lambda: run("import numpy, pluggy, attrs")},
        calls=1,
        repeats=5 if quick else 15,
    )
    return Result(
        name="import megatron (all plugins installed)",
        ours=times["ours"] * 1e3,
        baseline=times["deps"] * 1e3,
        baseline_name="import numpy, pluggy, attrs",
        goal=1.2,
        unit="ms per interpreter",
        size="a fresh interpreter each time",
    )


def fit_generator_passes(quick: bool) -> Result:
    """Passes ``fit_generator`` makes over the data for a chain of three stateful layers, all
    one-pass statistics, asked for three epochs: one pass per stage, since epochs are for
    iterative learners (three epochs would refit each mean and variance three times)."""

    class Source:
        passes = 0

        def __iter__(self):
            Source.passes += 1
            for start in range(0, 1000, 100):
                yield {"x": np.arange(start, start + 100, dtype=float)}

    x = Input("x")
    node = x
    for _ in range(3):
        node = layers.Whiten()(layers.ScalarMultiply(2)(node))
    pipeline = megatron.Pipeline(x, layers.Lambda(lambda v: v)(node, "out"), name="passes")
    pipeline.fit_generator(Source(), epochs=3, progress=False)
    return Result(
        name="fit_generator passes over the data",
        ours=float(Source.passes),
        baseline=3.0,
        baseline_name="the depth of stateful layers",
        goal=1.0,
        unit="passes",
        size="3 stateful layers in a chain, 10 batches, epochs=3",
    )


BENCHMARKS = [executor_overhead, single_row_transform, import_time, fit_generator_passes]
