"""SQL storage on SQLite and PostgreSQL: types, names, concurrency, atomicity, fresh readers."""

import json
import multiprocessing
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import megatron
from megatron import layers
from megatron.errors import MissingKeyError, StorageError
from megatron.nodes import Input
from megatron.testing import StorageCase, storage_checks
from megatron_sql import SQLStorage

OUTPUTS = {
    "int32": np.array([1, -2, 3], dtype=np.int32),
    "int64": np.array([2**40, 0, -(2**40)], dtype=np.int64),
    "float32": np.array([1.5, -0.25, 3.0e30], dtype=np.float32),
    "float64": np.array([np.pi, -np.e, 1e-300]),
    "bool": np.array([True, False, True]),
    "str": np.array(["a", "ünïcødé", "it's; DROP TABLE x"]),
    "matrix": np.arange(36, dtype=np.float32).reshape(3, 3, 4),
    "bytes": np.arange(6, dtype=np.int8).reshape(3, 2),
    "mask": np.array([[True, False], [False, False], [True, True]]),
}


def test_round_trip_of_every_dtype(database_url):
    storage = SQLStorage(database_url, "types", "1")
    storage.write([0, 1, 2], OUTPUTS)
    back = SQLStorage(database_url, "types", "1").read()  # a second instance reads the metadata
    assert list(back) == list(OUTPUTS)
    for name, array in OUTPUTS.items():
        assert back[name].dtype == array.dtype or (
            array.dtype.kind == "U" and back[name].dtype.kind == "U"
        ), name
        assert back[name].shape == array.shape, name
        np.testing.assert_array_equal(back[name], array, err_msg=name)


def test_keys_and_names_with_quotes_semicolons_and_non_ascii(database_url):
    name = "pipe'line\"; DROP TABLE students; -- ñ"
    keys = ["o'brien", 'say "hi"', "a;b", "日本", "-- x"]
    storage = SQLStorage(database_url, name, "v'1;")
    storage.write(keys, {"value": np.arange(5.0), "label": np.array(keys)})
    back = SQLStorage(database_url, name, "v'1;").read(rows=keys[::-1])
    assert back.index.tolist() == keys[::-1]
    assert back["label"].tolist() == keys[::-1]
    np.testing.assert_array_equal(back["value"], np.arange(5.0)[::-1])


def test_names_that_look_like_placeholders_are_still_bound_safely(database_url):
    # the n-row statements repeat the one-row statement's placeholder group; a name holding
    # the same text makes that ambiguous, and SQLAlchemy compiles each size instead
    name = "p VALUES (?, ?, ?) IN (?) %s"
    storage = SQLStorage(database_url, name, None)
    storage.write(np.arange(250), {"x": np.arange(250.0)})
    back = SQLStorage(database_url, name, None).read(rows=[249, 3, 100])
    assert back["x"].tolist() == [249.0, 3.0, 100.0]
    assert storage.read(rows=[7])["x"].tolist() == [7.0]


def test_read_by_string_or_int_keys_in_the_order_asked(database_url):
    storage = SQLStorage(database_url, "order", None)
    storage.write(np.arange(10), {"x": np.arange(10) * 10})
    assert storage.read(rows=["7", 2, "0"])["x"].tolist() == [70, 20, 0]
    assert storage.read(rows=[3], cols=["x"])["x"].tolist() == [30]
    assert 3 in storage and "3" in storage and 11 not in storage
    with pytest.raises(MissingKeyError, match=r"no rows for keys \[11, 12\]"):
        storage.read(rows=[1, 11, 12])
    storage.delete([0, 1])
    assert storage.keys() == list(range(2, 10))


def test_writes_and_lookups_spanning_many_statements(database_url):
    from megatron_sql.statements import LOOKUP_CHUNK

    n = 2 * LOOKUP_CHUNK + 1234  # several full upsert statements, a partial one, three IN lists
    keys = np.random.default_rng(0).permutation(n)
    storage = SQLStorage(database_url, "many", None)
    storage.write(keys, {"x": keys * 0.5, "v": np.stack([keys, -keys], axis=1).astype(np.float32)})
    asked = keys[::-1].tolist()
    back = SQLStorage(database_url, "many", None).read(rows=asked)
    assert back.index.tolist() == asked
    np.testing.assert_array_equal(back["x"], np.asarray(asked) * 0.5)
    np.testing.assert_array_equal(back["v"][:, 1], -np.asarray(asked, dtype=np.float32))
    assert len(storage) == n


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int64", "float16", "float32", "float64", "bool"])
def test_outputs_of_one_small_dtype_read_under_large_keys(database_url, dtype):
    keys = np.arange(100_000, 100_300)  # keys far outside the range of the outputs' dtype
    values = {f"c{i}": (np.arange(300) * (i + 1) % 200).astype(dtype) for i in range(3)}
    storage = SQLStorage(database_url, f"small_{dtype}", None)
    storage.write(keys, values)
    for asked in ([100_250], [100_250, 100_007, 100_100]):
        back = storage.read(rows=asked)
        for name, array in values.items():
            assert back[name].dtype == array.dtype
            np.testing.assert_array_equal(back[name], array[np.asarray(asked) - 100_000], err_msg=name)


def test_upsert_replaces_rows(database_url):
    storage = SQLStorage(database_url, "upsert", None)
    storage.write([1, 2], {"x": np.array([1.0, 2.0])})
    storage.write([2, 3], {"x": np.array([20.0, 30.0])})
    assert storage.read()["x"].tolist() == [1.0, 20.0, 30.0]


def test_different_outputs_need_overwrite(database_url):
    SQLStorage(database_url, "schema", "1").write([0], {"x": np.array([1.0])})
    with pytest.raises(StorageError, match=r"holds outputs 'x' <f8; this write has 'y' <f8.*overwrite=True"):
        SQLStorage(database_url, "schema", "1").write([0], {"y": np.array([1.0])})
    replaced = SQLStorage(database_url, "schema", "1", overwrite=True)
    replaced.write([0], {"y": np.array([2.0])})
    assert list(SQLStorage(database_url, "schema", "1").read()) == ["y"]


def test_object_arrays_are_refused(database_url):
    ragged = np.empty(2, dtype=object)
    ragged[:] = [[1], [1, 2]]
    with pytest.raises(StorageError, match="no object arrays, no pickle"):
        SQLStorage(database_url, "objects", None).write([0, 1], {"tokens": ragged})


def _writer(url: str, keys: list[int], value: int) -> None:
    storage = SQLStorage(url, "concurrent", None)
    for start in range(0, len(keys), 50):
        chunk = keys[start : start + 50]
        storage.write(chunk, {"writer": np.full(len(chunk), value), "copy": np.full(len(chunk), value * 10)})


def test_four_processes_writing_disjoint_and_overlapping_keys(database_url, monkeypatch):
    # spawned children unpickle _writer from this module: they need the repository on sys.path,
    # which ``python -m pytest`` gives and the ``pytest`` command does not
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    ranges = [list(range(0, 400)), list(range(200, 600)), list(range(600, 800)), list(range(100, 700))]
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_writer, args=(database_url, keys, i + 1)) for i, keys in enumerate(ranges)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
        assert p.exitcode == 0
    stored = SQLStorage(database_url, "concurrent", None).read()
    assert stored.index.tolist() == list(range(800))  # no lost rows, one row per key
    np.testing.assert_array_equal(stored["copy"], stored["writer"] * 10)  # each row from a single write
    for key, writer in zip(stored.index.tolist(), stored["writer"].tolist()):
        assert key in ranges[writer - 1]


KILLED_WRITER = """
import os, signal, sys
import numpy as np
from megatron_sql import SQLStorage, statements

storage = SQLStorage(sys.argv[1], "atomic", None)
storage.write([0, 1], {"x": np.array([0.0, 1.0])})
real = statements.BulkUpsert.execute

def die_halfway(self, connection, rows):
    half = len(rows) // 2
    real(self, connection, statements.Rows(rows.keys[:half], rows.fingerprint, [(o, a[:half]) for o, a in rows.outputs]))
    os.kill(os.getpid(), signal.SIGKILL)

statements.BulkUpsert.execute = die_halfway
storage.write(list(range(2, 1002)), {"x": np.arange(2.0, 1002.0)})
"""


def test_a_writer_killed_mid_write_leaves_no_partial_batch(database_url):
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, database_url], capture_output=True)
    assert result.returncode == -9
    assert SQLStorage(database_url, "atomic", None).keys() == [0, 1]


def test_a_fresh_process_reads_a_table_it_never_wrote(database_url):
    SQLStorage(database_url, "fresh", "3").write(
        ["a", "b"], {"m": np.eye(2, dtype=np.float32), "s": np.array(["x", "y"])}
    )
    code = textwrap.dedent("""
        import json, sys
        from megatron_sql import SQLStorage
        out = SQLStorage(sys.argv[1], "fresh", "3").read(rows=["b"])
        print(json.dumps({"m": out["m"].tolist(), "dtype": str(out["m"].dtype), "s": out["s"].tolist()}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", code, database_url], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == {"m": [[0.0, 1.0]], "dtype": "float32", "s": ["y"]}


def test_pipeline_storage_from_url_engine_connection_and_sqlite3(database_url, tmp_path):
    x = Input("x", (2,))
    total = layers.Lambda(lambda v: v.sum(axis=1))(x, "total")
    engine = sa.create_engine(database_url)
    for target in (database_url, engine):
        pipeline = megatron.Pipeline(x, total, name=f"targets_{type(target).__name__}", storage=target)
        pipeline.transform({"x": np.ones((3, 2))})
        assert pipeline.storage.read(rows=["0"])[0].shape == (1,)
    with engine.connect() as conn:
        pipeline = megatron.Pipeline(x, total, name="targets_connection", storage=conn)
        pipeline.transform({"x": np.ones((3, 2))})
        assert pipeline.storage.read(rows=[2])["total"].tolist() == [2.0]
    connection = sqlite3.connect(tmp_path / "seed.db")  # the seed tutorial passes one
    pipeline = megatron.Pipeline(x, total, name="seed", version=0.1, storage=connection)
    pipeline.transform({"x": np.ones((3, 2))})
    assert pipeline.storage.read(rows=["0"])[0].shape == (1,)
    engine.dispose()


def test_sqlite_files_flush_at_checkpoints_unless_durable(tmp_path):
    def synchronous(storage: SQLStorage) -> int:
        with storage.engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA synchronous").scalar()

    url = f"sqlite:///{tmp_path / 'sync.db'}"
    assert synchronous(SQLStorage(url, "normal", None)) == 1  # NORMAL
    assert synchronous(SQLStorage(url, "durable", None, durable=True)) == 2  # FULL


def test_default_storage_is_a_sqlite_file_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEGATRON_STORAGE", raising=False)
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(2)(x, "y"), name="default", storage="default")
    pipeline.transform({"x": np.arange(3.0)})
    assert (tmp_path / "megatron.db").exists()
    assert SQLStorage(f"sqlite:///{tmp_path / 'megatron.db'}", "default", None).read()["y"].tolist() == [
        0,
        2,
        4,
    ]


@pytest.mark.parametrize("check", storage_checks(), ids=lambda c: c.__name__)
def test_sql_storage_conformance(check, database_url):
    check(
        StorageCase(
            lambda name, version: SQLStorage(database_url, name, version),
            name="sql",
            reopen=lambda storage: SQLStorage(database_url, storage.name, storage.version),
        )
    )


def test_portable_upsert_for_dialects_without_one(database_url, monkeypatch):
    from megatron_sql import statements, writing

    monkeypatch.setattr(writing, "upsert", lambda table, *_: statements.DeleteThenInsert(table))
    storage = SQLStorage(database_url, "portable", None, copy_threshold=None)
    storage.write([1, 2], {"x": np.array([1.0, 2.0])}, fingerprint="a" * 32)
    storage.write([2, 3], {"x": np.array([20.0, 30.0])})
    assert storage.read()["x"].tolist() == [1.0, 20.0, 30.0]
    assert storage.lookup([1, 2, 3], fingerprint="a" * 32)[0].tolist() == [0]  # 2 has none now
