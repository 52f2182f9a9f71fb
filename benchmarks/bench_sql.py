"""SQL storage benchmarks on SQLite files: bulk writes, array writes and lookups, each against
the fastest generic way to do the same with the raw ``sqlite3`` module or pandas."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import numpy as np

from harness import Result, interleaved


def _fresh(folder: Path, name: str) -> Path:
    path = folder / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def write_benchmarks(quick: bool) -> list[Result]:
    import pandas as pd

    from megatron_sql import SQLStorage

    rows = 20_000 if quick else 1_000_000
    rng = np.random.default_rng(0)
    outputs = {f"c{i}": rng.random(rows) for i in range(10)}
    frame = pd.DataFrame(outputs).rename_axis("key")
    vectors = rng.random((rows // 5, 128), dtype=np.float32)
    with tempfile.TemporaryDirectory() as folder:
        folder_path = Path(folder)

        def ours_scalars() -> None:
            storage = SQLStorage(f"sqlite:///{_fresh(folder_path, 'ours.db')}", "bench", None)
            storage.write(np.arange(rows), outputs)
            storage.close()

        def pandas_scalars() -> None:
            connection = sqlite3.connect(_fresh(folder_path, "pandas.db"))
            frame.to_sql("bench", connection, method="multi", chunksize=2000)
            connection.commit()
            connection.close()

        def ours_arrays() -> None:
            storage = SQLStorage(f"sqlite:///{_fresh(folder_path, 'ours_arrays.db')}", "bench", None)
            storage.write(np.arange(len(vectors)), {"v": vectors})
            storage.close()

        def raw_arrays() -> None:
            connection = sqlite3.connect(_fresh(folder_path, "raw_arrays.db"))
            connection.execute("CREATE TABLE bench (key INTEGER PRIMARY KEY, v BLOB)")
            connection.executemany(
                "INSERT INTO bench VALUES (?, ?)", zip(range(len(vectors)), map(bytes, vectors))
            )
            connection.commit()
            connection.close()

        repeats = 3 if quick else 9  # seconds-long runs on a shared disk: more rounds for a stable median
        scalars = interleaved({"ours": ours_scalars, "pandas": pandas_scalars}, calls=1, repeats=repeats)
        arrays = interleaved({"ours": ours_arrays, "raw": raw_arrays}, calls=1, repeats=repeats)
    return [
        Result(
            name="storage write, 10 float outputs (time; goal: rows/s >= 1.0x)",
            ours=scalars["ours"],
            baseline=scalars["pandas"],
            baseline_name="pandas.to_sql on raw sqlite3 (method='multi', chunksize=2000)",
            goal=1.0,
            unit="s",
            size=f"{rows:,} rows x 10 floats",
        ),
        Result(
            name="storage write, float32[128] array output (time; goal: speed >= 0.8x)",
            ours=arrays["ours"],
            baseline=arrays["raw"],
            baseline_name="raw sqlite3 BLOB executemany",
            goal=1 / 0.8,
            unit="s",
            size=f"{len(vectors):,} rows x 128 float32",
        ),
    ]


def lookup_benchmarks(quick: bool) -> list[Result]:
    from megatron_sql import SQLStorage

    rows = 50_000 if quick else 1_000_000
    rng = np.random.default_rng(1)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'lookup.db'}"
        writer = SQLStorage(url, "lookup", None)
        writer.write(np.arange(rows), {f"c{i}": rng.random(rows) for i in range(10)})
        storage = SQLStorage(url, "lookup", None)
        table = storage.table_name.replace('"', '""')
        connection = sqlite3.connect(Path(folder) / "lookup.db")
        for count, goal in ((1, 2.0), (100, 1.5), (10_000, 1.5)):
            keys = rng.choice(rows, size=count, replace=False).tolist()
            query = f'SELECT * FROM "{table}" WHERE key IN ({", ".join("?" * count)})'

            def ours(keys: list[int] = keys) -> object:
                return storage.read(rows=keys)

            def raw(keys: list[int] = keys, query: str = query) -> object:
                return connection.execute(query, keys).fetchall()

            calls = max(1, (200 if quick else 2000) // count)
            times = interleaved({"ours": ours, "raw": raw}, calls=calls, repeats=5 if quick else 11)
            results.append(
                Result(
                    name=f"storage lookup of {count:,} rows",
                    ours=times["ours"] * 1e6,
                    baseline=times["raw"] * 1e6,
                    baseline_name="raw sqlite3 SELECT ... IN on the same table",
                    goal=goal,
                    unit="µs per lookup",
                    size=f"table of {rows:,} rows x 10 floats",
                )
            )
        connection.close()
        storage.close()
        writer.close()
    return results


BENCHMARKS = [write_benchmarks, lookup_benchmarks]
