"""Concurrent writers on SQLite and PostgreSQL: real processes upserting overlapping keys in
different orders lose nothing; a deadlock victim is retried, and one that stays a victim is a
StorageError that leaves nothing of its write behind.

The writers are ``python -c`` subprocesses, so that they import only installed packages (a
spawned child cannot import the test modules themselves)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megatron.errors import StorageError
from megatron_sql import SQLStorage, connections

WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from megatron_sql import SQLStorage

url, writer, start, rounds, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
threshold = None if sys.argv[6] == "None" else int(sys.argv[6])  # 1: every write through COPY
storage = SQLStorage(url, "concurrent", None, copy_threshold=threshold)
rng = np.random.default_rng(writer)
keys = np.arange(start, start + 1000)
Path(f"{go}.{writer}").touch()  # ready
deadline = time.monotonic() + 60
while not Path(go).exists() and time.monotonic() < deadline:  # start together
    time.sleep(0.005)
for round in range(rounds):
    order = rng.permutation(keys)  # each writer, each round: the same keys in another order
    n = len(order)
    storage.write(
        order,
        {"writer": np.full(n, writer), "round": np.full(n, round), "check": np.full(n, writer * 100 + round)},
    )
"""


@pytest.mark.parametrize("copy_threshold", [None, 1], ids=["statements", "copy"])
def test_processes_upserting_overlapping_keys_in_different_orders_lose_nothing(
    database_url, tmp_path, copy_threshold
):
    """Four writers, each upserting its 1,000 keys (most of them shared with other writers) in
    a new order three times: on PostgreSQL, rows locked in the order given deadlocked most of
    these writes. Through COPY (PostgreSQL), the first writes race to fill the new table."""
    if copy_threshold is not None and database_url.startswith("sqlite"):
        pytest.skip("COPY is PostgreSQL's")
    starts = [0, 250, 500, 750]
    go = tmp_path / "go"
    command = [sys.executable, "-c", WRITER, database_url]
    writers = [
        subprocess.Popen(
            [*command, str(writer), str(start), "3", str(go), str(copy_threshold)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer, start in enumerate(starts, start=1)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.{w}").exists() for w in range(1, 5)) and time.monotonic() < deadline:
        time.sleep(0.01)  # all imported and connected: they start writing together
    go.touch()
    for process in writers:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr[-2000:]
    stored = SQLStorage(database_url, "concurrent", None).read()
    assert stored.index.tolist() == list(range(1750))  # no key lost, one row per key
    writer = stored["writer"]
    np.testing.assert_array_equal(stored["check"], writer * 100 + stored["round"])  # each row from one write
    starts_of = np.asarray(starts)[writer - 1]
    assert ((stored.index >= starts_of) & (stored.index < starts_of + 1000)).all()


@given(data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_order_of_keys_within_a_write_changes_nothing_stored(database_url, data):
    """Rows are written in key order (one lock order for every writer): whatever order a write
    gives them in, each key gets its own row's values."""
    string_keys = data.draw(st.booleans())
    keys = data.draw(
        st.lists(
            st.text("abc", max_size=4) if string_keys else st.integers(-(2**63), 2**63 - 1),
            unique=True,
            min_size=1,
            max_size=40,
        )
    )
    values = np.arange(len(keys), dtype=np.float64)
    vectors = np.stack([values, -values], axis=1).astype(np.float32)
    labels = np.array([f"row {k!r}" for k in keys])
    version = "str" if string_keys else "int"
    with SQLStorage(database_url, "order", version) as storage:
        storage.write(keys, {"x": values, "v": vectors, "label": labels})
        with SQLStorage(database_url, "order", version) as other:
            back = other.read(rows=keys)
        storage.delete(keys)
    assert back.index.tolist() == keys
    np.testing.assert_array_equal(back["x"], values)
    np.testing.assert_array_equal(back["v"], vectors)
    assert back["label"].tolist() == labels.tolist()


def _waiting_for_a_lock(engine: sa.Engine, timeout: float = 10.0) -> None:
    """Return once some other session waits for a row lock."""
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
    raise AssertionError("the write never waited for the row lock")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("attempts", [connections.WRITE_ATTEMPTS, 1])
@pytest.mark.parametrize("copy_threshold", [None, 1], ids=["statements", "copy"])
def test_a_deadlock_victim_is_retried_and_one_left_a_victim_is_a_storage_error(
    database_url, attempts, copy_threshold, monkeypatch
):
    """Another session locks key 2, megatron's write locks key 1 and waits for key 2, the other
    session then asks for key 1: PostgreSQL aborts megatron's write (it waited longest). The
    write runs again and succeeds; with one attempt allowed it is a StorageError, and nothing
    of it is stored."""
    monkeypatch.setattr(connections, "WRITE_ATTEMPTS", attempts)
    storage = SQLStorage(database_url, "deadlock", None, copy_threshold=copy_threshold)
    storage.write([1, 2], {"x": np.zeros(2)})
    table = storage.table_name
    engine = sa.create_engine(database_url)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            storage.write([1, 2], {"x": np.array([10.0, 20.0])})
        except BaseException as exc:  # reported to the test's thread
            errors.append(exc)

    with engine.connect() as other:
        other.exec_driver_sql(f'SELECT 1 FROM "{table}" WHERE key = 2 FOR UPDATE')
        writer = threading.Thread(target=write)
        writer.start()
        _waiting_for_a_lock(engine)
        time.sleep(0.3)  # megatron's write has waited longer: its deadlock check runs first
        other.exec_driver_sql(f'SELECT 1 FROM "{table}" WHERE key = 1 FOR UPDATE')  # the cycle
        other.commit()
    writer.join(30)
    engine.dispose()
    stored = storage.read(rows=[1, 2])["x"].tolist()
    if attempts == 1:
        assert len(errors) == 1 and isinstance(errors[0], StorageError), errors
        assert "deadlock" in str(errors[0]) and "none of its rows are stored" in str(errors[0])
        assert stored == [0.0, 0.0]
    else:
        assert errors == []
        assert stored == [10.0, 20.0]
