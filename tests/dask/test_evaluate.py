"""Evaluate on dask merges each partition's metric states in a tree: equal to a local
evaluate for every built-in metric (counts bit-identical, sums to 1e-12 relative)."""

from __future__ import annotations

import math
import warnings

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pytest

import megatron
import megatron_dask as md
from megatron import metrics
from megatron.errors import ConfigError, GraphError
from megatron.nodes import Input
from megatron_dask.evaluation import GatheredRowsWarning

rng = np.random.default_rng(11)
N = 203
TRUE = rng.integers(0, 2, size=N)
PRED = np.where(rng.random(N) < 0.8, TRUE, 1 - TRUE)
Y = rng.normal(size=N)
Y_HAT = Y + rng.normal(scale=0.3, size=N)
COUNTS = ("accuracy", "precision", "recall", "f1")


def scored_pipeline() -> megatron.Pipeline:
    labels, preds, y, y_hat = Input("labels"), Input("preds"), Input("y"), Input("y_hat")
    attached = [
        metrics.Accuracy()([labels, preds], "accuracy"),
        metrics.Precision()([labels, preds], "precision"),
        metrics.Recall()([labels, preds], "recall"),
        metrics.F1()([labels, preds], "f1"),
        metrics.MeanSquaredError()([y, y_hat], "mse"),
        metrics.MeanAbsoluteError()([y, y_hat], "mae"),
        metrics.R2()([y, y_hat], "r2"),
    ]
    return megatron.Pipeline([labels, preds, y, y_hat], y_hat, name="scored", metrics=attached)


def data() -> dict[str, np.ndarray]:
    return {"labels": TRUE, "preds": PRED, "y": Y, "y_hat": Y_HAT}


def assert_equal_to_local(got: dict[str, float], expected: dict[str, float]) -> None:
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if name in COUNTS:
            assert got[name] == value, name
        else:
            assert math.isclose(got[name], value, rel_tol=1e-12), (name, got[name], value)


@pytest.mark.parametrize("split_every", [2, 3, 8])
def test_every_built_in_metric_merges_to_the_local_value(split_every):
    pipeline = scored_pipeline()
    import pandas as pd

    ddf = dd.from_pandas(pd.DataFrame(data()), npartitions=9)
    expected = pipeline.evaluate(data())
    assert_equal_to_local(md.evaluate(pipeline, ddf, split_every=split_every), expected)
    assert_equal_to_local(pipeline.evaluate(ddf), expected)


def test_dask_arrays_evaluate_as_the_local_data():
    pipeline = scored_pipeline()
    arrays = {name: da.from_array(a, chunks=40) for name, a in data().items()}
    assert_equal_to_local(md.evaluate(pipeline, arrays), pipeline.evaluate(data()))


def test_a_metric_of_all_rows_is_exact_and_warns_that_it_gathers_them():
    y, y_hat = Input("y"), Input("y_hat")
    median = metrics.Metric(lambda a, b: float(np.median(a - b)))([y, y_hat], "median")
    pipeline = megatron.Pipeline([y, y_hat], y_hat, name="median", metrics=[median])
    arrays = {"y": da.from_array(Y, chunks=50), "y_hat": da.from_array(Y_HAT, chunks=50)}
    with pytest.warns(GatheredRowsWarning, match=r"metrics \['median'\]"):
        got = md.evaluate(pipeline, arrays)
    assert got == pipeline.evaluate({"y": Y, "y_hat": Y_HAT})


def test_refusals_come_before_any_task():
    x = Input("x")
    bare = megatron.Pipeline(x, x, name="bare")
    arrays = {"x": da.zeros(10, chunks=5)}
    with pytest.raises(GraphError, match="no metrics to evaluate"):
        md.evaluate(bare, arrays)
    with pytest.raises(ConfigError, match="at least 2"):
        md.evaluate(scored_pipeline(), arrays, split_every=1)


def test_scikit_learn_metrics_merge_to_the_local_value():
    pytest.importorskip("megatron_sklearn", reason="needs megatron_sklearn: its metrics are checked too")
    sk = metrics
    labels, scores = Input("labels"), Input("scores")
    attached = [
        sk.ROCAUC()([labels, scores], "auc"),
        sk.AveragePrecision()([labels, scores], "ap"),
        sk.LogLoss()([labels, scores], "log_loss"),
    ]
    pipeline = megatron.Pipeline([labels, scores], scores, name="sk", metrics=attached)
    probabilities = np.clip(0.5 + (Y_HAT - Y) / 4 + (TRUE - 0.5) / 2, 0.01, 0.99)
    local = {"labels": TRUE, "scores": probabilities}
    arrays = {name: da.from_array(a, chunks=50) for name, a in local.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GatheredRowsWarning)  # the ranking metrics need all rows
        got = md.evaluate(pipeline, arrays, split_every=2)
    assert_equal_to_local(got, pipeline.evaluate(local))
