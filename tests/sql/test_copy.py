"""Bulk writes to PostgreSQL through COPY store exactly what the statement path stores, with the
same transaction and conflict semantics: the storage conformance suite through COPY, generated
writes compared path against path, values that text formats must escape, a caller's
transaction, a failed write, and a writer that stores a key while a COPY runs."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megatron.errors import StorageError
from megatron.testing import StorageCase, storage_checks
from megatron.testing import strategies as gen
from megatron_sql import SQLStorage, copying

PATHS = {"copy": 1, "statements": None}  # copy_threshold: every write through COPY, or none

AWKWARD = {
    "float": np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308]),
    "float32": np.array([np.nan, -np.inf, -0.0, 3.4e38, 1e-45, 1.0], dtype=np.float32),
    "int": np.array([-(2**63), 2**63 - 1, 0, -1, 1, 2**53 + 1], dtype=np.int64),
    "uint": np.array([2**64 - 1, 2**63, 0, 1, 2**63 - 1, 7], dtype=np.uint64),
    "bool": np.array([True, False, True, True, False, False]),
    "text": np.array(["tab\there", "new\nline\r\n", "back\\slash\\N", "\\.", "日本語 🙂", ""]),
    "bytes": np.array([b"a\x00b", b"\\x00", b"\t\n", b"\xff\xfe", b"", b"\\."]),
    "text_cells": np.array(
        [["a\x00b", "a\tb"], ["\\", "\n"], ["é", ""], ["\\.", "x"], ["🙂", "\r"], ["", ""]]
    ),
    "vector": np.array([[np.nan, -0.0], [np.inf, -np.inf], [1, 2], [0, 0], [3, 4], [5, 6]], dtype=np.float32),
    "when": np.array(
        ["2024-02-29T12:00", "NaT", "1970-01-01", "2262-04-11", "1677-09-22", "2000-01-01"], "M8[s]"
    ),
    "complex": np.array([1 + 2j, np.nan, -0.0j, np.inf, 0, 1j]),
}
AWKWARD_KEYS = ["tab\tkey", "new\nkey", "back\\key", "\\N", "日本", "'; --"]


def _opened(url: str, name: str, path: str) -> SQLStorage:
    return SQLStorage(url, name, None, copy_threshold=PATHS[path])


@pytest.mark.parametrize("check", storage_checks(), ids=lambda c: c.__name__)
def test_sql_storage_conformance_through_copy(check, postgres_url):
    check(
        StorageCase(
            lambda name, version: SQLStorage(postgres_url, name, version, copy_threshold=1),
            name="sql through COPY",
            reopen=lambda storage: SQLStorage(postgres_url, storage.name, storage.version),
            examples=15,
        )
    )


FIXED_WIDTH = [name for name in AWKWARD if name not in ("text", "bytes")]


@pytest.mark.parametrize(
    ("keys", "names"),
    [
        ([10, 11, 12, 13, 14, 15], FIXED_WIDTH),
        ([10, 11, 12, 13, 14, 15], list(AWKWARD)),
        (AWKWARD_KEYS, list(AWKWARD)),
    ],
    ids=["int keys, fixed width (laid out by numpy)", "int keys, text (row by row)", "str keys"],
)
def test_values_that_text_formats_escape_read_back_exactly_on_both_paths(postgres_url, keys, names):
    outputs = {name: AWKWARD[name] for name in names}
    back = {}
    for path in PATHS:
        with _opened(postgres_url, f"awkward {path}", path) as storage:
            storage.write(keys[::-1], {n: a[::-1] for n, a in outputs.items()}, fingerprint="a" * 32)
            storage.write(keys[:3], {n: a[:3] for n, a in outputs.items()})  # straight, then upserted
        with _opened(postgres_url, f"awkward {path}", path) as storage:
            back[path] = storage.read(rows=keys)
            assert storage.lookup(keys, fingerprint="a" * 32)[0].tolist() == [3, 4, 5], path
    for name, array in outputs.items():
        for path, stored in back.items():
            np.testing.assert_array_equal(stored[name], array, err_msg=f"{path}: {name}")
            if array.dtype.kind == "f":  # -0.0 keeps its sign
                assert np.signbit(stored[name]).tolist() == np.signbit(array).tolist(), f"{path}: {name}"
        assert back["copy"][name].dtype == back["statements"][name].dtype, name


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), schema=gen.output_schemas(max_outputs=3), pool=gen.key_sets(min_size=1, max_size=8))
def test_generated_writes_through_copy_store_what_statements_store(postgres_url, data, schema, pool):
    """Batches of generated outputs under overlapping keys, each with a fingerprint or none,
    written through COPY and through statements: the same rows, values and fingerprints."""
    run = next(_runs)
    batches = []
    for _ in range(data.draw(st.integers(1, 3), label="batches")):
        keys = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool), unique=True))
        values = data.draw(gen.output_values(schema, len(keys)))
        batches.append((keys, values, data.draw(st.sampled_from([None, "a" * 32, "b" * 32]))))
    read = {}
    for path in PATHS:
        with _opened(postgres_url, f"generated {run} {path}", path) as storage:
            for keys, values, fingerprint in batches:
                storage.write(keys, values, fingerprint=fingerprint)
        with _opened(postgres_url, f"generated {run} {path}", path) as storage:
            stored = sorted(storage.keys(), key=repr)
            outputs = storage.read(rows=stored)
            found = {f: storage.lookup(stored, fingerprint=f)[0].tolist() for f in ("a" * 32, "b" * 32)}
        read[path] = stored, outputs, found
    (keys, copied, copied_found), (other_keys, stated, stated_found) = read["copy"], read["statements"]
    assert keys == other_keys and copied_found == stated_found
    for name in stated:
        assert copied[name].dtype == stated[name].dtype, name
        np.testing.assert_array_equal(copied[name], stated[name], err_msg=name)


_runs = iter(range(10**9))


@pytest.mark.parametrize("stored", [False, True], ids=["straight", "through a temporary table"])
def test_a_copy_joins_the_callers_transaction_and_a_failed_one_changes_nothing(postgres_url, stored):
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        storage = SQLStorage(conn, "joined", None, copy_threshold=1)
        storage.write([1000], {"x": np.array([1.0])})
        conn.commit()
        conn.exec_driver_sql(f'ALTER TABLE "{storage.table_name}" ADD CHECK (out_0 < 100)')
        conn.commit()
        conn.begin()
        keys = [999, 1000, 1001] if stored else [0, 1, 2]
        storage.write(keys, {"x": np.array([5.0, 6.0, 7.0])})  # joins the caller's transaction
        failing = [1000, 5000, 5001] if stored else [5000, 5001, 5002]
        with pytest.raises(StorageError, match="check constraint"):
            storage.write(failing, {"x": np.array([1.0, 2.0, 500.0])})
        assert conn.in_transaction()
        assert sorted(storage.keys()) == sorted({1000, *keys})  # the caller's transaction goes on
        conn.rollback()
        assert storage.keys() == [1000] and storage.read()["x"].tolist() == [1.0]
        storage.close()
    engine.dispose()


def test_a_key_stored_by_another_writer_during_a_straight_copy_is_upserted(postgres_url, monkeypatch):
    """No stored key lies in the write's range, so its rows go straight into the table; another
    session stores key 5 meanwhile and commits while the COPY waits on it: the COPY fails on the
    primary key, and the write, rolled back to its savepoint, upserts its rows instead."""
    storage = SQLStorage(postgres_url, "race", None, copy_threshold=1)
    storage.write([100], {"x": np.array([100.0])})
    engine = sa.create_engine(postgres_url)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            storage.write(np.arange(10), {"x": np.arange(10.0)})
        except BaseException as exc:  # reported to the test's thread
            errors.append(exc)

    straight = _record_straight_copies(monkeypatch)
    with engine.connect() as other:
        other.exec_driver_sql(f'INSERT INTO "{storage.table_name}" (key, out_0) VALUES (5, -5)')
        writer = threading.Thread(target=write)
        writer.start()
        _waiting_for_a_lock(engine)
        other.commit()
    writer.join(30)
    engine.dispose()
    assert errors == [] and straight == [False]
    assert storage.read()["x"].tolist() == [*np.arange(10.0), 100.0]


@pytest.mark.parametrize(
    ("stored", "straight"),
    [([5000], [True]), ([500], []), (["k0500"], [False]), (["k2000"], [True]), (["k0015"], [])],
    ids=["int, none in range", "int, one in range", "str, missed", "str, none", "str, sampled"],
)
def test_a_write_goes_straight_only_where_no_stored_row_seems_to_share_a_key(
    postgres_url, monkeypatch, stored, straight
):
    """Straight into the table where the probe finds no stored key (int keys: in the write's
    range; str keys: among a sample of the write's keys), else through the temporary table; a
    stored key that the sample misses fails the straight COPY, which then takes the other way."""
    attempts = _record_straight_copies(monkeypatch)
    keys = list(range(1000)) if isinstance(stored[0], int) else [f"k{i:04}" for i in range(1000)]
    with SQLStorage(postgres_url, "probe", None, copy_threshold=1) as storage:
        storage.write(stored, {"x": np.array([-1.0])})
        attempts.clear()
        storage.write(keys, {"x": np.arange(1000.0)})
        assert attempts == straight
        back = storage.read(rows=[*keys, *(k for k in stored if k not in keys)])
    assert back["x"].tolist() == [*range(1000), *([-1.0] if stored[0] not in keys else [])]


def _record_straight_copies(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The outcome of each straight COPY from now on."""
    attempts: list[bool] = []
    original = copying.CopyUpsert._copy_straight

    def recorded(self: copying.CopyUpsert, *args: object) -> bool:
        attempts.append(original(self, *args))
        return attempts[-1]

    monkeypatch.setattr(copying.CopyUpsert, "_copy_straight", recorded)
    return attempts


def _waiting_for_a_lock(engine: sa.Engine, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the write never waited for the other session's row")


def test_the_threshold_is_a_number_of_rows_or_none_and_travels_with_a_pickle(tmp_path):
    import pickle

    url = f"sqlite:///{tmp_path / 'out.db'}"
    assert SQLStorage(url, "p", None).copy_threshold == copying.COPY_THRESHOLD
    assert pickle.loads(pickle.dumps(SQLStorage(url, "p", None, copy_threshold=None))).copy_threshold is None
    assert pickle.loads(pickle.dumps(SQLStorage(url, "p", None, copy_threshold=7))).copy_threshold == 7
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(StorageError, match="copy_threshold is a number of rows"):
            SQLStorage(url, "p", None, copy_threshold=bad)
