"""Bulk writes to PostgreSQL through ``COPY`` (psycopg 3), with the upsert's semantics.

A write of at least ``SQLStorage(copy_threshold=...)`` rows (:data:`COPY_THRESHOLD` by default)
sends its rows with one binary ``COPY``, in the write's transaction, in ascending key order:

- where no stored row seems to share a key with the write (for int keys: none between the
  write's smallest and largest key; for str keys: none among a sample of the write's keys),
  straight into the table, inside a savepoint. A stored row with one of the keys (one that
  another writer stored meanwhile, or one the sample missed) makes that ``COPY`` fail on the
  primary key: the savepoint is rolled back (nothing of it remains) and the write takes the
  second way;
- otherwise into a temporary table (dropped at the end of the write), from which one
  ``INSERT ... SELECT ... ORDER BY key ON CONFLICT (key) DO UPDATE`` stores the rows, as the
  statement path's multi-row upserts do.

Either way the write is one upsert of all its rows or none, whose rows lock in key order, in
the caller's transaction where megatron joins one (see ``megatron_sql.connections``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from megatron_sql import copy_format
from megatron_sql.schema import FINGERPRINT, KEY
from megatron_sql.statements import Rows

COPY_THRESHOLD = 2_000
"""The fewest rows a write to PostgreSQL sends through ``COPY``. Below a thousand rows or so
both ways take about as long (the commit dominates), and each write through a temporary table
adds and removes rows of the system catalogs, which small frequent writes need not pay for."""
COPY_CHUNK = 10_000  # rows encoded at a time
SAMPLED_KEYS = 64  # str keys looked up to decide whether to copy straight into the table
TEMPORARY = "megatron_rows"
UNIQUE_VIOLATION = "23505"
_COPY_TYPES = {
    sa.BigInteger: "int8",
    sa.Integer: "int8",
    sa.Double: "float8",
    sa.Boolean: "bool",
    sa.LargeBinary: "bytea",
    sa.String: "text",  # VARCHAR(255) and TEXT take text's binary form
}


def copies(dialect: sa.Dialect) -> bool:
    """Whether writes on ``dialect`` can go through :class:`CopyUpsert` (PostgreSQL with
    psycopg 3)."""
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def _copy_type(column: sa.Column[Any]) -> str:
    for kind, name in _COPY_TYPES.items():
        if isinstance(column.type, kind):
            return name
    raise TypeError(f"no COPY type for column {column.name!r} of type {column.type}")  # pragma: no cover


class CopyUpsert:
    """The upsert of a write's rows through ``COPY``: see the module's description. Built once
    per table, for rows with a fingerprint or without one (left to the column's NULL)."""

    def __init__(self, table: sa.Table, dialect: sa.Dialect, with_fingerprint: bool) -> None:
        quote = dialect.identifier_preparer.quote
        self.columns = [c.name for c in table.columns if with_fingerprint or c.name != FINGERPRINT]
        self.types = [_copy_type(table.c[c]) for c in self.columns]
        names = ", ".join(quote(c) for c in self.columns)
        target = dialect.identifier_preparer.format_table(table)
        self.copy_into_table = f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)"
        self.copy_into_temporary = f"COPY pg_temp.{TEMPORARY} ({names}) FROM STDIN (FORMAT BINARY)"
        self.create_temporary = f"CREATE TEMPORARY TABLE {TEMPORARY} (LIKE {target}) ON COMMIT DROP"
        self.drop_temporary = f"DROP TABLE pg_temp.{TEMPORARY}"
        temporary = sa.Table(
            TEMPORARY, sa.MetaData(), *(sa.Column(c.name, c.type) for c in table.columns), schema="pg_temp"
        )
        rows = sa.select(*(temporary.c[c] for c in self.columns)).order_by(temporary.c[KEY])
        insert = postgresql.insert(table).from_select(self.columns, rows)
        cleared = {} if with_fingerprint else {FINGERPRINT: sa.null()}
        others = {c: insert.excluded[c] for c in self.columns if c != KEY}
        self.upsert = str(
            insert.on_conflict_do_update(index_elements=[KEY], set_={**cleared, **others}).compile(
                dialect=dialect
            )
        )
        key = table.c[KEY]
        between = sa.select(key).where(key.between(sa.bindparam("low"), sa.bindparam("high")))
        self.stored_between = sa.select(between.exists())
        self.stored_among = sa.select(
            sa.select(key).where(key.in_(sa.bindparam("keys", expanding=True))).exists()
        )

    def execute(self, connection: sa.Connection, rows: Rows) -> None:
        """Write ``rows`` (in ascending key order) in ``connection``'s transaction."""
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if not self._may_share_keys(connection, rows) and self._copy_straight(connection, cursor, rows):
                return
            cursor.execute(self.create_temporary)
            self._copy(cursor, self.copy_into_temporary, rows)
            cursor.execute(self.upsert)
            cursor.execute(self.drop_temporary)
        finally:
            cursor.close()

    def _may_share_keys(self, connection: sa.Connection, rows: Rows) -> bool:
        """Whether a stored row may have one of the keys of ``rows``: for int keys, whether one
        lies between the smallest and the largest; for str keys (whose order the database's
        collation decides), whether one of :data:`SAMPLED_KEYS` spread over them is stored. A
        write that shares keys the sample misses still stores its rows right: its straight
        ``COPY`` fails, and the temporary table takes them."""
        keys = rows.keys
        if isinstance(keys[0], int):
            return bool(connection.execute(self.stored_between, {"low": keys[0], "high": keys[-1]}).scalar())
        sample = keys[:: max(1, len(keys) // SAMPLED_KEYS)] + keys[-1:]
        return bool(connection.execute(self.stored_among, {"keys": sample}).scalar())

    def _copy_straight(self, connection: sa.Connection, cursor: Any, rows: Rows) -> bool:
        """``COPY`` the rows into the table, in a savepoint; False (the savepoint rolled back)
        where a row of another writer holds one of their keys."""
        try:
            with connection.begin_nested():
                self._copy(cursor, self.copy_into_table, rows)
        except Exception as error:
            if getattr(error, "sqlstate", None) == UNIQUE_VIOLATION:
                return False
            raise
        return True

    def _copy(self, cursor: Any, sql: str, rows: Rows) -> None:
        with cursor.copy(sql) as copy:
            if copy_format.fixed_width(rows):  # laid out by numpy, a chunk at a time
                copy.write(copy_format.SIGNATURE)
                for start in range(0, len(rows), COPY_CHUNK):
                    copy.write(copy_format.encode(rows, start, start + COPY_CHUNK))
                copy.write(copy_format.TRAILER)
                return
            copy.set_types(self.types)
            write_row = copy.write_row
            for start in range(0, len(rows), COPY_CHUNK):
                for record in rows.records(start, start + COPY_CHUNK):
                    write_row(record)
