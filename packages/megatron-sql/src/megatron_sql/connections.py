"""Where megatron's statements run, and in whose transaction.

A database opened from a URL is megatron's own: its statements run on connections from its
pool, each write in a transaction of its own that it commits. A caller's Engine is used the
same way, but stays the caller's (never disposed, never pickled).

A caller's connection (a SQLAlchemy ``Connection`` or a ``sqlite3.Connection``) is shared with
the caller, and megatron never commits or rolls back a transaction it did not open:

- while the caller has a transaction open on it, megatron's reads see that transaction (its
  uncommitted rows included) and its writes join it: they are committed or rolled back with
  the caller's work. Each operation runs inside a savepoint, so a failed one is undone alone
  and leaves the caller's transaction as it was (on PostgreSQL a failed statement would
  otherwise abort the whole transaction);
- otherwise each operation runs in a transaction of megatron's own, which it commits.

Writes whose transaction the database picks as the victim of a deadlock or a serialization
conflict are retried a few times after a short random pause; what still fails is a
:class:`~megatron.errors.StorageError`.
"""

from __future__ import annotations

import abc
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from megatron.errors import StorageError
from megatron_sql.engines import create_engine

T = TypeVar("T")

WRITE_ATTEMPTS = 6
"""How many times a write runs when the database keeps choosing it as a deadlock victim."""
BACKOFF_S = 0.01
"""The first pause before a retry; each next one doubles, with jitter (at most ~0.6 s in all)."""
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
MYSQL_DEADLOCK = 1213


class Database(abc.ABC):
    """Connections and transactions on one target; see the module's description."""

    engine: sa.Engine
    url: sa.URL | None = None
    """The URL megatron opened the database from (None for a caller's engine or connection)."""

    @abc.abstractmethod
    def transaction(self, write: bool) -> AbstractContextManager[sa.Connection]:
        """A connection in a transaction for one operation (a write takes SQLite's write lock
        up front); committed at the end when it is megatron's own."""

    @abc.abstractmethod
    def reader(self) -> AbstractContextManager[Any]:
        """A DB-API cursor for one read (the lookups' fast path)."""

    def joins_caller(self) -> bool:
        """Whether an operation now would run inside a transaction the caller opened."""
        return False

    def where(self) -> str:
        """The database, for messages (no password)."""
        return self.engine.url.render_as_string(hide_password=True)

    def portable_url(self) -> str:
        """The URL that opens this database from another process (password included), or a
        :class:`StorageError` saying why there is none."""
        if self.url is None:
            raise StorageError(
                f"it runs on {self.where()}, and a live connection, or an Engine's pool and settings, "
                "cannot be sent to another process. Pass a database URL instead (storage="
                "'sqlite:///out.db', or SQLStorage(url, name, version, ...)): a storage opened from a URL "
                "pickles as the URL and connects again in the new process."
            )
        url = self.url
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            if database in ("", ":memory:") or url.query.get("mode") == "memory":
                raise StorageError(
                    f"it is the in-memory SQLite database {self.where()!r}, which lives in this process "
                    "only. Use a SQLite file (sqlite:///out.db) or a database server."
                )
        return url.render_as_string(hide_password=False)

    @abc.abstractmethod
    def close(self) -> None:
        """Release what megatron opened (never the caller's engine or connection)."""

    def write(self, work: Callable[[sa.Connection], T], what: str) -> T:
        """``work`` in one write transaction, run again (in a new transaction) when the
        database chose it as the victim of a deadlock or serialization conflict. A database
        error is a :class:`StorageError` that says ``what`` failed."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.transaction(write=True) as conn:
                    return work(conn)
            except Exception as exc:
                error = self.driver_error(exc)
                if error is None:
                    raise
                transient = is_transient(error, self.engine.dialect.name)
                if transient and attempt < WRITE_ATTEMPTS:
                    time.sleep(BACKOFF_S * 2 ** (attempt - 1) * random.uniform(1.0, 2.0))
                    continue
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                if transient:
                    reason = (
                        f"the database chose it as the victim of a deadlock or serialization conflict "
                        f"{WRITE_ATTEMPTS} times in a row (last: {reason})"
                    )
                raise StorageError(
                    f"Could not {what} at {self.where()}: {reason}. The write was rolled back: none of "
                    "its rows are stored."
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def driver_error(self, exc: BaseException) -> BaseException | None:
        """The DB-API error behind ``exc``, or None when it is not a database error."""
        if isinstance(exc, sa.exc.DBAPIError):
            return exc.orig
        dbapi_error = getattr(self.engine.dialect.loaded_dbapi, "Error", None)
        if isinstance(dbapi_error, type) and isinstance(exc, dbapi_error):
            return exc
        return None


def is_transient(error: BaseException, dialect: str) -> bool:
    """Whether a DB-API error says the transaction lost a deadlock or a serialization
    conflict, so that running it again may succeed."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if code in TRANSIENT_SQLSTATES:
        return True
    args = getattr(error, "args", ())
    if not args:
        return False
    if dialect in ("mysql", "mariadb"):
        return args[0] == MYSQL_DEADLOCK
    return isinstance(args[0], str) and args[0] in TRANSIENT_SQLSTATES  # pyodbc: (sqlstate, message)


def _begin_at_driver(conn: sa.Connection, write: bool) -> None:
    """Begin SQLite's transaction now where SQLAlchemy began one that the sqlite3 module has
    not (it begins only before a data change), so that every statement of the operation is in
    it; a write takes the write lock up front, so that concurrent writers wait, not fail."""
    if conn.dialect.name != "sqlite":
        return
    dbapi_connection = conn.connection.dbapi_connection
    if not getattr(dbapi_connection, "in_transaction", True):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _driver_in_transaction(dbapi_connection: Any) -> bool:
    """Whether a DB-API connection has a transaction open (sqlite3, psycopg; False where the
    driver does not say)."""
    state = getattr(dbapi_connection, "in_transaction", None)  # sqlite3
    if isinstance(state, bool):
        return state
    status = getattr(getattr(dbapi_connection, "info", None), "transaction_status", None)  # psycopg
    return status is not None and int(status) != 0


@contextmanager
def _cursor(db: Database) -> Iterator[Any]:
    """A DB-API cursor in one read transaction of ``db``."""
    with db.transaction(write=False) as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            yield cursor
        finally:
            cursor.close()


class _Reader:
    """One thread's DB-API connection and cursor for reads, from the pool."""

    __slots__ = ("connection", "cursor", "pooled")

    def __init__(self, pooled: Any) -> None:
        self.pooled = pooled
        self.connection = pooled.dbapi_connection
        self.cursor = self.connection.cursor()

    def __enter__(self) -> Any:
        return self.cursor

    def __exit__(self, *exc: object) -> None:
        self.connection.rollback()  # end the read's transaction, so that no snapshot is held


class _Pooled(Database):
    """An engine's pool: megatron's own connections and transactions."""

    def __init__(self, engine: sa.Engine, url: sa.URL | None) -> None:
        self.engine = engine
        self.url = url
        self._local = threading.local()
        self._readers: list[_Reader] = []
        self._lock = threading.Lock()
        # a caller's engine whose pool gives every checkout (in a thread) one DB-API connection,
        # as an in-memory SQLite engine's does: the caller's transaction may be open on it
        self._shared = url is None and isinstance(engine.pool, SingletonThreadPool | StaticPool)
        # megatron's own in-memory SQLite database: one connection for every thread, used by one
        # thread at a time
        self._serial: threading.RLock | None = (
            threading.RLock() if url is not None and isinstance(engine.pool, StaticPool) else None
        )

    def _check_unshared(self, dbapi_connection: Any) -> None:
        if self._shared and _driver_in_transaction(dbapi_connection):
            raise StorageError(
                f"{self.where()} gives megatron the connection on which a transaction is open (its pool "
                "shares one connection, as an in-memory SQLite engine's does), and megatron would end "
                "that transaction. Pass the Connection that holds it instead: megatron then joins it."
            )

    @contextmanager
    def transaction(self, write: bool) -> Iterator[sa.Connection]:
        with self._serial or nullcontext(), self.engine.connect() as conn:
            self._check_unshared(conn.connection.dbapi_connection)
            if write:
                conn.info["megatron_write"] = True  # BEGIN IMMEDIATE on SQLite files megatron opened
            with conn.begin():
                _begin_at_driver(conn, write)
                yield conn

    def where(self) -> str:
        return super().where() if self.url is not None else f"the Engine you passed ({super().where()})"

    def reader(self) -> AbstractContextManager[Any]:
        if self._shared or self._serial is not None:
            return _cursor(self)
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = _Reader(self.engine.raw_connection())
            with self._lock:
                self._readers.append(reader)
        return reader

    def close(self) -> None:
        with self._lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.cursor.close()
            reader.pooled.close()
        self._local = threading.local()
        if self.url is not None:
            self.engine.dispose()


class _Guard:
    """A caller's ``sqlite3.Connection`` as SQLAlchemy sees it: ``commit``, ``rollback`` and
    ``close`` reach it only while megatron's own transaction is open on it, so that nothing
    SQLAlchemy does (a rollback when a connection is returned, say) can end the caller's."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.owned = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)

    def commit(self) -> None:
        if self.owned and self.connection.in_transaction:
            self.connection.execute("COMMIT")  # as SQL: commit() does nothing under autocommit=True

    def rollback(self) -> None:
        if self.owned and self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def close(self) -> None:
        pass


class _Shared(Database):
    """A caller's connection: megatron joins the caller's transaction, or runs its own where
    none is open (see the module's description)."""

    def __init__(self, connection: sa.Connection, guard: _Guard | None, what: str) -> None:
        self.engine = connection.engine
        self._connection = connection
        self._guard = guard
        self._what = what
        self._lock = threading.RLock()  # one connection: one operation at a time

    def joins_caller(self) -> bool:
        if self._guard is not None:
            return self._guard.connection.in_transaction
        return self._connection.in_transaction()

    @contextmanager
    def transaction(self, write: bool) -> Iterator[sa.Connection]:
        with self._lock:
            conn = self._connection
            if self._guard is not None and conn.in_transaction():
                conn.rollback()  # SQLAlchemy's record of a past operation: the guard keeps it off the caller's
            if self.joins_caller():
                _begin_at_driver(conn, write)  # a caller's transaction that SQLite has not begun yet
                with conn.begin_nested():
                    yield conn
                return
            if self._guard is not None:
                self._guard.owned = True
            try:
                with conn.begin():
                    _begin_at_driver(conn, write)
                    yield conn
            finally:
                if self._guard is not None:
                    self._guard.owned = False

    def reader(self) -> AbstractContextManager[Any]:
        return _cursor(self)

    def where(self) -> str:
        url = "" if self._guard is not None else f" ({super().where()})"
        return f"{self._what} you passed{url}"

    def close(self) -> None:
        if self._guard is not None:  # megatron's own SQLAlchemy connection over the caller's
            with self._lock:
                self._connection.close()


def open_database(target: Any, *, durable: bool = False) -> Database:
    """The :class:`Database` of ``target``: a URL (megatron's own engine; ``durable``: see
    :func:`~megatron_sql.engines.create_engine`), an Engine, a Connection or a
    ``sqlite3.Connection`` (the caller's)."""
    if isinstance(target, sa.Connection):
        return _Shared(target, None, "the SQLAlchemy Connection")
    if isinstance(target, sqlite3.Connection):
        guard = _Guard(target)
        engine = sa.create_engine(
            "sqlite://", creator=lambda: guard, poolclass=StaticPool, pool_reset_on_return=None
        )
        return _Shared(engine.connect(), guard, "the sqlite3 connection")
    if isinstance(target, sa.Engine):
        return _Pooled(target, None)
    engine = create_engine(target, durable=durable)
    return _Pooled(engine, engine.url)
