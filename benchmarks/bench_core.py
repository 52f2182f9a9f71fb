"""Benchmarks of the core engine: executor overhead, single-row latency (the fixed cost of a
``transform`` call around the executor, and a chain of three layers against numpy), import
time and passes over the data."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np

import megatron
from megatron import layers
from megatron.layers import StatelessLayer
from megatron.nodes import Input

from harness import Result, Times, compared, interleaved


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
        ours_cpu=(times.cpu["pipeline_long"] - times.cpu["pipeline_short"]) / n * 1e6,
        baseline_cpu=(times.cpu["direct_long"] - times.cpu["direct_short"]) / n * 1e6,
        baseline_name="the layer's transform called directly",
        goal=(baseline + 1.0) / baseline,
        unit="µs per node",
        size=f"chain of {n} layers, 1 row",
    )


def _single_row_chain() -> tuple[megatron.Pipeline, dict[str, np.ndarray], Any]:
    """A fitted Whiten -> StaticDot(50 -> 10) -> Clip(-1, 1), a row for it, and the same math
    in numpy."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(1000, 50))
    projection = rng.normal(size=(50, 10))
    x = Input("x", (50,))
    out = layers.Clip(-1.0, 1.0)(layers.StaticDot(projection)(layers.Whiten()(x)), "out")
    pipeline = megatron.Pipeline(x, out, name="single_row")
    pipeline.fit({"x": train})
    mean, std = train.mean(axis=0), train.std(axis=0)
    row = {"x": rng.normal(size=(1, 50))}

    def raw() -> np.ndarray:
        return np.clip(((row["x"] - mean) / std) @ projection, -1.0, 1.0)

    np.testing.assert_allclose(pipeline.transform(row)["out"], raw())
    return pipeline, row, raw


def single_row_transform(quick: bool) -> Result:
    """Built-in layers (Whiten, StaticDot, Clip) on one row, against the same numpy math inline."""
    pipeline, row, raw = _single_row_chain()
    times = interleaved(
        {"ours": lambda: pipeline.transform(row), "raw": raw},
        calls=2000 if quick else 20000,
        repeats=5 if quick else 15,
    )
    return Result(
        name="single-row transform, 3 numpy layers",
        **compared(times, "ours", "raw", 1e6),
        baseline_name="the same numpy math inline",
        goal=1.3,
        unit="µs per call",
        size="1 row x 50 features, Whiten -> StaticDot(50 -> 10) -> Clip",
    )


def transform_fixed_cost(quick: bool) -> Result:
    """What a single-row ``transform`` costs around the executor: reading the dict, checking
    the plan's layers are fitted, building the Outputs. Ours is the whole call, the baseline
    the executor running the same plan on the same arrays; the goal allows 2 µs between them."""
    pipeline, row, _ = _single_row_chain()
    plan = pipeline.plan_of("transform")
    executor = pipeline._executor
    feeds = [row["x"]]
    times = interleaved(
        {"transform": lambda: pipeline.transform(row), "executor": lambda: executor.run(plan, feeds)},
        calls=2000 if quick else 20000,
        repeats=5 if quick else 21,
    )
    result = compared(times, "transform", "executor", 1e6)
    return Result(
        name="transform fixed cost per call (goal: at most 2 µs above the executor)",
        **result,
        baseline_name="the executor alone on the same plan and arrays",
        goal=(result["baseline"] + 2.0) / result["baseline"],
        unit="µs per call",
        size="1 row x 50 features, 3 layers",
    )


def _fresh_interpreters(codes: dict[str, str], repeats: int) -> Times:
    """Seconds (wall and CPU, the child's included) to run each piece of code in a fresh
    interpreter, as installed packages are: with their bytecode cached (the warm-up run
    writes it)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def run(code: str) -> None:
        subprocess.run([sys.executable, "-c", code], check=True, env=env)

    return interleaved(
        {name: lambda code=code: run(code) for name, code in codes.items()}, calls=1, repeats=repeats
    )


def import_time(quick: bool) -> list[Result]:
    """``import megatron`` (every plugin installed), and the same with the first use of a
    built-in layer, against importing its own dependencies."""
    deps = "import numpy, pluggy, attrs"
    times = _fresh_interpreters(
        {
            "import": "import megatron",
            "first layer": "import megatron; megatron.layers.Whiten",
            "deps": deps,
        },
        repeats=5 if quick else 21,
    )
    return [
        Result(
            name=name,
            **compared(times, key, "deps", 1e3),
            baseline_name=deps,
            goal=1.2,
            unit="ms per interpreter",
            size="a fresh interpreter each time",
        )
        for name, key in (
            ("import megatron (all plugins installed)", "import"),
            ("import megatron and first use of a built-in layer", "first layer"),
        )
    ]


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


BENCHMARKS = [
    executor_overhead,
    single_row_transform,
    transform_fixed_cost,
    import_time,
    fit_generator_passes,
]
