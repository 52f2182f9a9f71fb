"""scikit-learn layers against scikit-learn's own Pipeline doing the same work."""

from __future__ import annotations

import numpy as np

from harness import Result, compared, interleaved


def _data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 50))
    y = (X[:, :5].sum(axis=1) + rng.normal(size=rows) > 0).astype(int)
    return X, y


def _both(X: np.ndarray) -> tuple[object, object]:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import megatron
    from megatron_sklearn import Sklearn

    x, label = megatron.nodes.Input("x", (50,)), megatron.nodes.Input("y")
    scaled = Sklearn(StandardScaler())(x)
    reduced = Sklearn(PCA(n_components=20, random_state=0))(scaled)
    predicted = Sklearn(LogisticRegression())([reduced, label], "predicted")
    ours = megatron.Pipeline([x, label], predicted, name="bench_sklearn")
    theirs = make_pipeline(StandardScaler(), PCA(n_components=20, random_state=0), LogisticRegression())
    return ours, theirs


def bulk(quick: bool) -> list[Result]:
    rows = 20_000 if quick else 1_000_000
    X, y = _data(rows)
    ours, theirs = _both(X)
    fit = interleaved(
        {"ours": lambda: ours.fit({"x": X, "y": y}), "sklearn": lambda: theirs.fit(X, y)},
        calls=1,
        repeats=5,
    )
    np.testing.assert_array_equal(ours.transform({"x": X[:1000]})["predicted"], theirs.predict(X[:1000]))
    predict = interleaved(
        {"ours": lambda: ours.transform({"x": X}), "sklearn": lambda: theirs.predict(X)}, calls=1, repeats=5
    )
    size = f"{rows:,} x 50, StandardScaler -> PCA(20) -> LogisticRegression"
    return [
        Result(
            name="sklearn layers: fit",
            **compared(fit, "ours", "sklearn"),
            baseline_name="sklearn Pipeline.fit",
            goal=1.05,
            unit="s",
            size=size,
        ),
        Result(
            name="sklearn layers: predict",
            **compared(predict, "ours", "sklearn"),
            baseline_name="sklearn Pipeline.predict",
            goal=1.05,
            unit="s",
            size=size,
        ),
    ]


def single_row(quick: bool) -> Result:
    X, y = _data(5_000)
    ours, theirs = _both(X)
    ours.fit({"x": X, "y": y})
    theirs.fit(X, y)
    row = X[:1]
    times = interleaved(
        {"ours": lambda: ours.transform({"x": row}), "sklearn": lambda: theirs.predict(row)},
        calls=200 if quick else 2000,
        repeats=5 if quick else 11,
    )
    return Result(
        name="sklearn layers: single-row predict",
        **compared(times, "ours", "sklearn", 1e6),
        baseline_name="sklearn Pipeline.predict",
        goal=1.0,
        unit="µs per call",
        size="1 row x 50, StandardScaler -> PCA(20) -> LogisticRegression",
    )


BENCHMARKS = [bulk, single_row]
