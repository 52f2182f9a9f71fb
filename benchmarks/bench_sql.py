"""SQL storage benchmarks: bulk writes, array writes and lookups on SQLite files, each against
the fastest generic way to do the same with the raw ``sqlite3`` module or pandas (in the same
journal mode as megatron's own files: WAL, ``synchronous = NORMAL``); and bulk writes to
PostgreSQL through COPY against the statement path and against a raw binary COPY into an
unindexed table (PostgreSQL's URL from ``MEGATRON_BENCH_POSTGRES_URL`` or
``MEGATRON_TEST_POSTGRES_URL``; those rows are skipped without one). Writes carry a
fingerprint, as ``transform`` writes them."""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from harness import Result, interleaved

FINGERPRINT = "0123456789abcdef" * 2  # what transform stores with each row (a pipeline's digest)


def _fresh(folder: Path, name: str) -> Path:
    path = folder / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _sqlite(path: Path) -> sqlite3.Connection:
    """A raw connection in the journal mode of megatron's own SQLite files."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


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
            storage.write(np.arange(rows), outputs, fingerprint=FINGERPRINT)
            storage.close()

        def pandas_scalars() -> None:
            connection = _sqlite(_fresh(folder_path, "pandas.db"))
            frame.to_sql("bench", connection, method="multi", chunksize=2000)
            connection.commit()
            connection.close()

        def ours_arrays() -> None:
            storage = SQLStorage(f"sqlite:///{_fresh(folder_path, 'ours_arrays.db')}", "bench", None)
            storage.write(np.arange(len(vectors)), {"v": vectors}, fingerprint=FINGERPRINT)
            storage.close()

        def raw_arrays() -> None:
            connection = _sqlite(_fresh(folder_path, "raw_arrays.db"))
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
            baseline_name="pandas.to_sql on raw sqlite3 (method='multi', chunksize=2000; WAL)",
            goal=1.0,
            unit="s",
            size=f"{rows:,} rows x 10 floats",
        ),
        Result(
            name="storage write, float32[128] array output (time; goal: speed >= 0.8x)",
            ours=arrays["ours"],
            baseline=arrays["raw"],
            baseline_name="raw sqlite3 BLOB executemany (WAL)",
            goal=1 / 0.8,
            unit="s",
            size=f"{len(vectors):,} rows x 128 float32",
        ),
    ]


def postgres_write_benchmarks(quick: bool) -> list[Result]:
    """Writes of new rows to PostgreSQL through COPY (the default above ``copy_threshold``)
    against the statement path (``copy_threshold=None``, the path before COPY) and against a
    raw binary COPY of the same rows (key, fingerprint, outputs) into an unindexed table."""
    url = os.environ.get("MEGATRON_BENCH_POSTGRES_URL") or os.environ.get("MEGATRON_TEST_POSTGRES_URL")
    if not url:
        print("bench_sql: no PostgreSQL URL (MEGATRON_TEST_POSTGRES_URL): the PostgreSQL writes are skipped")
        return []
    rows = 10_000 if quick else 1_000_000
    rng = np.random.default_rng(2)
    scalars = {f"c{i}": rng.random(rows) for i in range(10)}
    vectors = {"v": rng.random((rows // 5, 128), dtype=np.float32)}
    repeats = 3 if quick else 5
    with _Schema(url) as schema:
        times = {
            kind: interleaved(_postgres_writers(schema, outputs), calls=1, repeats=repeats)
            for kind, outputs in (("scalars", scalars), ("arrays", vectors))
        }
    sizes = {"scalars": f"{rows:,} rows x 10 floats", "arrays": f"{rows // 5:,} rows x 128 float32"}
    what = {"scalars": "10 float outputs", "arrays": "float32[128] array output"}
    results = []
    for kind in ("scalars", "arrays"):
        results += [
            Result(
                name=f"PostgreSQL storage write, {what[kind]}, COPY (time; goal: rows/s >= 3x)",
                ours=times[kind]["copy"],
                baseline=times[kind]["statements"],
                baseline_name="the statement path (multi-row INSERT ... ON CONFLICT; copy_threshold=None)",
                goal=1 / 3,
                unit="s",
                size=sizes[kind],
            ),
            Result(
                name=f"PostgreSQL storage write, {what[kind]}, against raw COPY (time; goal: speed >= 0.8x)",
                ours=times[kind]["copy"],
                baseline=times[kind]["raw"],
                baseline_name="raw psycopg binary COPY (write_row) into an unindexed table",
                goal=1 / 0.8,
                unit="s",
                size=sizes[kind],
            ),
        ]
    return results


class _Schema:
    """A fresh schema on the server for the benchmark's tables (:attr:`url` reaches it), dropped
    at the end."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.engine = sa.create_engine(url)
        self.name = f"megatron_bench_{uuid.uuid4().hex[:8]}"
        path = sa.make_url(url).update_query_dict({"options": f"-csearch_path={self.name}"})
        self.url = path.render_as_string(hide_password=False)

    def __enter__(self) -> _Schema:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{self.name}"')
        return self

    def drop(self, table: str) -> None:
        """Drop a table the timed call made, so that the disk does not fill (a few ms: timed)."""
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE "{self.name}"."{table}"')

    def __exit__(self, *exc: object) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{self.name}" CASCADE')
        self.engine.dispose()


def _postgres_writers(schema: _Schema, outputs: dict[str, np.ndarray]) -> dict[str, Callable[[], None]]:
    """Each way of writing ``outputs`` as new rows of a new table (made in the timed call)."""
    import psycopg
    import sqlalchemy as sa

    from megatron_sql import SQLStorage

    url = schema.url
    keys = np.arange(len(next(iter(outputs.values()))))
    names: Iterator[int] = itertools.count()
    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    def ours(threshold: int | None) -> Callable[[], None]:
        def write() -> None:
            with SQLStorage(url, f"bench {uuid.uuid4().hex}", None, copy_threshold=threshold) as storage:
                storage.write(keys, outputs, fingerprint=FINGERPRINT)
                table = storage.table_name
            schema.drop(table)

        return write

    def raw() -> None:
        table = f"raw_{next(names)}"
        arrays = list(outputs.values())
        columns = ", ".join(f"out_{i} {'bytea' if a.ndim > 1 else 'float8'}" for i, a in enumerate(arrays))
        with psycopg.connect(conninfo) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {table} (key int8, fingerprint int8, {columns})")
            with cursor.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int8", *("bytea" if a.ndim > 1 else "float8" for a in arrays)])
                for start in range(0, len(keys), 10_000):
                    stop = start + 10_000
                    cells = [_cells(a[start:stop]) for a in arrays]
                    for row in zip(keys[start:stop].tolist(), itertools.repeat(1 << 59), *cells):
                        copy.write_row(row)
        schema.drop(table)

    return {"copy": ours(1), "statements": ours(None), "raw": raw}


def _cells(array: np.ndarray) -> list[object]:
    if array.ndim == 1:
        return array.tolist()
    raw = array.tobytes()
    width = len(raw) // len(array)
    return [raw[i : i + width] for i in range(0, len(raw), width)]


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


BENCHMARKS = [write_benchmarks, postgres_write_benchmarks, lookup_benchmarks]
