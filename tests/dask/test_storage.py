"""Storage on workers: each partition's task writes its own rows under the client's
fingerprint, on SQLite and PostgreSQL; the client's cached transform reads them. Tables made by
two workers at once, keys in several partitions, and a cluster restarted mid-run (partitions
recomputed) all leave one row per key and none missing. Storages whose copies would lose their
writes are refused before any task runs."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("megatron_sql", reason="needs megatron_sql: pip install -e packages/megatron-sql")

import dask.dataframe as dd
import sqlalchemy as sa

import megatron
import megatron_dask as md
from megatron import layers
from megatron.errors import StorageError
from megatron.nodes import Input
from megatron_dask.shipping import SerialWritesWarning, checked
from megatron_sql import SQLStorage

N = 400
pytestmark = pytest.mark.filterwarnings("ignore::megatron_dask.shipping.SerialWritesWarning")


def frame(n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({"a": rng.normal(size=n), "c": rng.integers(0, 3, size=n)}, index=np.arange(n) * 3)


def slowly(v: np.ndarray) -> np.ndarray:
    time.sleep(0.15)  # a partition takes a while, so that a restart comes in the middle of a run
    return v + 1


def stored_pipeline(storage, slow: bool = False) -> megatron.Pipeline:
    a, c = Input("a"), Input("c")
    scaled = layers.Whiten()(a, "scaled")
    if slow:
        scaled = layers.Lambda(slowly)(scaled, "shifted")
    pipeline = megatron.Pipeline(
        [a, c], [scaled, layers.OneHotRange()(c, "code")], name="stored", storage=storage
    )
    return pipeline.fit(frame())


def assert_stored_as_locally(pipeline: megatron.Pipeline, df: pd.DataFrame) -> None:
    unique = df[~df.index.duplicated()]
    local = megatron.Pipeline(pipeline.inputs, pipeline.outputs, name="local").transform(unique)
    keys = sorted(pipeline.storage.keys())
    assert keys == sorted(unique.index.tolist())  # one row per key, none missing
    found, rows = pipeline.storage.lookup(unique.index.tolist(), fingerprint=pipeline.fingerprint)
    assert len(found) == len(unique)  # every row under the client's fingerprint: cache hits here
    for name in local:
        np.testing.assert_array_equal(rows[name], local[name])


def test_workers_store_rows_that_the_client_reads_as_cache_hits(client, database_url):
    pipeline = stored_pipeline(database_url)
    df = frame()
    ddf = dd.from_pandas(df, npartitions=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert md.write(pipeline, ddf) == N  # eight tasks race to make the table on two workers
    serial = [w for w in caught if issubclass(w.category, SerialWritesWarning)]
    assert len(serial) == (1 if database_url.startswith("sqlite") else 0)
    assert_stored_as_locally(pipeline, df)
    cached = pipeline.transform(df, cache=True)
    for name, array in pipeline.transform(df).items():
        np.testing.assert_array_equal(cached[name], array)


def test_a_lazy_transform_stores_when_computed_and_keys_in_several_partitions_keep_one_row(
    client, database_url
):
    pipeline = stored_pipeline(database_url)
    df = frame()
    overlapping = pd.concat([df, df.iloc[::2], df.iloc[::3]])  # keys repeated across partitions
    ddf = dd.from_pandas(overlapping, npartitions=6, sort=False)
    out = md.transform(pipeline, ddf)
    assert len(pipeline.storage.keys()) == 0  # lazy: nothing stored yet
    computed = out.compute()
    assert len(computed) == len(overlapping)
    assert_stored_as_locally(pipeline, overlapping)
    out.compute()  # again: the same rows, upserted
    assert_stored_as_locally(pipeline, overlapping)


def test_cache_on_the_workers_reads_what_is_stored(client, database_url):
    pipeline = stored_pipeline(database_url)
    df = frame()
    pipeline.transform(df.iloc[: N // 2])  # half stored here
    got = md.transform(pipeline, dd.from_pandas(df, npartitions=4), cache=True).compute()
    local = megatron.Pipeline(pipeline.inputs, pipeline.outputs, name="local").transform(df).to_frame()
    pd.testing.assert_frame_equal(got, local, check_exact=True)
    assert_stored_as_locally(pipeline, df)


def test_a_cluster_restarted_mid_run_loses_and_repeats_no_row(client, tmp_path, postgresql_url):
    pipelines = [
        stored_pipeline(url, slow=True) for url in (f"sqlite:///{tmp_path / 'r.db'}", postgresql_url)
    ]
    df = frame()
    ddf = dd.from_pandas(df, npartitions=12)
    futures = client.compute([md.transform(p, ddf).map_partitions(len) for p in pipelines])
    deadline = time.monotonic() + 60
    while not sum(len(p.storage.keys()) for p in pipelines) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 0 < sum(len(p.storage.keys()) for p in pipelines) < 2 * N  # mid-run: some partitions stored
    client.restart()  # every worker process killed and started again; the run is lost
    assert all(future.cancelled() for future in futures)
    for pipeline in pipelines:
        assert md.write(pipeline, ddf) == N  # run again: each partition computed and stored anew
        assert_stored_as_locally(pipeline, df)


def test_a_storage_whose_copies_lose_writes_is_refused_before_any_task(tmp_path):
    ddf = dd.from_pandas(frame(), npartitions=2)
    memory = stored_pipeline("memory://")
    for run in (md.transform, md.write):
        with pytest.raises(StorageError, match=r"does not share writes across processes"):
            run(memory, ddf)
    with pytest.raises(StorageError, match="does not share writes"):
        memory.transform(ddf)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    on_engine = stored_pipeline(SQLStorage(engine, "stored"))
    assert not on_engine.storage.shared
    with pytest.raises(StorageError, match="does not share writes"):
        md.write(on_engine, ddf)
    assert stored_pipeline(f"sqlite:///{tmp_path / 'file.db'}").storage.shared
    assert not stored_pipeline("sqlite://").storage.shared  # in memory: this process only
    without = stored_pipeline(None)
    with pytest.raises(StorageError, match="has no storage"):
        md.write(without, ddf)
    with pytest.raises(StorageError, match="cache=True needs a storage"):
        md.transform(without, ddf, cache=True)


def test_a_worker_s_copy_that_computes_something_else_refuses_to_store(tmp_path):
    pipeline = stored_pipeline(f"sqlite:///{tmp_path / 'file.db'}")
    assert checked(pipeline, pipeline.fingerprint) is pipeline
    with pytest.raises(StorageError, match="on a dask worker has fingerprint"):
        checked(pipeline, "0" * 64)
