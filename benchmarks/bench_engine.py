"""Benchmarks of the execution engine: a fitted affine chain (folded into one matrix product),
buffer reuse (element-wise steps writing into the arrays they free), peak memory, and the
per-node cost of a one-row transform. BLAS runs on one thread in every row (threadpoolctl),
so ours and the baselines do the same work on the same cores."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import megatron
from megatron import layers
from megatron.layers import StatelessLayer
from megatron.nodes import Input

from harness import Result, interleaved

WIDTH, OUT = 50, 10


def _chain(rows: int) -> tuple[megatron.Pipeline, np.ndarray, dict[str, Any]]:
    """The fitted ``Whiten -> StaticDot(50->10) -> Clip`` pipeline, its batch, and its parameters."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, WIDTH)) * 3 + 1
    W = rng.normal(size=(WIDTH, OUT))
    x = Input("x", (WIDTH,))
    out = layers.Clip(-1.0, 1.0)(layers.StaticDot(W)(layers.Whiten()(x)), "out")
    pipeline = megatron.Pipeline(x, out, name="engine_chain").fit({"x": X})
    mean, scale = X.mean(axis=0), X.std(axis=0)
    return pipeline, X, {"W": W, "mean": mean, "scale": scale}


def _hand_written(X: np.ndarray, p: dict[str, Any]) -> Callable[[], np.ndarray]:
    """The same math in place, numpy by hand, into buffers allocated once."""
    centred, projected = np.empty_like(X), np.empty((len(X), OUT))

    def run() -> np.ndarray:
        np.subtract(X, p["mean"], out=centred)
        np.divide(centred, p["scale"], out=centred)
        np.matmul(centred, p["W"], out=projected)
        return np.clip(projected, -1.0, 1.0, out=projected)

    return run


def _folded_gemm(X: np.ndarray, p: dict[str, Any]) -> Callable[[], np.ndarray]:
    """The same math folded by hand: ``X @ W' + b`` and a clip in place."""
    folded = p["W"] / p["scale"][:, None]
    bias = -(p["mean"] / p["scale"]) @ p["W"]

    def run() -> np.ndarray:
        out = X @ folded
        out += bias
        return np.clip(out, -1.0, 1.0, out=out)

    return run


def affine_chain(quick: bool) -> list[Result]:
    """The chain against the folded GEMM by hand (goal 1.2x) and against hand-written in-place
    numpy with preallocated buffers (goal 1.05x)."""
    rows = 20_000 if quick else 1_000_000
    pipeline, X, params = _chain(rows)
    data = {"x": X}
    gemm, by_hand = _folded_gemm(X, params), _hand_written(X, params)
    np.testing.assert_allclose(pipeline.transform(data)["out"], by_hand(), rtol=1e-9, atol=1e-9)
    with threadpool_limits(limits=1):
        times = interleaved(
            {"ours": lambda: pipeline.transform(data), "gemm": gemm, "by_hand": by_hand},
            calls=1 if not quick else 5,
            repeats=9 if not quick else 5,
        )
    size = f"{rows:,} x {WIDTH} float64, Whiten -> StaticDot({WIDTH}->{OUT}) -> Clip"
    return [
        Result(
            name="affine chain vs the folded GEMM by hand",
            ours=times["ours"] * 1e3,
            baseline=times["gemm"] * 1e3,
            baseline_name="X @ W' + b and an in-place clip",
            goal=1.2,
            unit="ms per batch",
            size=size,
        ),
        Result(
            name="affine chain vs hand-written in-place numpy",
            ours=times["ours"] * 1e3,
            baseline=times["by_hand"] * 1e3,
            baseline_name="subtract, divide, matmul, clip into preallocated buffers",
            goal=1.05,
            unit="ms per batch",
            size=size,
        ),
    ]


def whiten_alone(quick: bool) -> Result:
    """``Whiten.transform`` (a new array per call) against an in-place subtract-and-divide into a
    buffer allocated once (goal 1.1x)."""
    rows = 20_000 if quick else 1_000_000
    X = np.random.default_rng(1).normal(size=(rows, WIDTH))
    whiten = layers.Whiten()
    whiten.fit(X)
    mean, scale = whiten.metadata["mean"], whiten.metadata["scale"]
    buffer = np.empty_like(X)

    def in_place() -> np.ndarray:
        np.subtract(X, mean, out=buffer)
        np.divide(buffer, scale, out=buffer)
        return buffer

    times = interleaved(
        {"ours": lambda: whiten.transform(X), "in_place": in_place},
        calls=1 if not quick else 5,
        repeats=9 if not quick else 5,
    )
    return Result(
        name="Whiten.transform vs in-place subtract-and-divide",
        ours=times["ours"] * 1e3,
        baseline=times["in_place"] * 1e3,
        baseline_name="np.subtract and /= into a buffer allocated once",
        goal=1.1,
        unit="ms per batch",
        size=f"{rows:,} x {WIDTH} float64",
    )


def _peak(function: Callable[[], Any]) -> int:
    """Peak bytes traced while ``function`` runs (numpy reports its arrays to tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = function()
        del result
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def peak_memory(quick: bool) -> Result:
    """Peak memory of one transform of the chain against the hand-written version, its buffers
    allocated within the measurement (goal 1.2x). The input is the caller's and not counted."""
    rows = 20_000 if quick else 1_000_000
    pipeline, X, params = _chain(rows)
    data = {"x": X}
    pipeline.transform(data)  # folded coefficients computed once, as in steady use
    ours = min(_peak(lambda: pipeline.transform(data)) for _ in range(3))
    baseline = min(_peak(lambda: _hand_written(X, params)()) for _ in range(3))
    return Result(
        name="affine chain peak memory vs hand-written in-place numpy",
        ours=ours / 2**20,
        baseline=baseline / 2**20,
        baseline_name="the hand-written chain with its two buffers",
        goal=1.2,
        unit="MiB",
        size=f"{rows:,} x {WIDTH} float64",
    )


class Identity(StatelessLayer):
    def transform(self, x: np.ndarray) -> np.ndarray:
        return x


def per_node(quick: bool) -> Result:
    """Marginal cost of one more node on a one-row transform: a chain of ``n + 1`` layers minus a
    chain of one, per node; against the goal of 0.25 µs."""
    n = 200
    data = {"x": np.zeros((1, 4))}

    def chain(length: int) -> megatron.Pipeline:
        x = Input("x", (4,))
        node: Any = x
        for _ in range(length):
            node = Identity()(node)
        return megatron.Pipeline(x, Identity()(node, "out"), name=f"nodes{length}")

    long, short = chain(n), chain(0)
    times = interleaved(
        {"long": lambda: long.transform(data), "short": lambda: short.transform(data)},
        calls=200 if quick else 2000,
        repeats=5 if quick else 15,
    )
    return Result(
        name="per-node cost of a one-row transform",
        ours=(times["long"] - times["short"]) / n * 1e6,
        baseline=0.25,
        baseline_name="the goal, 0.25 µs per node",
        goal=1.0,
        unit="µs per node",
        size=f"chain of {n} layers, 1 row",
    )


BENCHMARKS = [affine_chain, whiten_alone, peak_memory, per_node]
