"""A caller's connection: megatron never commits or rolls back a transaction it did not open.

Reads see the caller's transaction, writes join it (inside a savepoint), and where no
transaction is open megatron runs and commits its own. Storage opened from a URL pickles as
the URL; storage on a caller's connection or engine refuses to, saying what to pass instead.
"""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import SourceError, StorageError
from megatron.nodes import Input
from megatron_sql import SQLGenerator, SQLStorage, from_sql


def _pipeline(name: str, storage: Any) -> megatron.Pipeline:
    x = Input("x")
    return megatron.Pipeline(x, layers.ScalarMultiply(2)(x, "y"), name=name, storage=storage)


def _make_tables(conn: Any) -> None:
    conn.execute(sa.text("CREATE TABLE people (id INTEGER PRIMARY KEY, age INTEGER)"))
    conn.execute(sa.text("CREATE TABLE ledger (entry TEXT)"))


def test_reads_on_a_sqlite3_connection_see_and_keep_the_callers_transaction(tmp_path):
    conn = sqlite3.connect(tmp_path / "shop.db")
    conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, age INTEGER)")
    conn.execute("CREATE TABLE ledger (entry TEXT)")
    conn.commit()
    conn.execute("INSERT INTO people VALUES (1, 30), (2, 40)")
    conn.execute("INSERT INTO ledger VALUES ('pending')")  # uncommitted work in an unrelated table
    assert conn.in_transaction

    assert megatron.io.SQLData(conn, "SELECT age FROM people ORDER BY id")["age"].tolist() == [30, 40]
    assert megatron.io.SQLData(conn, "people", index_col="id")["age"].tolist() == [30, 40]
    batches = SQLGenerator(conn, "SELECT age FROM people ORDER BY id", batch_size=1)
    assert [b["age"].tolist() for b in batches] == [[30], [40]]
    assert set(from_sql(conn, "people")) == {"id", "age"}
    storage = SQLStorage(conn, "reader", None)
    assert storage.keys() == [] and 1 not in storage

    assert conn.in_transaction
    assert conn.execute("SELECT entry FROM ledger").fetchall() == [("pending",)]
    conn.rollback()  # the caller's to decide: megatron committed nothing
    assert conn.execute("SELECT count(*) FROM people").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (0,)


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "rollback"])
def test_writes_on_a_sqlite3_connection_join_the_callers_transaction(tmp_path, commit):
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE ledger (entry TEXT)")
    conn.commit()
    conn.execute("INSERT INTO ledger VALUES ('pending')")
    pipeline = _pipeline("joined", conn)
    pipeline.transform({"x": np.array([1.0, 2.0, 3.0])})
    assert conn.in_transaction  # still the caller's, still open
    assert pipeline.storage.read()["y"].tolist() == [2.0, 4.0, 6.0]  # visible inside it
    assert conn.execute("SELECT entry FROM ledger").fetchall() == [("pending",)]
    table = pipeline.storage.table_name
    with sqlite3.connect(path) as other:  # nothing committed yet
        assert other.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", (table,)).fetchone() == (0,)

    if commit:
        conn.commit()
        assert SQLStorage(f"sqlite:///{path}", "joined", None).read()["y"].tolist() == [2.0, 4.0, 6.0]
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (1,)
        return
    conn.rollback()  # megatron's rows, and the table it made, go with the caller's
    assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (0,)
    assert pipeline.storage.keys() == []
    pipeline.transform({"x": np.array([5.0])})  # no transaction open now: megatron commits its own
    assert not conn.in_transaction
    assert SQLStorage(f"sqlite:///{path}", "joined", None).read()["y"].tolist() == [10.0]


@pytest.mark.parametrize("begin", ["explicit", "autobegin"])
@pytest.mark.parametrize("commit", [True, False], ids=["commit", "rollback"])
def test_a_sqlalchemy_connection_in_a_transaction_keeps_it(database_url, begin, commit):
    engine = sa.create_engine(database_url)
    with engine.begin() as setup:
        _make_tables(setup)
    with engine.connect() as conn:
        if begin == "explicit":
            conn.begin()
        conn.execute(sa.text("INSERT INTO people VALUES (1, 30), (2, 40)"))
        conn.execute(sa.text("INSERT INTO ledger VALUES ('pending')"))
        assert megatron.io.SQLData(conn, "SELECT age FROM people ORDER BY id")["age"].tolist() == [30, 40]
        pipeline = _pipeline("joined", conn)
        pipeline.transform({"x": np.array([1.0, 2.0])})
        assert pipeline.storage.read()["y"].tolist() == [2.0, 4.0]
        assert conn.in_transaction()
        with engine.connect() as other:  # nothing committed yet
            assert other.execute(sa.text("SELECT count(*) FROM people")).scalar() == 0
            assert not sa.inspect(other).has_table(pipeline.storage.table_name)
        conn.commit() if commit else conn.rollback()
    engine.dispose()
    with SQLStorage(database_url, "joined", None) as stored:
        assert stored.keys() == ([0, 1] if commit else [])
    data = megatron.io.SQLData(database_url, "SELECT age FROM people")
    assert len(data["age"]) == (2 if commit else 0)


@pytest.mark.parametrize("kind", ["sqlite3", "sqlalchemy"])
def test_without_a_caller_transaction_megatron_commits_its_own(tmp_path, kind):
    path = tmp_path / "own.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    conn: Any = sqlite3.connect(path) if kind == "sqlite3" else engine.connect()
    pipeline = _pipeline("own", conn)
    pipeline.transform({"x": np.array([1.0, 2.0])})
    assert not (conn.in_transaction if kind == "sqlite3" else conn.in_transaction())
    assert SQLStorage(f"sqlite:///{path}", "own", None).read()["y"].tolist() == [2.0, 4.0]
    conn.close()
    engine.dispose()


def test_an_engine_whose_pool_shares_the_callers_open_connection_is_refused_not_ended():
    # an in-memory SQLite engine gives every checkout in a thread the one connection: megatron's
    # commit (or its reads' rollback) would end the caller's transaction on it
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE TABLE ledger (entry TEXT)"))
        conn.commit()
        pipeline = _pipeline("shared", engine)
        pipeline.transform({"x": np.array([1.0])})  # no transaction open: megatron's own
        conn.execute(sa.text("INSERT INTO ledger VALUES ('pending')"))
        for call in (
            lambda: pipeline.transform({"x": np.array([2.0])}),
            lambda: pipeline.storage.read(rows=[0]),
            lambda: megatron.io.SQLData(engine, "SELECT entry FROM ledger"),
        ):
            with pytest.raises(StorageError, match="Pass the Connection that holds it instead"):
                call()
        assert conn.in_transaction()
        conn.rollback()
        assert conn.execute(sa.text("SELECT count(*) FROM ledger")).scalar() == 0
        assert pipeline.storage.read()["y"].tolist() == [2.0]
    engine.dispose()


def test_a_failed_operation_inside_the_callers_transaction_leaves_it_usable(database_url):
    # on PostgreSQL a failed statement aborts the whole transaction, unless it ran in a savepoint
    engine = sa.create_engine(database_url)
    with engine.begin() as setup:
        _make_tables(setup)
    with engine.connect() as conn:
        storage = SQLStorage(conn, "failed", None)
        storage.write([0], {"y": np.zeros(1)})  # no transaction open: committed on its own
        conn.execute(sa.text("INSERT INTO ledger VALUES ('first')"))
        with pytest.raises(SourceError, match="The query failed"):
            megatron.io.SQLData(conn, "SELECT nope FROM ledger")
        conn.execute(sa.text(f'DROP TABLE "{storage.table_name}"'))  # the caller drops it meanwhile
        with pytest.raises(
            StorageError, match=r"Could not write 1 rows to table .* none of its rows are stored"
        ):
            storage.write([1], {"y": np.ones(1)})
        conn.execute(sa.text("INSERT INTO ledger VALUES ('second')"))
        conn.commit()
    with engine.connect() as other:
        assert other.execute(sa.text("SELECT count(*) FROM ledger")).scalar() == 2
    engine.dispose()


# -- interleavings --------------------------------------------------------------------------------

_keys = st.lists(st.integers(0, 7), unique=True, min_size=1, max_size=4)
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 99)),
        st.tuples(st.sampled_from(["begin", "commit", "rollback", "read", "query"])),
        st.tuples(st.just("write"), _keys, st.integers(0, 99)),
        st.tuples(st.just("delete"), _keys),
    ),
    max_size=12,
)


class _Model:
    """What the caller's connection must show: the caller's rows and megatron's stored rows,
    committed and as seen inside the caller's open transaction."""

    def __init__(self) -> None:
        self.in_transaction = False
        self.ledger: list[int] = []
        self.stored: dict[int, int] = {}
        self._committed: tuple[list[int], dict[int, int]] = ([], {})

    def change(self) -> None:
        """A change by megatron: joins the open transaction, or commits at once."""
        if not self.in_transaction:
            self._committed = (list(self.ledger), dict(self.stored))

    def end(self, commit: bool) -> None:
        if commit:
            self._committed = (list(self.ledger), dict(self.stored))
        self.ledger, self.stored = list(self._committed[0]), dict(self._committed[1])
        self.in_transaction = False


def _run(conn: Any, steps: list[tuple[Any, ...]], in_transaction: Any, begin: Any) -> _Model:
    """Run ``steps`` on the caller's connection ``conn`` and check it against the model after
    each one; return the model."""
    ledger = f"ledger_{uuid.uuid4().hex[:8]}"
    execute = conn.execute if isinstance(conn, sqlite3.Connection) else lambda q: conn.execute(sa.text(q))
    execute(f"CREATE TABLE {ledger} (v INTEGER)")
    conn.commit()
    storage = SQLStorage(conn, f"model_{uuid.uuid4().hex[:8]}", None)
    model = _Model()
    for step in steps:
        action = step[0]
        if action == "insert":
            execute(f"INSERT INTO {ledger} VALUES ({step[1]})")
            model.ledger.append(step[1])
            model.in_transaction = True
        elif action == "begin" and not model.in_transaction:
            begin(conn)
            model.in_transaction = True
        elif action in ("commit", "rollback"):
            conn.commit() if action == "commit" else conn.rollback()
            model.end(action == "commit")
        elif action == "write":
            storage.write(step[1], {"y": np.full(len(step[1]), step[2])})
            model.stored.update(dict.fromkeys(step[1], step[2]))
            model.change()
        elif action == "delete":
            storage.delete(step[1])
            for key in step[1]:
                model.stored.pop(key, None)
            model.change()
        elif action == "read":
            keys = sorted(model.stored)
            assert storage.keys() == keys
            if keys:
                assert storage.read(rows=keys)["y"].tolist() == [model.stored[k] for k in keys]
        elif action == "query":
            values = megatron.io.SQLData(conn, f"SELECT v FROM {ledger}")["v"].tolist()
            assert sorted(values) == sorted(model.ledger)
        assert in_transaction(conn) == model.in_transaction, step
    conn.rollback()
    model.end(commit=False)
    assert storage.keys() == sorted(model.stored)
    return model


_budget = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@given(steps=_steps)
@_budget
def test_interleaved_caller_and_megatron_work_on_a_sqlite3_connection(tmp_path, steps):
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    conn = sqlite3.connect(path)
    model = _run(conn, steps, lambda c: c.in_transaction, lambda c: c.execute("BEGIN"))
    conn.close()
    with sqlite3.connect(path) as other:  # what was committed, from another connection
        tables = [r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE name LIKE 'ledger_%'")]
        assert sorted(v for (v,) in other.execute(f"SELECT v FROM {tables[0]}")) == sorted(model.ledger)


@given(steps=_steps)
@_budget
def test_interleaved_caller_and_megatron_work_on_a_sqlalchemy_connection(database_url, steps):
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        _run(conn, steps, lambda c: c.in_transaction(), lambda c: c.begin())
    engine.dispose()


# -- pickling ------------------------------------------------------------------------------------


def test_a_pipeline_with_url_storage_pickles_and_reads_in_another_process(database_url):
    pipeline = _pipeline("pickled", database_url)
    pipeline.transform({"x": np.array([1.0, 2.0, 3.0])}, index=["a", "b", "c"])
    code = textwrap.dedent("""
        import pickle, sys
        pipeline = pickle.load(sys.stdin.buffer)
        print(pipeline.storage.read(rows=["c", "a"])["y"].tolist())
        pipeline.transform({"x": [10.0]}, index=["d"])
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(pipeline), capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.decode().strip() == "[6.0, 2.0]"
    assert pipeline.storage.read(rows=["d"])["y"].tolist() == [20.0]  # written by the other process


def test_an_unpickled_storage_connects_on_first_use(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    storage = SQLStorage(f"sqlite:///{folder / 'out.db'}", "lazy", "1", durable=True)
    storage.write([1, 2], {"y": np.array([1.0, 2.0])})
    data = pickle.dumps(storage)
    storage.close()
    folder.rename(tmp_path / "moved")  # the database cannot be opened while unpickling
    copy = pickle.loads(data)
    (tmp_path / "moved").rename(folder)
    assert copy.read(rows=[2])["y"].tolist() == [2.0]
    assert (copy.name, copy.version, copy.table_name) == ("lazy", "1", storage.table_name)
    with copy.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # durable=True travelled too


def test_a_relative_sqlite_path_pickles_as_the_same_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = SQLStorage("sqlite:///relative.db", "relative", None)
    storage.write([1], {"y": np.array([3.0])})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # as a worker started in another directory
    assert pickle.loads(pickle.dumps(storage)).read()["y"].tolist() == [3.0]


def test_in_memory_sqlite_storage_refuses_to_pickle():
    for url in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(StorageError, match="in-memory SQLite database .* lives in this process only"):
            pickle.dumps(_pipeline("memory", url))


def test_storage_on_a_callers_connection_or_engine_refuses_to_pickle(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = sa.create_engine(url)
    connection = engine.connect()
    targets = {"sqlite3 connection": sqlite3.connect(tmp_path / "live.db"), "Engine": engine}
    targets["SQLAlchemy Connection"] = connection
    for what, target in targets.items():
        pipeline = _pipeline("live", target)
        with pytest.raises(StorageError, match=f"runs on the {what} you passed.*Pass a database URL instead"):
            pickle.dumps(pipeline)
    connection.close()
    engine.dispose()
