"""Part of a graph on dask: ``transform(ddf, outputs=[...])`` and ``evaluate(ddf, metrics=[...])``
equal the same part computed locally, and refuse what the local call refuses, before any task."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import megatron
from megatron import layers, metrics
from megatron.errors import MissingInputError, StorageError, UnknownOutputError
from megatron.nodes import Input


def pipeline(storage=None) -> megatron.Pipeline:
    pair, code, label = Input("pair", (2,), columns=["a", "b"]), Input("c"), Input("label")
    scaled = layers.Whiten()(pair, "scaled")
    total = layers.Lambda(lambda v: v.sum(axis=1))(scaled, "total")
    onehot = layers.OneHotRange()(code, "onehot")
    hit = metrics.Accuracy()([label, code], "hit")
    mse = metrics.MeanSquaredError()([label, total], "mse")
    return megatron.Pipeline(
        [pair, code, label], [total, onehot], name="part", storage=storage, metrics=[hit, mse]
    )


def frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.integers(0, 3, n),
            "label": rng.integers(0, 3, n),
        },
        index=np.arange(n) * 3,
    )


def test_a_part_on_dask_equals_the_local_part():
    data = frame()
    fitted = pipeline().fit(data)
    got = fitted.transform(dd.from_pandas(data, npartitions=3), outputs=["scaled", "total"]).compute()
    expected = fitted.transform(data, outputs=["scaled", "total"]).to_frame()
    assert list(got.columns) == ["a", "b", "total"]  # the grouped columns name the scaled ones
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_names=False)


def test_a_part_on_dask_is_checked_before_any_task(tmp_path):
    pytest.importorskip("megatron_sql", reason="needs megatron-sql: pip install -e packages/megatron-sql")
    data = dd.from_pandas(frame(), npartitions=2)
    fitted = pipeline(storage=f"sqlite:///{tmp_path / 'parts.db'}").fit(frame())
    with pytest.raises(UnknownOutputError, match="Did you mean 'total'"):
        fitted.transform(data, outputs=["totl"])
    with pytest.raises(StorageError, match="store=False"):
        fitted.transform(data, outputs=["total"])
    assert list(fitted.transform(data, outputs="total", store=False).compute().columns) == ["total"]
    assert len(fitted.storage.read().index) == 0


def test_evaluate_on_dask_computes_the_metrics_asked_for():
    data = frame()
    fitted = pipeline().fit(data)
    ddf = dd.from_pandas(data, npartitions=4)
    assert fitted.evaluate(ddf, metrics=["mse", "hit"]) == pytest.approx(fitted.evaluate(data))
    assert list(fitted.evaluate(ddf, metrics="hit")) == ["hit"]
    with pytest.raises(UnknownOutputError, match="no metric named 'hits'"):
        fitted.evaluate(ddf, metrics=["hits"])


def test_missing_inputs_are_named_by_the_call_made_before_any_task():
    data = frame()
    fitted = pipeline().fit(data)
    ddf = dd.from_pandas(data.drop(columns=["label"]), npartitions=2)
    with pytest.raises(MissingInputError, match=r"Pipeline 'part'\.evaluate\(\) needs input 'label'"):
        fitted.evaluate(ddf)
    assert list(fitted.evaluate(dd.from_pandas(data.drop(columns=["a", "b"]), npartitions=2), metrics="hit"))
    with pytest.raises(MissingInputError, match=r"Pipeline 'part'\.fit\(\) needs input 'c'"):
        pipeline().fit(dd.from_pandas(data.drop(columns=["c"]), npartitions=2))
