"""megatron's own SQLAlchemy engines, opened from database URLs."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from megatron.errors import StorageError

SQLITE_BUSY_TIMEOUT_MS = 60_000


def _prepare_sqlite(engine: sa.Engine, durable: bool) -> sa.Engine:
    """WAL journaling, a busy timeout, and write transactions that take the write lock up
    front (``BEGIN IMMEDIATE``), so concurrent writers wait instead of failing.

    Commits are flushed to disk at checkpoints (``synchronous = NORMAL``, SQLite's advice for
    WAL): a killed process loses nothing committed, a power cut may lose the last commits but
    never corrupts the file. ``durable`` flushes every commit (``FULL``): each commit then
    waits for the disk, on top of the checkpoint's own flush.
    """

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection: sa.Connection) -> None:
        immediate = connection.info.pop("megatron_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def create_engine(target: str | sa.URL, *, durable: bool = False) -> sa.Engine:
    """megatron's own Engine for a database URL (a SQLite file in WAL mode, see
    ``_prepare_sqlite``; ``durable`` flushes every commit). Engines and connections that
    callers pass are used as they are: see :func:`megatron_sql.connections.open_database`."""
    if not isinstance(target, str | sa.URL):
        raise StorageError(
            f"Expected a database URL, a SQLAlchemy Engine or Connection, or a sqlite3.Connection; got "
            f"{type(target).__module__}.{type(target).__qualname__}."
        )
    try:
        url = sa.make_url(target)
    except sa.exc.ArgumentError as exc:
        raise StorageError(f"Not a database URL: {target!r} ({exc})") from None
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database not in ("", ":memory:") and not database.startswith("file:"):
            # the file named where it was opened, whatever directory a later connection (or
            # another process, given the pickled storage) starts in
            url = url.set(database=os.path.abspath(database))
    options: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite" and (url.database or "") in ("", ":memory:"):
        # one in-memory database for the process, not one per thread (SQLAlchemy's default)
        options = {"poolclass": sa.pool.StaticPool, "connect_args": {"check_same_thread": False}}
    try:
        engine = sa.create_engine(url, **options)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise StorageError(
            f"Cannot open {url.render_as_string(hide_password=True)!r}: {exc}. Install the "
            "database driver (for PostgreSQL, from a clone of the Megatron repository: "
            'pip install -e "packages/megatron-sql[postgresql]").'
        ) from None
    return _prepare_sqlite(engine, durable) if url.get_backend_name() == "sqlite" else engine


def claims(target: Any) -> bool:
    """Whether ``target`` is something megatron-sql opens (a URL of an installed SQLAlchemy
    dialect, an Engine, a Connection, a ``sqlite3.Connection``), checked without importing
    anything new, for the plugin's adapter hook."""
    if isinstance(target, sqlite3.Connection | sa.Engine | sa.Connection | sa.URL):
        return True
    if isinstance(target, str) and "://" in target:
        try:
            sa.make_url(target).get_dialect()
        except Exception:
            return False
        return True
    return False
