"""megatron-dask against a local run, in the same run, on a LocalCluster of two worker
processes of one thread each (127.0.0.1): a heavy transform's CPU (all processes of the
cluster, data already in the workers' memory) against the local transform's; a light
transform's wall clock; a staged fit's CPU against fit_generator's over the same partitions;
and PostgreSQL writes from two workers against one (needs
``MEGATRON_BENCH_POSTGRES_URL`` or ``MEGATRON_TEST_POSTGRES_URL``; skipped without)."""

from __future__ import annotations

import os
import statistics
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import megatron
from megatron import layers
from megatron.nodes import Input

from harness import Result

WEIGHTS = np.random.default_rng(1).normal(size=(8, 128)) / 4


def heavy_features(x: np.ndarray) -> np.ndarray:
    """A few microseconds of numpy per row: a projection, a non-linearity, a pooling. The
    projection is an einsum, in one thread: a matrix product would use several BLAS threads
    here and one on a dask worker (which sets OPENBLAS_NUM_THREADS=1), and CPU time would then
    compare the BLAS threads' spinning, not the work."""
    h = np.tanh(np.einsum("ij,jk->ik", x, WEIGHTS))
    return np.stack([h.mean(axis=1), h.std(axis=1), np.sort(h, axis=1)[:, 64]], axis=1)


def heavy_pipeline() -> megatron.Pipeline:
    x = Input("x", (8,), columns=[f"c{i}" for i in range(8)])
    features = layers.Lambda(heavy_features)(layers.Whiten()(x), "features")  # a score: few columns out
    return megatron.Pipeline(x, features, name="heavy")


def light_pipeline() -> megatron.Pipeline:
    """A few tenths of a microsecond per row: a short chain of scalings and clips, and codes."""
    x = Input("x", (8,), columns=[f"c{i}" for i in range(8)])
    scaled = layers.Clip(-2.0, 2.0)(layers.Whiten()(x))
    ranged = layers.MinMaxScale()(layers.ScalarMultiply(10.0)(layers.Normalize()(scaled)))
    codes = layers.OneHotRange(-2, 2)(layers.Cast("int64")(layers.Slice(0, 1)(scaled)))
    return megatron.Pipeline(
        x, [layers.Flatten()(ranged, "ranged"), layers.Flatten()(codes, "codes")], name="light"
    )


def write_pipeline(storage: str, name: str) -> megatron.Pipeline:
    """Two scalar outputs per row, stored."""
    a, b = Input("c0"), Input("c1")
    outputs = [layers.ScalarMultiply(2.0)(a, "double"), layers.Add()([a, b], "total")]
    return megatron.Pipeline([a, b], outputs, name=name, storage=storage)


def frame_part(seed: int, rows: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, 8)), columns=[f"c{i}" for i in range(8)],
                        index=np.arange(seed * rows, (seed + 1) * rows))  # fmt: skip


@contextmanager
def local_cluster(workers: int = 2) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Port 8787 is already in use", UserWarning)
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
    with cluster, Client(cluster) as client:
        yield client


def cpu_seconds() -> float:
    """CPU seconds of this process (the client and the scheduler) and its children (workers)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measured(function: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``function`` (after one warm-up call)."""
    function()
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, wall = cpu_seconds(), time.perf_counter()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu_seconds() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def transforms(quick: bool, client: Any) -> list[Result]:
    """The heavy transform's CPU efficiency and the light transform's wall clock, dask / local."""
    import dask.dataframe as dd
    import pandas as pd

    import megatron_dask as md

    partitions, rows = (4, 10_000) if quick else (8, 250_000)
    repeats = 2 if quick else 5
    parts = [frame_part(seed, rows) for seed in range(partitions)]
    local = pd.concat(parts)
    size = f"{partitions * rows:,} rows in {partitions} partitions, 2 workers"
    with client.as_current():
        ends = [*range(0, partitions * rows, rows), partitions * rows - 1]
        ddf = dd.from_map(frame_part, range(partitions), rows=rows, divisions=ends).persist()
        from distributed import wait

        wait(ddf)  # the data in the workers' memory, as the local data is in this process's
        heavy, light = heavy_pipeline().fit(parts[0]), light_pipeline().fit(parts[0])
        for pipeline in (heavy, light):
            got = md.transform(pipeline, ddf).compute()
            pd.testing.assert_frame_equal(got, pipeline.transform(local).to_frame(), check_exact=True)

        # CPU: the local baseline transforms the same partitions one after another, so that the
        # ratio is dask's own cost (a whole-frame transform also pays for larger temporaries)
        _, dask_cpu = measured(lambda: md.transform(heavy, ddf).compute(), repeats)
        _, local_cpu = measured(lambda: pd.concat([heavy.transform(p).to_frame() for p in parts]), repeats)
        dask_wall, dask_light_cpu = measured(lambda: md.transform(light, ddf).compute(), repeats)
        local_wall, light_cpu = measured(lambda: light.transform(local).to_frame(), repeats)
    per_row = partitions * rows / 1e6
    return [
        Result(
            name="dask heavy transform, CPU of all processes (goal: efficiency local/dask >= 0.8)",
            ours=dask_cpu,
            baseline=local_cpu,
            baseline_name=f"the same partitions transformed locally, {local_cpu / per_row:.1f} µs CPU per row",
            goal=1 / 0.8,
            unit="CPU s",
            size=size,
        ),
        Result(
            name="dask light transform, wall clock (goal: at most 2x local; stay local)",
            ours=dask_wall,
            baseline=local_wall,
            ours_cpu=dask_light_cpu,
            baseline_cpu=light_cpu,
            baseline_name=f"the local transform of the whole frame, {light_cpu / per_row:.2f} µs CPU per row",
            goal=2.0,
            unit="s",
            size=size,
        ),
    ]


def postgres_writes(quick: bool, clients: dict[str, Any]) -> list[Result]:
    """Rows stored per second into PostgreSQL by two workers against one."""
    url = os.environ.get("MEGATRON_BENCH_POSTGRES_URL") or os.environ.get("MEGATRON_TEST_POSTGRES_URL")
    if not url:
        print("bench_dask: no PostgreSQL URL (MEGATRON_BENCH_POSTGRES_URL): the write benchmark is skipped")
        return []
    import dask.dataframe as dd
    import sqlalchemy as sa

    import megatron_dask as md

    partitions, rows = (4, 2_500) if quick else (8, 50_000)
    repeats = 1 if quick else 5
    ddf = dd.from_map(frame_part, range(partitions), rows=rows)
    engine = sa.create_engine(url)

    def write(client: Any) -> float:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        pipeline = write_pipeline(url, name)
        start = time.perf_counter()
        with client.as_current():
            stored = md.write(pipeline, ddf)
        seconds = time.perf_counter() - start
        assert stored == partitions * rows
        table = pipeline.storage.table_name
        pipeline.storage.close()
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')
        return seconds

    times: dict[str, list[float]] = {"one": [], "two": []}
    for client in clients.values():
        write(client)  # warm up: imports and connections on each worker
    for _ in range(repeats):
        for kind, client in clients.items():
            times[kind].append(write(client))
    engine.dispose()
    one, two = statistics.median(times["one"]), statistics.median(times["two"])
    return [
        Result(
            name="dask PostgreSQL write, 2 workers (time; goal: rows/s >= 1.1x one worker's)",
            ours=two,
            baseline=one,
            baseline_name=f"one worker, {partitions * rows / one:,.0f} rows/s",
            goal=1 / 1.1,
            unit="s",
            size=f"{partitions * rows:,} rows of 2 outputs in {partitions} partitions, server on the same cores",
        )
    ]


def staged_fit_pipeline() -> megatron.Pipeline:
    """Two stages over a heavy upstream: Whiten and OneHotRange merge; then MinMaxScale and
    StandardScaler merge while SGD folds, partition after partition, on the client."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import StandardScaler

    from megatron_sklearn import Sklearn

    x = Input("x", (8,), columns=[f"c{i}" for i in range(8)])
    white = layers.Whiten()(layers.Lambda(heavy_features)(x), "white")
    label = layers.Lambda(lambda v: (v[:, 0] > 0).astype(np.int64))(x, "label")
    codes = layers.Lambda(lambda v: np.clip(v[:, 1] * 2, -4, 4).astype(np.int64))(x, "codes")
    outputs = [
        layers.MinMaxScale()(white, "ranged"),
        Sklearn(StandardScaler())(white, "standard"),
        Sklearn(SGDClassifier(random_state=0))([white, label], "sgd"),
        layers.OneHotRange()(codes, "onehot"),
    ]
    return megatron.Pipeline(x, outputs, name="staged")


def staged_fit(quick: bool, client: Any) -> list[Result]:
    """megatron_dask.fit against fit_generator over the same partitions (in memory here, in
    the workers' memory there), one BLAS thread each: CPU of every process."""
    import dask.dataframe as dd
    from threadpoolctl import threadpool_limits

    import megatron_dask as md

    partitions, rows = (4, 10_000) if quick else (8, 250_000)
    batches = [frame_part(seed, rows) for seed in range(partitions)]
    with client.as_current():
        divisions = [*range(0, partitions * rows, rows), partitions * rows - 1]
        ddf = dd.from_map(frame_part, range(partitions), rows=rows, divisions=divisions).persist()
        from distributed import wait

        wait(ddf)
        ours, local = md.fit(staged_fit_pipeline(), ddf), staged_fit_pipeline().fit_generator(batches)
        for name, expected in local.transform(batches[0]).items():
            np.testing.assert_allclose(ours.transform(batches[0])[name], expected, rtol=1e-12, atol=1e-12)
        dask_wall, dask_cpu = measured(lambda: md.fit(staged_fit_pipeline(), ddf), 2 if quick else 5)
    with threadpool_limits(1):  # as each dask worker runs (OMP_NUM_THREADS=1)
        local_wall, local_cpu = measured(
            lambda: staged_fit_pipeline().fit_generator(batches), 2 if quick else 5
        )
    return [
        Result(
            name="dask staged fit, heavy upstream, CPU of all processes (goal: efficiency local/dask >= 0.8)",
            ours=dask_cpu,
            baseline=local_cpu,
            baseline_name=f"fit_generator over the partitions, {local_wall:.1f} s wall (dask: {dask_wall:.1f} s)",
            goal=1 / 0.8,
            unit="CPU s",
            size=f"{partitions * rows:,} rows in {partitions} partitions, 2 stages (merges and an SGD fold), 2 workers",
        )
    ]


def dask_benchmarks(quick: bool) -> list[Result]:
    """Every benchmark here, on two clusters started once: one worker, and two."""
    with local_cluster(1) as one_worker, local_cluster(2) as two_workers:
        two_workers.wait_for_workers(2)
        return [
            *transforms(quick, two_workers),
            *staged_fit(quick, two_workers),
            *postgres_writes(quick, {"one": one_worker, "two": two_workers}),
        ]


BENCHMARKS = [dask_benchmarks]
