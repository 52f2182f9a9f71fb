"""``SQLStorage``: a pipeline's outputs in a table of any SQLAlchemy database."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from megatron.errors import StorageError, UnknownOutputError
from megatron.outputs import Outputs
from megatron.storage import Key, Storage, normalize_key
from megatron_sql.engines import create_engine
from megatron_sql.schema import (
    FINGERPRINT,
    KEY,
    OutputColumn,
    TableSpec,
    fingerprint_value,
    metadata_table,
    table_name,
)

SCHEMA_LOCK = int(hashlib.sha256(b"megatron schema").hexdigest()[:15], 16)
LOOKUP_CHUNK = 10_000  # keys per IN (...) clause, under every dialect's parameter limit


class SQLStorage(Storage):
    """The outputs of pipeline ``name``/``version`` in one table of a SQL database.

    ``target`` is a SQLAlchemy URL, Engine or Connection, or a ``sqlite3.Connection``. A write
    whose outputs differ from the existing table's is refused unless ``overwrite=True``, which
    replaces the table. Statements are built and compiled by SQLAlchemy once per shape and run
    on the DBAPI cursor with bound parameters, so the bulk and single-row paths stay fast.

    Example::

        pipeline = Pipeline(inputs, outputs, 'churn', version='2', storage='sqlite:///out.db')
    """

    def __init__(
        self, target: Any, name: str, version: str | None = None, *, overwrite: bool = False
    ) -> None:
        self.name = name
        self.version = version
        self.overwrite = overwrite
        self.engine = create_engine(target)
        self._owns_engine = isinstance(target, str | sa.URL)
        self.table_name = table_name(name, version)
        self._metadata = sa.MetaData()
        self._registry = metadata_table(self._metadata)
        self._lock = threading.RLock()
        self._statements: dict[Any, Any] = {}
        self._local = threading.local()
        self._readers: list[Any] = []
        self._spec: TableSpec | None = None
        self._table: sa.Table | None = None
        self._load()

    @classmethod
    def open(cls, url: str, name: str, version: str | None) -> SQLStorage:
        return cls(url, name, version)

    # -- schema ----------------------------------------------------------------------------------
    def _load(self) -> None:
        """Read the table's description, if a process ever wrote it."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(self._registry.name):
                return
            row = conn.execute(
                sa.select(self._registry).where(self._registry.c.table_name == self.table_name)
            ).first()
        if row is not None:
            self._use(TableSpec.from_row(row))

    def _use(self, spec: TableSpec) -> None:
        self._metadata = sa.MetaData()
        self._registry = metadata_table(self._metadata)
        self._spec, self._table = spec, spec.build(self._metadata)
        self._statements.clear()

    def _create(self, spec: TableSpec, replace: bool) -> None:
        """Create the table and its description, once, whichever process gets there first."""
        for attempt in range(3):
            try:
                self._create_once(spec, replace)
                return
            except sa.exc.DBAPIError:
                # Another process created the same table at the same moment: use theirs.
                self._load()
                if self._spec is not None and not replace:
                    return
                if attempt == 2:
                    raise

    def _create_once(self, spec: TableSpec, replace: bool) -> None:
        with self.engine.connect() as conn:
            conn.info["megatron_write"] = True
            with conn.begin():
                if (
                    conn.dialect.name == "postgresql"
                ):  # serialise schema changes, as SQLite's BEGIN IMMEDIATE does
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": SCHEMA_LOCK})
                self._registry.create(conn, checkfirst=True)
                existing = conn.execute(
                    sa.select(self._registry).where(self._registry.c.table_name == spec.table)
                ).first()
                if existing is not None and not replace:
                    spec = TableSpec.from_row(existing)
                else:
                    table = spec.build(sa.MetaData())
                    table.drop(conn, checkfirst=True)
                    table.create(conn)
                    conn.execute(sa.delete(self._registry).where(self._registry.c.table_name == spec.table))
                    conn.execute(
                        sa.insert(self._registry).values(
                            table_name=spec.table,
                            pipeline=spec.pipeline,
                            version=spec.version,
                            int_keys=spec.int_keys,
                            outputs=spec.describe(),
                        )
                    )
        self._use(spec)

    # -- writing ---------------------------------------------------------------------------------
    def write(
        self,
        index: Sequence[Key] | np.ndarray,
        outputs: Outputs | dict[str, np.ndarray],
        fingerprint: str | None = None,
    ) -> None:
        index = np.asarray(index)
        keys = index.tolist()
        # an integer array's keys are ints: no need to look at each one
        int_keys = index.dtype.kind in "iu" or (index.dtype.kind == "O" and all(type(k) is int for k in keys))
        names = list(outputs)
        arrays = [np.asarray(outputs[n]) for n in names]
        for name, array in zip(names, arrays):
            if len(array) != len(keys):
                raise StorageError(f"Cannot store output {name!r}: {len(array)} rows for {len(keys)} keys.")
        if len(set(keys)) != len(keys):
            raise StorageError("Cannot store rows: the index holds duplicate keys.")
        wanted = TableSpec(
            self.name,
            self.version,
            self.table_name,
            int_keys,
            tuple(OutputColumn.for_array(n, i, a) for i, (n, a) in enumerate(zip(names, arrays))),
        )
        with self._lock:
            if self._spec is None:
                self._create(wanted, replace=False)
            if self._spec is not None and self._spec.signature != wanted.signature:
                if not self.overwrite:
                    raise StorageError(
                        f"Table {self.table_name!r} holds outputs {self._spec.summary()}; this write has "
                        f"{wanted.summary()}. Use another pipeline name or version, or "
                        "SQLStorage(..., overwrite=True) to replace the table."
                    )
                self._create(wanted, replace=True)
            spec = self._spec
            assert spec is not None
            columns = self._columns(spec, keys, int_keys, arrays, fingerprint)
            with self.engine.connect() as conn:
                conn.info["megatron_write"] = True
                with conn.begin():  # one transaction: all rows or none
                    if keys:
                        _execute_upsert(conn, self._upsert_statement(conn.dialect.name), columns)

    def _columns(
        self,
        spec: TableSpec,
        keys: list[Any],
        int_keys: bool,
        arrays: list[np.ndarray],
        fingerprint: str | None,
    ) -> dict[str, Sequence[Any]]:
        """Column name to per-row values."""
        stored_keys = keys if spec.int_keys == int_keys else [normalize_key(k, spec.int_keys) for k in keys]
        if spec.int_keys and not int_keys and not all(isinstance(k, int) for k in stored_keys):
            raise StorageError(
                f"Table {self.table_name!r} has integer keys; got keys such as {stored_keys[:3]}"
            )
        columns = {KEY: stored_keys, FINGERPRINT: [fingerprint_value(fingerprint)] * len(keys)}
        columns.update((o.column, o.encode(a)) for o, a in zip(spec.outputs, arrays))
        return columns

    def _upsert_statement(self, dialect: str) -> Any:
        cached = self._statements.get(("upsert", dialect))
        if cached is None:
            table = self._table
            assert table is not None
            if dialect in ("sqlite", "postgresql", "mysql", "mariadb"):
                cached = _MultiRowUpsert(table, self.engine.dialect)
            else:
                cached = _DeleteThenInsert(table)
            self._statements[("upsert", dialect)] = cached
        return cached

    # -- reading ---------------------------------------------------------------------------------
    def _select(self, cols: tuple[str, ...], with_fingerprint: bool, n_keys: int) -> _Compiled:
        """The lookup of ``n_keys`` keys, compiled once per shape: a one-row lookup never
        compiles again."""
        key = ("select", cols, with_fingerprint, n_keys)
        compiled = self._statements.get(key)
        if compiled is None:
            table = self._table
            assert table is not None and self._spec is not None
            by_name = {o.name: o for o in self._spec.outputs}
            selected = [table.c[by_name[c].column] for c in cols]
            statement = sa.select(table.c[KEY], *selected).where(
                table.c[KEY].in_([sa.bindparam(f"k{i}") for i in range(n_keys)])
            )
            if with_fingerprint:
                statement = statement.where(table.c[FINGERPRINT] == sa.bindparam("fingerprint"))
            compiled = _Compiled(statement, self.engine.dialect)
            compiled.keys_order = [f"k{i}" for i in range(n_keys)]
            if len(self._statements) > 256:
                self._statements.clear()
            self._statements[key] = compiled
        return compiled

    def _reader(self) -> Any:
        """This thread's DBAPI connection for reads, checked out of the engine's pool once."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self.engine.raw_connection()
            with self._lock:
                self._readers.append(connection)
        return connection

    def _current_spec(self) -> TableSpec | None:
        if self._spec is None:
            with self._lock:
                if self._spec is None:
                    self._load()
        return self._spec

    def lookup(
        self, rows: Iterable[Key], cols: Iterable[str] | None = None, fingerprint: str | None = None
    ) -> tuple[np.ndarray, Outputs]:
        wanted = list(rows)
        spec = self._current_spec()
        if spec is None:
            selected = [] if cols is None else list(cols)
            return np.empty(0, dtype=np.int64), Outputs(
                selected, [np.empty(0) for _ in selected], np.empty(0)
            )
        names = [o.name for o in spec.outputs]
        selected = names if cols is None else list(cols)
        unknown = [c for c in selected if c not in spec.by_name]
        if unknown:
            raise UnknownOutputError(f"Table {self.table_name!r} has no outputs {unknown}; it holds {names}.")
        key_type = int if spec.int_keys else str
        if all(type(k) is key_type for k in wanted):
            keys = wanted
        else:
            keys = [normalize_key(k, spec.int_keys) for k in wanted]
        found: dict[Any, Any] = {}
        connection = self._reader()
        cursor = connection.cursor()
        try:
            for start in range(0, len(keys), LOOKUP_CHUNK):
                chunk = keys[start : start + LOOKUP_CHUNK]
                compiled = self._select(tuple(selected), fingerprint is not None, len(chunk))
                extra = () if fingerprint is None else (fingerprint_value(fingerprint),)
                if compiled.order is not None and compiled.order[: len(chunk)] == compiled.keys_order:
                    parameters: Any = (*chunk, *extra)  # positional, keys first: no dict to build
                else:
                    values = {f"k{i}": k for i, k in enumerate(chunk)}
                    values.update(zip(["fingerprint"], extra))
                    parameters = compiled.parameters(values)
                cursor.execute(compiled.sql, parameters)
                found.update((row[0], row) for row in cursor.fetchall())
        finally:
            cursor.close()
            connection.rollback()  # end the read's transaction, so that no snapshot is held
        positions = [i for i, k in enumerate(keys) if k in found]
        hits = [found[keys[i]] for i in positions]
        return np.asarray(positions, dtype=np.int64), Outputs(
            selected, _decode(spec, selected, hits), np.asarray([keys[i] for i in positions])
        )

    def keys(self) -> list[Key]:
        self._current_spec()
        if self._table is None:
            return []
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(self._table.c[KEY]).order_by(self._table.c[KEY])).scalars())

    def __contains__(self, key: Any) -> bool:
        return len(self.lookup([key], cols=[])[0]) == 1

    def delete(self, rows: Iterable[Key]) -> None:
        spec = self._current_spec()
        if self._table is None or spec is None:
            return
        keys = [normalize_key(k, spec.int_keys) for k in rows]
        with self.engine.connect() as conn:
            conn.info["megatron_write"] = True
            with conn.begin():
                for start in range(0, len(keys), LOOKUP_CHUNK):
                    chunk = keys[start : start + LOOKUP_CHUNK]
                    conn.execute(sa.delete(self._table).where(self._table.c[KEY].in_(chunk)))

    def close(self) -> None:
        with self._lock:
            readers, self._readers = self._readers, []
        for connection in readers:
            connection.close()
        self._local = threading.local()
        if self._owns_engine:
            self.engine.dispose()

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"<SQLStorage {self.table_name!r} at {url}>"


def _decode(spec: TableSpec, selected: list[str], rows: list[Any]) -> list[np.ndarray]:
    """Output arrays from result rows (the key first, then the selected columns)."""
    by_name = spec.by_name
    columns = [by_name[c] for c in selected]
    dtypes = {c.dtype for c in columns}
    if rows and len(dtypes) == 1 and not columns[0].is_array and columns[0].dtype != "str":
        # one numeric dtype: one conversion for the whole table, then a column each
        table = np.array([row[1:] for row in rows], dtype=np.dtype(columns[0].dtype))
        return [table[:, j] for j in range(len(columns))]
    values = list(zip(*rows))[1:] if rows else [() for _ in columns]
    return [column.decode(list(v)) for column, v in zip(columns, values)]


class _Compiled:
    """A statement compiled once for a dialect and run on the DBAPI cursor directly: the SQL
    text comes from SQLAlchemy (identifiers quoted), the values are always bound."""

    def __init__(self, statement: Any, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.order = list(compiled.positiontup) if compiled.positional else None
        self.keys_order: list[str] | None = None

    def parameters(self, values: dict[str, Any]) -> Any:
        return values if self.order is None else tuple(values[name] for name in self.order)


class _MultiRowUpsert:
    """``INSERT ... VALUES (...), (...), ... ON CONFLICT (key) DO UPDATE`` (or the MySQL
    form) for ``rows`` rows at a time: one statement per chunk instead of one per row, the
    way the fastest bulk loaders work. Compiled once per chunk size."""

    MAX_PARAMETERS = 30_000  # under SQLite's 32,766 and PostgreSQL's 65,535

    def __init__(self, table: sa.Table, dialect: sa.Dialect) -> None:
        self.table = table
        self.dialect = dialect
        self.columns = [c.name for c in table.columns]
        # Larger statements save little more and cost more to compile (once per storage).
        self.rows = max(1, min(100, self.MAX_PARAMETERS // len(self.columns)))
        self._compiled: dict[int, _Compiled] = {}

    def compiled(self, n_rows: int) -> _Compiled:
        compiled = self._compiled.get(n_rows)
        if compiled is None:
            rows = [{c: sa.bindparam(f"{c}__{r}") for c in self.columns} for r in range(n_rows)]
            others = [c for c in self.columns if c != KEY]
            if self.dialect.name in ("mysql", "mariadb"):
                insert = mysql.insert(self.table).values(rows)
                statement = insert.on_duplicate_key_update({c: insert.inserted[c] for c in others})
            else:
                insert = (
                    (sqlite if self.dialect.name == "sqlite" else postgresql).insert(self.table).values(rows)
                )
                statement = insert.on_conflict_do_update(
                    index_elements=[KEY], set_={c: insert.excluded[c] for c in others}
                )
            compiled = self._compiled[n_rows] = _Compiled(statement, self.dialect)
            row_major = [f"{c}__{r}" for r in range(n_rows) for c in self.columns]
            compiled.row_major = compiled.order == row_major  # type: ignore[attr-defined]
        return compiled

    def execute(self, cursor: Any, columns: dict[str, Sequence[Any]]) -> None:
        grid = _grid(columns, self.columns)
        n = len(grid)
        full = n - n % self.rows
        if full:
            compiled = self.compiled(self.rows)
            cursor.executemany(
                compiled.sql,
                [self._parameters(compiled, grid[i : i + self.rows]) for i in range(0, full, self.rows)],
            )
        if full < n:
            compiled = self.compiled(n - full)
            cursor.execute(compiled.sql, self._parameters(compiled, grid[full:]))

    def _parameters(self, compiled: _Compiled, chunk: np.ndarray) -> Any:
        flat = chunk.ravel().tolist()  # row-major Python values, laid out in C
        if getattr(compiled, "row_major", False):
            return flat
        names = [f"{c}__{r}" for r in range(len(chunk)) for c in self.columns]
        return compiled.parameters(dict(zip(names, flat)))


def _grid(columns: dict[str, Sequence[Any]], order: list[str]) -> np.ndarray:
    """The rows as an (n, columns) object array of Python values."""
    n = len(columns[KEY])
    grid = np.empty((n, len(order)), dtype=object)
    for j, name in enumerate(order):
        grid[:, j] = columns[name]
    return grid


class _DeleteThenInsert:
    """A portable upsert for dialects without one: delete the keys, then insert, in the
    caller's transaction."""

    def __init__(self, table: sa.Table) -> None:
        self.insert = sa.insert(table)
        self.delete = sa.delete(table).where(table.c[KEY].in_(sa.bindparam("keys", expanding=True)))


def _execute_upsert(conn: sa.Connection, statement: Any, columns: dict[str, Sequence[Any]]) -> None:
    if isinstance(statement, _DeleteThenInsert):
        keys = columns[KEY]
        for start in range(0, len(keys), LOOKUP_CHUNK):
            conn.execute(statement.delete, {"keys": keys[start : start + LOOKUP_CHUNK]})
        names = list(columns)
        conn.execute(statement.insert, [dict(zip(names, row)) for row in _grid(columns, names).tolist()])
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        statement.execute(cursor, columns)
    finally:
        cursor.close()
