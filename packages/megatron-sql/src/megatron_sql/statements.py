"""The statements of the hot paths (bulk upserts and key lookups), built by SQLAlchemy once per
shape and run on the DB-API cursor with plain parameter lists.

SQLAlchemy writes every statement's text (identifiers quoted, values always bound). Where the
dialect's placeholders are all alike (``?`` or ``%s``), the n-row ``VALUES`` list or n-key
``IN`` list is the one-row statement with its placeholder group repeated, as SQLAlchemy's own
"insertmanyvalues" does: no statement of any size is compiled twice, nor compiled per row.
Other dialects get the n-row statement compiled by SQLAlchemy, once per size.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from megatron_sql.schema import FINGERPRINT, KEY, OutputColumn

MAX_PARAMETERS = 30_000  # under SQLite's 32,766 and PostgreSQL's 65,535 bound values per statement
LOOKUP_CHUNK = 10_000  # keys per IN (...) list
UPSERT_ROWS = 1_000  # rows per statement: SQLite gains nothing from bigger ones
COMPILED_UPSERT_ROWS = 100  # where SQLAlchemy compiles each size, bigger ones cost more to compile
PLACEHOLDERS = {"qmark": "?", "format": "%s"}  # paramstyles whose placeholders are all alike
CACHED_SIZES = 64


class Statement:
    """SQL text and how a list of values, in the order its builder names them, becomes the
    DB-API parameters."""

    def __init__(self, sql: str, names: Sequence[str] = (), order: Sequence[str] | None = None) -> None:
        self.sql = sql
        self._names = tuple(names)
        self._order = None if order is None else tuple(order)
        self.binds_as_given = not self._names or self._order == self._names

    @classmethod
    def compile(cls, statement: Any, dialect: sa.Dialect, names: Sequence[str]) -> Statement:
        compiled = statement.compile(dialect=dialect)
        return cls(str(compiled), names, compiled.positiontup if compiled.positional else None)

    def bind(self, values: list[Any]) -> Any:
        if self.binds_as_given:
            return values
        named = dict(zip(self._names, values))
        return named if self._order is None else [named[name] for name in self._order]


def _repeater(
    one: Any, dialect: sa.Dialect, names: Sequence[str], prefix: str, width: int, suffix: str
) -> Callable[[int], Statement] | None:
    """Where ``dialect``'s placeholders are all alike and the compiled one-row (or one-key)
    statement ``one`` binds its values in the order of ``names``, a builder of its n-row form:
    its group of ``width`` placeholders, found once between ``prefix`` and ``suffix``, repeated
    n times. None otherwise."""
    placeholder = PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:
        return None
    compiled = Statement.compile(one, dialect, names)
    group = placeholder if width == 1 else "(" + ", ".join([placeholder] * width) + ")"
    parts = compiled.sql.split(prefix + group + suffix)
    if not compiled.binds_as_given or len(parts) != 2:
        return None
    head, tail = parts
    return lambda count: Statement(head + prefix + ", ".join([group] * count) + suffix + tail)


class _BySize:
    """A statement for any number of rows or keys, each size built once."""

    def __init__(self, build: Callable[[int], Statement]) -> None:
        self._build = build
        self._built: dict[int, Statement] = {}

    def __call__(self, count: int) -> Statement:
        statement = self._built.get(count)
        if statement is None:
            if len(self._built) >= CACHED_SIZES:
                self._built.clear()
            statement = self._built[count] = self._build(count)
        return statement


class Rows:
    """The rows of one write in the table's column order (key, fingerprint, outputs), turned
    into DB-API values a chunk at a time, so a large write never holds all of them as Python
    objects at once. A write without a fingerprint leaves that column out (:attr:`columns`):
    the column's default, NULL, stores it, and no ``None`` is bound per row (``sqlite3`` binds
    ``None`` through its adapter lookup)."""

    def __init__(
        self, keys: list[Any], fingerprint: int | None, outputs: Sequence[tuple[OutputColumn, np.ndarray]]
    ) -> None:
        self.keys = keys
        self.fingerprint = fingerprint
        self.outputs = list(outputs)
        self.with_fingerprint = fingerprint is not None
        self.columns = [
            KEY,
            *([FINGERPRINT] if self.with_fingerprint else []),
            *(o.column for o, _ in outputs),
        ]
        """The columns given a value, in the order of each row's values."""

    def __len__(self) -> int:
        return len(self.keys)

    def records(self, start: int, stop: int) -> Any:
        """An iterator of one tuple per row."""
        values = [o.encode(a[start:stop]) for o, a in self.outputs]
        if not self.with_fingerprint:
            return zip(self.keys[start:stop], *values)
        return zip(self.keys[start:stop], itertools.repeat(self.fingerprint), *values)

    def flat(self, start: int, stop: int) -> list[Any]:
        """The values of rows ``start:stop``, row after row."""
        keys = self.keys[start:stop]
        first = 2 if self.with_fingerprint else 1
        width = first + len(self.outputs)
        values = [self.fingerprint] * (len(keys) * width)  # the fingerprint column, in passing
        values[0::width] = keys  # each column laid in by one strided assignment: no tuple per row
        for j, (column, array) in enumerate(self.outputs, start=first):
            values[j::width] = column.encode(array[start:stop])
        return values


class BulkUpsert:
    """Insert or replace rows with one multi-row ``INSERT ... ON CONFLICT (key) DO UPDATE`` (or
    MySQL's ``ON DUPLICATE KEY UPDATE``) per chunk of rows, the chunks run by ``executemany``.
    Without ``with_fingerprint``, the rows give no fingerprint: new rows get the column's
    NULL, replaced rows are set to NULL."""

    def __init__(self, table: sa.Table, dialect: sa.Dialect, with_fingerprint: bool = True) -> None:
        self.table = table
        self.dialect = dialect
        self.columns = [c.name for c in table.columns if with_fingerprint or c.name != FINGERPRINT]
        one = self._statement([{c: sa.bindparam(c) for c in self.columns}])
        repeat = _repeater(one, dialect, self.columns, "VALUES ", len(self.columns), "")
        self.statement = _BySize(repeat or self._compile)
        """The upsert of n rows."""
        rows = UPSERT_ROWS if repeat is not None else COMPILED_UPSERT_ROWS
        self.rows = max(1, min(rows, MAX_PARAMETERS // len(self.columns)))

    def _statement(self, rows: list[dict[str, Any]]) -> Any:
        others = [c for c in self.columns if c != KEY]
        cleared = {} if FINGERPRINT in self.columns else {FINGERPRINT: sa.null()}
        if self.dialect.name in ("mysql", "mariadb"):
            insert = mysql.insert(self.table).values(rows)
            return insert.on_duplicate_key_update({**cleared, **{c: insert.inserted[c] for c in others}})
        insert = (sqlite if self.dialect.name == "sqlite" else postgresql).insert(self.table).values(rows)
        return insert.on_conflict_do_update(
            index_elements=[KEY], set_={**cleared, **{c: insert.excluded[c] for c in others}}
        )

    def _compile(self, count: int) -> Statement:
        names = [f"{c}__{r}" for r in range(count) for c in self.columns]
        values: list[dict[str, Any]] = [
            {c: sa.bindparam(f"{c}__{r}") for c in self.columns} for r in range(count)
        ]
        return Statement.compile(self._statement(values), self.dialect, names)

    def execute(self, connection: sa.Connection, rows: Rows) -> None:
        """Write ``rows`` in ``connection``'s transaction."""
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            n = len(rows)
            full = n - n % self.rows
            if full:
                statement = self.statement(self.rows)
                cursor.executemany(  # sqlite3 and psycopg take any iterable: one chunk of rows at a time
                    statement.sql,
                    (statement.bind(rows.flat(i, i + self.rows)) for i in range(0, full, self.rows)),  # type: ignore[arg-type]
                )
            if full < n:
                statement = self.statement(n - full)
                cursor.execute(statement.sql, statement.bind(rows.flat(full, n)))
        finally:
            cursor.close()


class DeleteThenInsert:
    """A portable upsert for dialects without one: delete the keys, then insert the rows, in
    the caller's transaction."""

    def __init__(self, table: sa.Table) -> None:
        self.insert = sa.insert(table)
        self.delete = sa.delete(table).where(table.c[KEY].in_(sa.bindparam("keys", expanding=True)))

    def execute(self, connection: sa.Connection, rows: Rows) -> None:
        for start in range(0, len(rows), LOOKUP_CHUNK):
            connection.execute(self.delete, {"keys": rows.keys[start : start + LOOKUP_CHUNK]})
        for start in range(0, len(rows), LOOKUP_CHUNK):
            records = rows.records(start, start + LOOKUP_CHUNK)
            connection.execute(self.insert, [dict(zip(rows.columns, record)) for record in records])


def upsert(
    table: sa.Table, dialect: sa.Dialect, with_fingerprint: bool = True
) -> BulkUpsert | DeleteThenInsert:
    """The fastest statement upsert ``dialect`` offers for ``table`` (for rows with a
    fingerprint, or without one)."""
    if dialect.name in ("sqlite", "postgresql", "mysql", "mariadb"):
        return BulkUpsert(table, dialect, with_fingerprint)
    return DeleteThenInsert(table)


class KeyLookup:
    """``SELECT key, <columns> ... WHERE key IN (...) [AND fingerprint = ...]`` for any number
    of keys (its values: the keys, then the fingerprint), and the one-key form that selects
    the columns alone."""

    def __init__(
        self, table: sa.Table, columns: Sequence[str], with_fingerprint: bool, dialect: sa.Dialect
    ) -> None:
        self.table = table
        self.columns = list(columns)
        self.with_fingerprint = with_fingerprint
        self.dialect = dialect
        self._tail = [FINGERPRINT] if with_fingerprint else []
        repeat = _repeater(self._statement(1), dialect, ["k0", *self._tail], "IN (", 1, ")")
        self.statement = _BySize(repeat or self._compile)
        """The lookup of n keys."""
        columns_or_key = [table.c[c] for c in self.columns] or [table.c[KEY]]  # SELECT needs one
        one = sa.select(*columns_or_key).where(table.c[KEY] == sa.bindparam("k0"))
        self.one = Statement.compile(self._filtered(one), dialect, ["k0", *self._tail])
        """The lookup of one key, without the key column (unless no other is selected)."""

    def _statement(self, count: int) -> Any:
        table = self.table
        statement = sa.select(table.c[KEY], *(table.c[c] for c in self.columns)).where(
            table.c[KEY].in_([sa.bindparam(f"k{i}") for i in range(count)])
        )
        return self._filtered(statement)

    def _filtered(self, statement: Any) -> Any:
        if self.with_fingerprint:
            return statement.where(self.table.c[FINGERPRINT] == sa.bindparam(FINGERPRINT))
        return statement

    def _compile(self, count: int) -> Statement:
        names = [*(f"k{i}" for i in range(count)), *self._tail]
        return Statement.compile(self._statement(count), self.dialect, names)

    def fetch(self, cursor: Any, keys: list[Any], fingerprint: int | None) -> list[Any]:
        """The stored rows (key first) among ``keys``, in no particular order."""
        if not keys:  # no query: ``IN ()`` is not valid everywhere
            return []
        if len(keys) > LOOKUP_CHUNK:
            return [
                row
                for start in range(0, len(keys), LOOKUP_CHUNK)
                for row in self.fetch(cursor, keys[start : start + LOOKUP_CHUNK], fingerprint)
            ]
        statement = self.statement(len(keys))
        cursor.execute(statement.sql, statement.bind([*keys, fingerprint] if self.with_fingerprint else keys))
        return cursor.fetchall()

    def fetch_one(self, cursor: Any, key: Any, fingerprint: int | None) -> list[Any]:
        """The stored row of ``key`` (its columns alone), in a list of at most one."""
        one = self.one
        cursor.execute(one.sql, one.bind([key, fingerprint] if self.with_fingerprint else [key]))
        return cursor.fetchall()
