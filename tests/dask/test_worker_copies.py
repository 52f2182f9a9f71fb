"""What a worker process keeps of the pipelines it runs: at most ``KEPT`` opened, and the
storage of one it drops closed (its connections would otherwise stay open until the garbage
collector ran in that worker), and copies that read pandas values a function captured compute
the client's fingerprint, so they store their rows."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import megatron
import megatron_dask as md
from megatron import layers
from megatron.nodes import Input
from megatron.storage.memory import MemoryStorage
from megatron_dask import shipping

CLOSED: list[str] = []


class SharedMemory(MemoryStorage):
    """A storage that says it shares writes and records its closing (in this process)."""

    shared = True

    def close(self) -> None:
        CLOSED.append(self.name)


def test_a_dropped_pipeline_has_its_storage_closed(monkeypatch):
    monkeypatch.setattr(shipping, "KEPT", 2)
    monkeypatch.setattr(shipping, "_opened", type(shipping._opened)())
    CLOSED.clear()
    for i in range(4):
        x = Input("x")
        pipeline = megatron.Pipeline(x, layers.ScalarMultiply(float(i))(x, "y"), name=f"p{i}")
        pipeline.storage = SharedMemory(f"p{i}")
        shipping.opened(shipping.parcel(pipeline, pipeline.fingerprint).compute())
    assert CLOSED == ["p0", "p1"]  # the two least recently used
    assert len(shipping._opened) == 2


def test_a_function_reading_a_pandas_series_stores_from_tasks(tmp_path):
    pytest.importorskip("megatron_sql", reason="needs megatron-sql: pip install -e packages/megatron-sql")
    prices = pd.Series([1.5, 2.5, 3.5])
    x = Input("x", dtype="int64")
    pipeline = megatron.Pipeline(
        x,
        layers.Lambda(lambda v: prices.loc[v].to_numpy())(x, "price"),
        name="lookup",
        storage=f"sqlite:///{tmp_path / 'lookup.db'}",
    )
    frame = pd.DataFrame({"x": np.arange(12) % 3})
    assert md.write(pipeline, dd.from_pandas(frame, npartitions=2)) == 12
    stored = pipeline.transform(frame, cache=True)
    np.testing.assert_array_equal(stored["price"], prices.loc[frame["x"]].to_numpy())
