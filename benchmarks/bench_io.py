"""Data-in benchmarks: streaming a large CSV through fit_generator, and reading .npy batches."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from harness import Result, compared, interleaved

COLUMNS = 10
BATCH = 100_000

STREAM = f"""
import json, sys, time
import numpy as np
import pandas as pd
path, mode = sys.argv[1], sys.argv[2]
if mode == "megatron":
    import megatron
    from megatron import layers
    from megatron.nodes import Input
    columns = [f"c{{i}}" for i in range({COLUMNS})]
    features = Input("features", (len(columns),), columns=columns)
    scaled = layers.Whiten()(features, "scaled")
    pipeline = megatron.Pipeline(features, scaled, name="stream")
start, cpu = time.perf_counter(), time.process_time()
rows = 0
if mode == "pandas":
    for chunk in pd.read_csv(path, chunksize={BATCH}):
        rows += len(chunk)
else:
    source = megatron.io.CSVGenerator(path, batch_size={BATCH}, groups={{"features": columns}})
    pipeline.fit_generator(source, progress=False)
    rows = int(pipeline.layers[-1].metadata["n"])
# VmHWM is this process's own peak (ru_maxrss would carry the parent's over fork and exec)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({{"seconds": seconds, "cpu": cpu, "rows": rows, "rss_mb": peak_kb / 1024}}))
"""


def write_csv(path: Path, size_bytes: int) -> int:
    """A numeric CSV of about ``size_bytes``: one block of random rows, repeated."""
    rng = np.random.default_rng(0)
    block_rows = 20_000
    block = (
        "\n".join(",".join(f"{v:.6f}" for v in row) for row in rng.normal(size=(block_rows, COLUMNS))) + "\n"
    )
    data = block.encode()
    header = (",".join(f"c{i}" for i in range(COLUMNS)) + "\n").encode()
    repeats = max(1, size_bytes // len(data))
    with path.open("wb") as f:
        f.write(header)
        for _ in range(repeats):
            f.write(data)
    return repeats * block_rows


def _stream(path: Path, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", STREAM, str(path), mode], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def csv_benchmarks(quick: bool) -> list[Result]:
    small, large = (20_000_000, 40_000_000) if quick else (2_000_000_000, 4_000_000_000)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "small.csv"
        rows = write_csv(path, small)
        ours, pandas = [], []
        for _ in range(1 if quick else 5):  # interleaved
            ours.append(_stream(path, "megatron"))
            pandas.append(_stream(path, "pandas"))
        assert ours[0]["rows"] == rows == pandas[0]["rows"]
        ours_s = float(np.median([r["seconds"] for r in ours]))
        pandas_s = float(np.median([r["seconds"] for r in pandas]))
        ours_cpu = float(np.median([r["cpu"] for r in ours]))
        pandas_cpu = float(np.median([r["cpu"] for r in pandas]))
        small_rss = ours[0]["rss_mb"]
        path.unlink()
        big = Path(folder) / "large.csv"
        write_csv(big, large)
        large_rss = _stream(big, "megatron")["rss_mb"]
    size = f"{small / 1e9:.2g} GB CSV, {rows:,} rows x {COLUMNS}, batches of {BATCH:,}"
    return [
        Result(
            name="fit_generator over a CSV (time per row; goal: throughput >= 0.9x)",
            ours=ours_s / rows * 1e9,
            baseline=pandas_s / rows * 1e9,
            ours_cpu=ours_cpu / rows * 1e9,
            baseline_cpu=pandas_cpu / rows * 1e9,
            baseline_name="pandas read_csv in chunks alone",
            goal=1 / 0.9,
            unit="ns per row",
            size=size,
        ),
        Result(
            name="fit_generator peak RSS, CSV twice as large",
            ours=large_rss,
            baseline=small_rss,
            baseline_name=f"the same on the {small / 1e9:.2g} GB CSV",
            goal=1.1,
            unit="MB",
            size=f"{large / 1e9:.2g} GB vs {small / 1e9:.2g} GB",
        ),
    ]


def npy_benchmark(quick: bool) -> Result:
    """Reading a memory-mapped .npy in batches (and touching every value) against reading the
    file's bytes sequentially and summing them."""
    import megatron

    rows = 200_000 if quick else 4_000_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.npy"
        np.save(path, np.random.default_rng(0).random((rows, 64), dtype=np.float32))
        source = megatron.io.ArrayGenerator({"x": path}, batch_size=50_000)
        buffer = bytearray(50_000 * 64 * 4)

        def ours() -> float:
            return sum(float(batch["x"].sum()) for batch in source)

        def raw() -> float:
            total = 0.0
            with path.open("rb", buffering=0) as f:
                f.seek(128)  # the .npy header
                view = memoryview(buffer)
                while n := f.readinto(view):
                    total += float(np.frombuffer(view[:n], dtype=np.float32).sum())
            return total

        assert np.isclose(ours(), raw(), rtol=1e-4)
        times = interleaved({"ours": ours, "raw": raw}, calls=1, repeats=3 if quick else 7)
    mb = rows * 64 * 4 / 1e6
    return Result(
        name=".npy batches via ArrayGenerator (time; goal: speed >= 0.5x)",
        **compared(times, "ours", "raw", 1e3 / mb),
        baseline_name="raw sequential read of the file",
        goal=1 / 0.5,
        unit="ms per MB",
        size=f"{mb:,.0f} MB float32",
    )


BENCHMARKS = [csv_benchmarks, npy_benchmark]
