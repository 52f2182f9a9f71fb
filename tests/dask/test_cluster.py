"""On a cluster of worker processes: the cluster listens on 127.0.0.1 only, a transform equals
the local one, a layer's failure on a worker reaches the client as the LayerError naming its
node and layer; without the plugin a dask collection is refused, never read into memory."""

from __future__ import annotations

import os

import dask.dataframe as dd
import numpy as np
import pandas as pd
import psutil
import pytest

import megatron
import megatron_dask as md
from megatron import layers
from megatron.errors import ConfigError, LayerError, MissingDependencyError
from megatron.nodes import Input
from megatron.plugins import get_plugin_manager


def picky(v: np.ndarray) -> np.ndarray:
    if (v < 0).any():
        raise ValueError("negative values")
    return v * 2


def picky_pipeline() -> megatron.Pipeline:
    x = Input("a")
    return megatron.Pipeline(x, layers.Lambda(picky)(x, "checked"), name="picky")


def test_the_cluster_listens_on_127_0_0_1_only(client):
    worker_pids = client.run(os.getpid).values()
    processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
    processes += [psutil.Process(pid) for pid in worker_pids]
    listening = [
        (process.pid, connection.laddr)
        for process in {p.pid: p for p in processes}.values()
        for connection in process.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    ]
    assert len(listening) >= 3  # the scheduler and each worker
    assert all(address.ip == "127.0.0.1" for _, address in listening), listening


def test_a_transform_on_worker_processes_equals_the_local_one(client):
    df = pd.DataFrame(
        {"a": np.linspace(0, 5, 101)}, index=pd.Index([f"k{i}" for i in range(101)], name="key")
    )
    pipeline = picky_pipeline()
    ddf = dd.from_pandas(df, npartitions=4)  # sorted by its index
    got = pipeline.transform(ddf).compute()
    expected = pipeline.transform(ddf.compute()).to_frame()
    expected.index.name = "key"
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_a_layer_error_on_a_worker_reaches_the_client_with_node_and_layer(client):
    df = pd.DataFrame({"a": np.linspace(-1, 5, 60)})
    out = md.transform(picky_pipeline(), dd.from_pandas(df, npartitions=3))
    with pytest.raises(
        LayerError, match=r"layer 'lambda' \(Lambda\) at node 'checked' failed in transform\(\)"
    ):
        out.compute()


def test_without_the_plugin_a_dask_dataframe_is_refused_unread(megatron_plugins):
    manager = get_plugin_manager()
    manager.load()
    manager.unregister("dask")  # as where megatron-dask is not installed
    reads = []

    def counted(part: pd.DataFrame) -> pd.DataFrame:
        reads.append(len(part))
        return part

    df = pd.DataFrame({"a": np.arange(10.0)})
    ddf = dd.from_pandas(df, npartitions=2).map_partitions(counted, meta=df.iloc[:0])
    pipeline = picky_pipeline()
    for operation in (pipeline.transform, pipeline.fit):
        with pytest.raises(MissingDependencyError, match="megatron-dask"):
            operation(ddf)
    assert reads == []


def test_a_function_the_workers_cannot_import_fails_its_tasks_with_a_message(client, tmp_path, monkeypatch):
    """A function of a module the client imports and the workers do not have: the tasks raise
    a ConfigError saying so on the client (dask's workers would otherwise fail to read the
    task and the computation wait for ever)."""
    (tmp_path / "client_only_helpers.py").write_text("def triple(v):\n    return v * 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # here only: the workers started before
    from client_only_helpers import triple

    x = Input("a")
    pipeline = megatron.Pipeline(x, layers.Lambda(triple)(x, "tripled"), name="helpers")
    ddf = dd.from_pandas(pd.DataFrame({"a": np.arange(20.0)}), npartitions=2)
    with pytest.raises(ConfigError, match=r"cannot be rebuilt on a dask worker: .*client_only_helpers"):
        md.transform(pipeline, ddf).compute()
