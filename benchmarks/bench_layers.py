"""Every built-in layer, run through a pipeline, against hand-written numpy doing the same.

Where numpy can do the work in place, the goal is judged against that: the output and any
scratch arrays allocated once, ahead of the timed calls, and every step written into them with
``out=`` (a naive expression such as ``(a - mean) / std`` allocates a temporary per step and is
an easy baseline to beat). The naive expression's time is given beside it."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

import megatron
from megatron import layers
from megatron.nodes import Input

from harness import Result, compared, interleaved

STOPWORDS = None


def _cases(rows: int) -> list[tuple[str, Callable[[], Any], tuple[np.ndarray, ...], Callable[..., Any]]]:
    rng = np.random.default_rng(0)
    X = rng.normal(5, 2, size=(rows, 8))
    P = rng.uniform(0.5, 4, size=(rows, 8))
    nan = np.where(rng.random((rows, 8)) < 0.1, np.nan, X)
    labels = rng.integers(0, 10, size=rows)
    images = rng.random((rows // 100, 32, 32, 3))
    W = rng.normal(size=(8, 4))
    text_rows = max(rows // 20, 100)
    words = np.array(
        [" ".join(rng.choice(["the", "cat", "sat", "on", "a", "mat", "dog"], 6)) for _ in range(text_rows)]
    )
    mean, std = X.mean(axis=0), X.std(axis=0)
    low, high = X.min(axis=0), X.max(axis=0)
    fill = np.nanmean(nan, axis=0)
    from megatron.layers.text import stopwords

    english = stopwords("english")
    find = re.compile(r"(?u)\b\w[\w']*\b").findall
    return [
        ("RGBtoGrey", partial(layers.RGBtoGrey, keep_dim=True), (images,), lambda a: (a @ np.array([0.21, 0.72, 0.07]))[..., None]),
        ("RGBtoBinary", layers.RGBtoBinary, (images,), lambda a: ((a @ np.array([0.21, 0.72, 0.07])) >= 0.5).astype(np.uint8)[..., None]),
        ("Downsample", partial(layers.Downsample, (16, 16)), (images,), lambda a: a.reshape(len(a), 16, 2, 16, 2, 3).mean(axis=(2, 4))),
        ("Upsample", partial(layers.Upsample, (64, 64)), (images,), lambda a: a.repeat(2, axis=1).repeat(2, axis=2)),
        ("ScalePixels", layers.ScalePixels, ((images * 255).astype(np.uint8),), lambda a: a.astype(np.float32) / np.float32(255)),
        ("Impute", partial(layers.Impute, {np.nan: 0.0}), (nan,), lambda a: np.where(np.isnan(a), 0.0, a)),
        ("SimpleImpute", layers.SimpleImpute, (nan,), lambda a: np.where(np.isnan(a), fill, a)),
        ("MissingIndicator", layers.MissingIndicator, (nan,), np.isnan),
        ("Add", layers.Add, (X, P), np.add),
        ("Subtract", layers.Subtract, (X, P), np.subtract),
        ("ScalarMultiply", partial(layers.ScalarMultiply, 3.0), (X,), lambda a: a * 3.0),
        ("ElementWiseMultiply", layers.ElementWiseMultiply, (X, P), np.multiply),
        ("Divide", layers.Divide, (X, P), lambda a, b: np.divide(a, b, out=np.zeros_like(a), where=b != 0)),
        ("StaticDot", partial(layers.StaticDot, W), (X,), lambda a: a @ W),
        ("Dot", layers.Dot, (X, P), lambda a, b: np.einsum("ni,ni->n", a, b)),
        ("Normalize", layers.Normalize, (P,), lambda a: a / a.sum(axis=1, keepdims=True)),
        ("Whiten", layers.Whiten, (X,), lambda a: (a - mean) / std),
        ("MinMaxScale", layers.MinMaxScale, (X,), lambda a: (a - low) / (high - low)),
        ("Clip", partial(layers.Clip, 4, 6), (X,), lambda a: np.clip(a, 4, 6)),
        ("Log", layers.Log, (P,), np.log),
        ("Cast", partial(layers.Cast, "float32"), (X,), lambda a: a.astype(np.float32)),
        ("AddDim", layers.AddDim, (X,), lambda a: a[..., None]),
        ("OneHotRange", partial(layers.OneHotRange, 0, 9), (labels,), lambda a: np.eye(10, dtype=np.float32)[a]),
        ("OneHotLabels", layers.OneHotLabels, (labels,), lambda a: np.eye(10, dtype=np.float32)[np.searchsorted(np.arange(10), a)]),
        ("Reshape", partial(layers.Reshape, (2, 4)), (X,), lambda a: a.reshape(len(a), 2, 4)),
        ("Flatten", layers.Flatten, (images,), lambda a: a.reshape(len(a), -1)),
        ("SplitDict", partial(layers.SplitDict, ["a"]), (np.array([{"a": i} for i in range(text_rows)]),), lambda a: np.array([r["a"] for r in a])),
        ("TimeSeries", partial(layers.TimeSeries, 5), (X,), lambda a: np.ascontiguousarray(np.moveaxis(np.lib.stride_tricks.sliding_window_view(a, 5, axis=0), -1, 1))),
        ("Concatenate", layers.Concatenate, (X, P), lambda a, b: np.concatenate([a, b], axis=1)),
        ("Slice", partial(layers.Slice, 2, 6), (X,), lambda a: a[:, 2:6]),
        ("Filter", layers.Filter, (X[:, 0] > 5, X), lambda m, a: a[m]),
        ("Lowercase", layers.Lowercase, (words,), np.char.lower),
        ("Tokenize", layers.Tokenize, (words,), lambda a: [find(s) for s in a.tolist()]),
        ("RemoveStopwords", layers.RemoveStopwords, (words,), lambda a: [" ".join(w for w in s.split() if w.lower() not in english) for s in a.tolist()]),
        ("CountVectorize", layers.CountVectorize, (words,), None),
        ("Lambda", partial(layers.Lambda, np.sqrt), (P,), np.sqrt),
    ]  # fmt: skip


def _in_place(name: str, arrays: tuple[np.ndarray, ...], make: Callable[[], Any]) -> Callable[[], Any] | None:
    """The numpy of layer ``name`` (made by ``make``) on ``arrays`` written into buffers
    allocated here, once, or None where the layer is a view (nothing to preallocate) or no such
    form exists. What a stateful layer learns is computed here too, as the naive baselines do."""
    a = arrays[0]
    fitted: dict[str, Any] = {}
    if name in ("Whiten", "MinMaxScale", "SimpleImpute"):
        fitted = {"mean": a.mean(axis=0), "std": a.std(axis=0), "low": a.min(axis=0), "high": a.max(axis=0)}
        fitted["fill"] = np.nanmean(a, axis=0)
    if name == "StaticDot":
        fitted["W"] = make.args[0]  # type: ignore[attr-defined]
    b = arrays[1] if len(arrays) > 1 else None
    out = np.empty_like(a, dtype=np.float64) if a.dtype != np.uint8 else None
    mask = np.empty(a.shape, dtype=bool)
    grey = np.array([0.21, 0.72, 0.07])
    if name in ("RGBtoGrey", "RGBtoBinary"):
        plane = np.empty(a.shape[:-1])
        if name == "RGBtoGrey":
            return lambda: np.matmul(a, grey, out=plane)[..., None]
        flags = np.empty(a.shape[:-1], dtype=bool)
        return lambda: np.greater_equal(np.matmul(a, grey, out=plane), 0.5, out=flags).view(np.uint8)[
            ..., None
        ]
    if name == "Downsample":
        small = np.empty((len(a), 16, 16, 3))
        return lambda: a.reshape(len(a), 16, 2, 16, 2, 3).mean(axis=(2, 4), out=small)
    if name == "Upsample":
        big = np.empty((len(a), 64, 64, 3))

        def upsample() -> np.ndarray:
            big.reshape(len(a), 32, 2, 32, 2, 3)[...] = a[:, :, None, :, None, :]
            return big

        return upsample
    if name == "ScalePixels":
        pixels = np.empty(a.shape, dtype=np.float32)
        return lambda: np.divide(a, np.float32(255), out=pixels)
    if name in ("Impute", "SimpleImpute"):
        fill = 0.0 if name == "Impute" else np.broadcast_to(fitted["fill"], a.shape)

        def impute() -> np.ndarray:
            np.copyto(out, a)
            np.copyto(out, fill, where=np.isnan(a, out=mask))
            return out

        return impute
    binary = {"Add": np.add, "Subtract": np.subtract, "ElementWiseMultiply": np.multiply}
    unary = {"Log": np.log, "Lambda": np.sqrt}
    if name in binary:
        return lambda: binary[name](a, b, out=out)
    if name in unary:
        return lambda: unary[name](a, out=out)
    if name == "ScalarMultiply":
        return lambda: np.multiply(a, 3.0, out=out)
    if name == "Clip":
        return lambda: np.clip(a, 4, 6, out=out)
    if name == "Divide":

        def divide() -> np.ndarray:
            out.fill(0.0)
            return np.divide(a, b, out=out, where=np.not_equal(b, 0, out=mask))

        return divide
    if name == "StaticDot":
        product = np.empty((len(a), fitted["W"].shape[1]))
        return lambda: np.matmul(a, fitted["W"], out=product)
    if name == "Dot":
        dots = np.empty(len(a))
        return lambda: np.einsum("ni,ni->n", a, b, out=dots)
    if name == "Normalize":
        sums = np.empty((len(a), 1))
        return lambda: np.divide(a, np.sum(a, axis=1, keepdims=True, out=sums), out=out)
    if name in ("Whiten", "MinMaxScale"):
        shift, scale = (
            (fitted["mean"], fitted["std"])
            if name == "Whiten"
            else (fitted["low"], fitted["high"] - fitted["low"])
        )
        return lambda: np.divide(np.subtract(a, shift, out=out), scale, out=out)
    if name == "Cast":
        single = np.empty(a.shape, dtype=np.float32)
        return lambda: np.copyto(single, a, casting="same_kind") or single
    if name in ("OneHotRange", "OneHotLabels"):
        codes = np.empty((len(a), 10), dtype=np.float32)
        rows = np.arange(len(a))

        def one_hot() -> np.ndarray:
            codes.fill(0.0)
            codes[rows, a if name == "OneHotRange" else np.searchsorted(np.arange(10), a)] = 1.0
            return codes

        return one_hot
    if name == "TimeSeries":
        windows = np.empty((len(a) - 4, 5, a.shape[1]))

        def time_series() -> np.ndarray:
            windows[...] = np.moveaxis(np.lib.stride_tricks.sliding_window_view(a, 5, axis=0), -1, 1)
            return windows

        return time_series
    if name == "Concatenate":
        joined = np.empty((len(a), a.shape[1] + b.shape[1]))
        return lambda: np.concatenate([a, b], axis=1, out=joined)
    if name == "Filter":
        kept = np.empty((int(a.sum()), b.shape[1]))
        return lambda: np.compress(a, b, axis=0, out=kept)
    return None


def _count_vectorize_baseline(vocabulary: list[str]) -> Callable[[np.ndarray], np.ndarray]:
    column = {t: j for j, t in enumerate(vocabulary)}

    def count(a: np.ndarray) -> np.ndarray:
        out = np.zeros((len(a), len(column)), dtype=np.int64)
        for i, s in enumerate(a.tolist()):
            for token in s.split():
                j = column.get(token)
                if j is not None:
                    out[i, j] += 1
        return out

    return count


def layer_benchmarks(quick: bool) -> list[Result]:
    rows = 20_000 if quick else 1_000_000
    results = []
    for name, make, arrays, baseline in _cases(rows):
        nodes = [Input(f"x{i}", a.shape[1:]) for i, a in enumerate(arrays)]
        layer = make()
        out = layer(nodes if len(nodes) > 1 else nodes[0], "out")
        pipeline = megatron.Pipeline(nodes, out, name=f"bench_{name}")
        data = {f"x{i}": a for i, a in enumerate(arrays)}
        if layer.stateful:
            pipeline.fit(data)
        if baseline is None:
            baseline = _count_vectorize_baseline(layer.metadata["vocabulary"].tolist())
        functions = {"ours": lambda: pipeline.transform(data), "numpy": lambda: baseline(*arrays)}  # noqa: B023
        in_place = _in_place(name, arrays, make)
        if in_place is not None:
            np.testing.assert_allclose(np.asarray(in_place()), np.asarray(baseline(*arrays)), rtol=1e-6)
            functions["in place"] = in_place
        times = interleaved(functions, calls=1 if not quick else 2, repeats=7 if not quick else 3)
        if in_place is None:
            judged, baseline_name = compared(times, "ours", "numpy", 1e3), "hand-written numpy"
        else:
            judged = compared(times, "ours", "in place", 1e3)
            baseline_name = (
                f"numpy in place, buffers preallocated; the naive expression: {times['numpy'] * 1e3:.3g} ms"
            )
        results.append(
            Result(
                name=f"layer {name}",
                **judged,
                baseline_name=baseline_name,
                goal=1.3,
                unit="ms per batch",
                size=f"{len(arrays[0]):,} rows",
            )
        )
    return results


BENCHMARKS = [layer_benchmarks]
