"""``SQLStorage``: a pipeline's outputs in a table of any SQLAlchemy database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import sqlalchemy as sa

from megatron.errors import StorageError
from megatron.outputs import Outputs
from megatron.storage import Key, Storage, lookup_keys
from megatron_sql import reading, writing
from megatron_sql.connections import open_database
from megatron_sql.copying import COPY_THRESHOLD
from megatron_sql.schema import KEY
from megatron_sql.statements import LOOKUP_CHUNK
from megatron_sql.tables import PipelineTable


class SQLStorage(Storage):
    """The outputs of pipeline ``name``/``version`` in one table of a SQL database.

    ``target`` is a SQLAlchemy URL, Engine or Connection, or a ``sqlite3.Connection``. On a
    connection of yours, megatron never commits or rolls back a transaction it did not open:
    its writes join your open transaction, or commit on their own where none is open (see
    ``megatron_sql.connections``). Opened from a URL, the storage pickles as the URL and is
    :attr:`shared` (a copy in another process, a dask worker, writes to the same table). A write
    whose outputs differ from the existing table's is refused unless ``overwrite=True``, which
    replaces the table. A SQLite file opened from a URL is in WAL mode and flushes commits at
    checkpoints: a killed process loses nothing committed, a power cut may lose the last
    commits; ``durable=True`` flushes every commit. Statements are built by SQLAlchemy once per
    shape (see ``megatron_sql.statements``) and run on the DB-API cursor with bound parameters.
    On PostgreSQL (psycopg 3), a write of at least ``copy_threshold`` rows sends them with
    ``COPY``, with the same upsert semantics (see ``megatron_sql.copying``); None never does.

    Example::

        pipeline = Pipeline(inputs, outputs, 'churn', version='2', storage='sqlite:///out.db')
    """

    def __init__(
        self,
        target: Any,
        name: str,
        version: str | None = None,
        *,
        overwrite: bool = False,
        durable: bool = False,
        copy_threshold: int | None = COPY_THRESHOLD,
    ) -> None:
        self._setup(target, name, version, overwrite, durable, copy_threshold)
        self._tables.load()

    def _setup(
        self,
        target: Any,
        name: str,
        version: str | None,
        overwrite: bool,
        durable: bool,
        copy_threshold: int | None,
    ) -> None:
        """Everything but the table's description, which is read on first use."""
        if not isinstance(name, str):
            raise StorageError(f"A pipeline's name is a string; got {name!r}.")
        if copy_threshold is not None and (
            isinstance(copy_threshold, bool) or not isinstance(copy_threshold, int) or copy_threshold < 1
        ):
            raise StorageError(
                f"copy_threshold is a number of rows (at least 1), or None to never use COPY; got "
                f"{copy_threshold!r}."
            )
        self.copy_threshold = copy_threshold
        self.name = name
        self.version = None if version is None else str(version)  # as Pipeline names versions
        self.overwrite = overwrite
        self._durable = durable
        self._db = open_database(target, durable=durable)
        self.engine = self._db.engine
        self._tables = PipelineTable(self._db, name, self.version)

    @property
    def table_name(self) -> str:
        """The name of the table holding the outputs."""
        return self._tables.table_name

    @table_name.setter
    def table_name(self, value: str) -> None:
        self._tables.table_name = value

    @property
    def shared(self) -> bool:  # type: ignore[override]
        """True when opened from a URL of a database other processes reach (a file, a server):
        a pickled copy reconnects to the same database, so its writes reach the same rows."""
        try:
            self._db.portable_url()
        except StorageError:
            return False
        return True

    @property
    def serial_writes(self) -> bool:  # type: ignore[override]
        """True on SQLite: one writer at a time, on one machine's file."""
        return self.engine.dialect.name == "sqlite"

    def __getstate__(self) -> dict[str, Any]:
        try:
            url = self._db.portable_url()
        except StorageError as exc:
            raise StorageError(f"Cannot pickle the SQL storage of pipeline {self.name!r}: {exc}") from None
        return {
            "url": url,
            "name": self.name,
            "version": self.version,
            "overwrite": self.overwrite,
            "durable": self._durable,
            "copy_threshold": self.copy_threshold,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        # no connection until the first read or write
        threshold = state.get("copy_threshold", COPY_THRESHOLD)
        self._setup(
            state["url"], state["name"], state["version"], state["overwrite"], state["durable"], threshold
        )

    @classmethod
    def open(cls, url: str, name: str, version: str | None) -> SQLStorage:
        return cls(url, name, version)

    def put(self, outputs: Outputs, fingerprint: str | None) -> None:
        writing.store(self._tables, outputs, fingerprint, self.overwrite, self.copy_threshold)

    def lookup(
        self, rows: Iterable[Key], cols: Iterable[str] | None = None, fingerprint: str | None = None
    ) -> tuple[np.ndarray, Outputs]:
        try:
            return reading.lookup(self._tables, rows, cols, fingerprint)
        except Exception as exc:
            if self._db.driver_error(exc) is None:
                raise
            known = self._tables.spec
            self._tables.load()
            if self._tables.spec is not None and self._tables.spec != known:  # replaced: read the new table
                return reading.lookup(self._tables, rows, cols, fingerprint)
            raise self._tables.error(exc, f"read table {self.table_name!r}") from exc

    def keys(self) -> list[Key]:
        self._tables.current()
        table = self._tables.table
        if table is None:
            return []
        try:
            with self._db.transaction(write=False) as conn:
                return list(conn.execute(sa.select(table.c[KEY]).order_by(table.c[KEY])).scalars())
        except Exception as exc:
            raise self._tables.error(exc, f"list the keys of table {self.table_name!r}") from exc

    def __contains__(self, key: Any) -> bool:
        return len(self.lookup([key], cols=[])[0]) == 1

    def delete(self, rows: Iterable[Key]) -> None:
        spec = self._tables.current()
        table = self._tables.table
        if table is None or spec is None:
            return
        keys = sorted({k for k in lookup_keys(rows, spec.int_keys)[1] if k is not None})  # in lock order

        def delete(conn: sa.Connection) -> None:
            for start in range(0, len(keys), LOOKUP_CHUNK):
                chunk = keys[start : start + LOOKUP_CHUNK]
                conn.execute(sa.delete(table).where(table.c[KEY].in_(chunk)))

        if keys:
            self._db.write(delete, f"delete {len(keys)} rows from table {spec.table!r}")

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"<SQLStorage {self.table_name!r} at {url}>"
