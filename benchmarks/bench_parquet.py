"""Parquet in: ``fit_generator`` of a Whiten (running mean and variance) over a Parquet file
with ParquetGenerator, against pyarrow's own ``iter_batches`` doing the same aggregation, and
the peak memory of the fit on a file twice as large.

Each run is a fresh process (its own peak RSS, read from /proc/self/status); runs of ours and
of the baseline alternate. The file holds the ten feature columns the pipeline reads and four
text columns it does not: both read only the ten (our source reads a column when the pipeline
first asks for it; the baseline names them to ``iter_batches``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from harness import Result

FEATURES = 10
UNUSED = 4
BATCH = 100_000
ROW_GROUP = 500_000

STREAM = f"""
import json, sys, time
import numpy as np
path, mode = sys.argv[1], sys.argv[2]
import pyarrow.parquet as pq
columns = [f"c{{i}}" for i in range({FEATURES})]
if mode == "megatron":
    import megatron
    from megatron import layers
    from megatron.nodes import Input
start = time.perf_counter()  # the libraries imported: the reading and the statistics only
if mode == "megatron":
    features = Input("features", (len(columns),), columns=columns)
    pipeline = megatron.Pipeline(features, layers.Whiten()(features, "scaled"), name="parquet")
    source = megatron.io.ParquetGenerator(path, batch_size={BATCH}, groups={{"features": columns}})
    pipeline.fit_generator(source, progress=False)
    state = pipeline.layers[-1].metadata
    n, mean, m2 = int(state["n"]), state["mean"], state["m2"]
else:
    n, mean, m2 = 0, np.zeros({FEATURES}), np.zeros({FEATURES})
    for batch in pq.ParquetFile(path).iter_batches(batch_size={BATCH}, columns=columns, use_threads=False):
        x = np.column_stack([batch.column(i).to_numpy() for i in range(batch.num_columns)])
        n_b = len(x)
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        delta, total = mean_b - mean, n + n_b
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (n * n_b / total)
        n = total
seconds = time.perf_counter() - start
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{"seconds": seconds, "rows": n, "mean": float(np.sum(mean)), "m2": float(np.sum(m2)),
                  "rss_mb": peak_kb / 1024}}))
"""


def write_parquet(path: Path, size_bytes: int) -> int:
    """A Parquet file of about ``size_bytes`` of float64 features (random, so incompressible),
    in row groups of ROW_GROUP rows, plus UNUSED short text columns; one row group repeated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    columns = {f"c{i}": rng.normal(size=ROW_GROUP) for i in range(FEATURES)}
    columns.update(
        {f"text{i}": pa.array(np.array(["a", "bb", "ccc"])[np.arange(ROW_GROUP) % 3]) for i in range(UNUSED)}
    )
    group = pa.table(columns)
    repeats = max(1, size_bytes // (ROW_GROUP * FEATURES * 8))
    with pq.ParquetWriter(path, group.schema) as writer:
        for _ in range(repeats):
            writer.write_table(group, row_group_size=ROW_GROUP)
    return repeats * ROW_GROUP


def _stream(path: Path, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", STREAM, str(path), mode], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def _median(runs: list[dict[str, float]], key: str) -> float:
    return float(np.median([run[key] for run in runs]))


def parquet_benchmarks(quick: bool) -> list[Result]:
    small, large = (20_000_000, 40_000_000) if quick else _full_sizes()
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "small.parquet"
        rows = write_parquet(path, small)
        _stream(path, "pyarrow")  # the file into the page cache, for both alike
        ours, baseline = [], []
        for _ in range(repeats):  # interleaved
            ours.append(_stream(path, "megatron"))
            baseline.append(_stream(path, "pyarrow"))
        assert ours[0]["rows"] == rows == baseline[0]["rows"]
        assert np.isclose(ours[0]["m2"], baseline[0]["m2"]) and np.isclose(
            ours[0]["mean"], baseline[0]["mean"]
        )
        path.unlink()
        big = Path(folder) / "large.parquet"
        write_parquet(big, large)
        large_rss = _stream(big, "megatron")["rss_mb"]
    size = (
        f"{small / 1e9:.2g} GB Parquet, {rows:,} rows x {FEATURES} (+{UNUSED} unused), batches of {BATCH:,}"
    )
    return [
        Result(
            name="fit_generator over Parquet (time per row; goal: throughput >= 0.9x)",
            ours=_median(ours, "seconds") / rows * 1e9,
            baseline=_median(baseline, "seconds") / rows * 1e9,
            baseline_name="pyarrow iter_batches + numpy running moments",
            goal=1 / 0.9,
            unit="ns per row",
            size=size,
        ),
        Result(
            name="fit_generator over Parquet, peak RSS, file twice as large",
            ours=large_rss,
            baseline=_median(ours, "rss_mb"),
            baseline_name=f"the same on the {small / 1e9:.2g} GB file",
            goal=1.1,
            unit="MB",
            size=f"{large / 1e9:.2g} GB vs {small / 1e9:.2g} GB",
        ),
    ]


def _full_sizes() -> tuple[int, int]:
    """2 and 4 GB, or half that where the temporary folder has less than 8 GB free."""
    free = os.statvfs(tempfile.gettempdir())
    if free.f_bavail * free.f_frsize > 8_000_000_000:
        return 2_000_000_000, 4_000_000_000
    return 1_000_000_000, 2_000_000_000


BENCHMARKS = [parquet_benchmarks]
