"""Benchmarks of the thread executor against the local executor, in the same run: two
independent branches that release the GIL, and a single chain (where it must cost nothing)."""

from __future__ import annotations

import numpy as np

import megatron
from megatron.layers import StatelessLayer
from megatron.nodes import Input

from harness import Result, compared, interleaved


class RowMedian(StatelessLayer):
    """The median of each row, by a full sort: numpy releases the GIL while it sorts. The
    column is copied, so that the sorted rows are freed at once."""

    def transform(self, X):
        return np.sort(X, axis=1)[:, X.shape[1] // 2].copy()


class Identity(StatelessLayer):
    def transform(self, x):
        return x


def two_branches(quick: bool) -> Result:
    """Two branches of equal cost on one input, joined: the thread executor runs them at once.
    Goal: a speedup of at least 1.6 on 2 cores, i.e. a time ratio of at most 1 / 1.6."""
    rows, width = (500, 1001) if quick else (4000, 1001)
    x = Input("x", (width,))
    branches = [RowMedian()(x, "left"), RowMedian()(x, "right")]
    data = {"x": np.random.default_rng(0).normal(size=(rows, width))}
    pipelines = {
        executor: megatron.Pipeline(x, branches, name=f"branches_{executor}", executor=executor)
        for executor in ("threads", "local")
    }
    expected = pipelines["local"].transform(data)
    got = pipelines["threads"].transform(data)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    times = interleaved(
        {name: (lambda p=p: p.transform(data)) for name, p in pipelines.items()},
        calls=3 if quick else 5,
        repeats=5 if quick else 21,
    )
    return Result(
        name="thread executor, two independent branches (time; goal: speedup >= 1.6x)",
        **compared(times, "threads", "local", 1e3),
        baseline_name="the local executor",
        goal=1 / 1.6,
        unit="ms per batch",
        size=f"{rows:,} rows x {width:,}, a row-wise sort per branch",
    )


def single_chain(quick: bool) -> Result:
    """A chain of cheap layers on one row, where no two steps can run at once: the thread
    executor runs it in the calling thread, and must cost no more than the local executor."""
    n = 200
    x = Input("x", (4,))
    node = x
    for _ in range(n):
        node = Identity()(node)
    out = Identity()(node, "out")
    data = {"x": np.zeros((1, 4))}
    pipelines = {
        executor: megatron.Pipeline(x, out, name=f"chain_{executor}", executor=executor)
        for executor in ("threads", "local")
    }
    times = interleaved(
        {name: (lambda p=p: p.transform(data)) for name, p in pipelines.items()},
        calls=200 if quick else 1000,
        repeats=5 if quick else 21,
    )
    return Result(
        name="thread executor, a single chain",
        **compared(times, "threads", "local", 1e6),
        baseline_name="the local executor",
        goal=1.05,
        unit="µs per call",
        size=f"chain of {n} layers, 1 row",
    )


BENCHMARKS = [two_branches, single_chain]
