"""Reading inputs from SQL: a whole query or table, or batches streamed with a server-side cursor."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from megatron.arguments import positive_int
from megatron.errors import DataError, SourceError
from megatron.io.batch import Batch
from megatron.io.frames import ColumnSelection, Groups
from megatron.io.schema import inputs_from_batch
from megatron.io.sources import BatchSource
from megatron.nodes import Input
from megatron_sql.connections import Database, open_database

_TABLE_NAME = re.compile(r"^[^\s;()]+$")


def _statement(db: Database, query_or_table: str | sa.Executable) -> sa.Executable:
    """A table name becomes ``SELECT *`` from the reflected table; anything else is the user's
    query as written (parameters are bound, never formatted in)."""
    if not isinstance(query_or_table, str):
        return query_or_table
    if _TABLE_NAME.match(query_or_table):
        with db.transaction(write=False) as conn:
            if sa.inspect(conn).has_table(query_or_table):
                return sa.select(sa.Table(query_or_table, sa.MetaData(), autoload_with=conn))
    return sa.text(query_or_table)


def _column(values: list[Any]) -> np.ndarray:
    """A result column as an array of its database type: ints stay ints (floats with NaN where
    NULL), floats floats, booleans booleans, text str."""
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    if not present:
        return np.full(len(values), np.nan)
    if kinds <= {bool}:
        return np.array(values, dtype=bool) if len(present) == len(values) else np.array(values, dtype=object)
    if kinds <= {int}:
        if len(present) == len(values):
            return np.array(values, dtype=np.int64)
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if kinds <= {int, float}:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if kinds <= {str}:
        return np.array(values, dtype=str) if len(present) == len(values) else np.array(values, dtype=object)
    return np.array(values, dtype=object)


_WHERE = "the query's result"


def _batch(columns: Sequence[str], rows: Sequence[Any], selection: ColumnSelection, start: int = 0) -> Batch:
    """Rows of a result as a :class:`Batch`, selected like the columns of a DataFrame; rows
    are numbered from ``start`` unless the selection names an index column."""
    names = list(columns)
    values = list(zip(*rows)) if rows else [() for _ in names]
    arrays = {name: _column(list(column)) for name, column in zip(names, values)}
    return selection.batch(
        names,
        arrays.__getitem__,
        lambda group: np.column_stack([arrays[c] for c in group]),
        lambda: np.arange(start, start + len(rows)),
        _WHERE,
    )


def SQLData(
    connection: Any,
    query_or_table: str | sa.Executable,
    params: Mapping[str, Any] | None = None,
    *,
    exclude_cols: Sequence[str] = (),
    groups: Groups | None = None,
    index_col: str | None = None,
) -> Batch:
    """The result of a query (or every row of a table) as input arrays.

    ``connection`` is a SQLAlchemy URL, Engine or Connection, or a ``sqlite3.Connection``;
    on a connection with a transaction open, the query sees it (uncommitted rows included) and
    the transaction stays open. ``params`` are bound to the query's ``:name`` placeholders.

    Example::

        data = SQLData('sqlite:///shop.db', 'SELECT * FROM orders WHERE year = :year', {'year': 2026})
    """
    db = open_database(connection)
    try:
        statement = _statement(db, query_or_table)
        with db.transaction(write=False) as conn:
            result = conn.execute(statement, dict(params or {}))
            columns, rows = list(result.keys()), result.fetchall()
    except sa.exc.DBAPIError as exc:
        raise SourceError(f"The query failed: {exc.orig}") from exc
    finally:
        db.close()
    return _batch(columns, rows, ColumnSelection(exclude_cols, groups, index_col))


class SQLGenerator(BatchSource):
    """A query's result in batches of ``batch_size`` rows, streamed with a server-side cursor
    (the query runs as written, once per pass; nothing is appended to it).

    Example::

        pipeline.fit_generator(SQLGenerator(engine, 'SELECT * FROM events', batch_size=10_000))
    """

    def __init__(
        self,
        connection: Any,
        query: str | sa.Executable,
        batch_size: int,
        params: Mapping[str, Any] | None = None,
        *,
        exclude_cols: Sequence[str] = (),
        groups: Groups | None = None,
        index_col: str | None = None,
        repeat: bool = False,
    ) -> None:
        super().__init__(batch_size, repeat)
        self._db = open_database(connection)
        self.engine = self._db.engine
        self.statement = _statement(self._db, query)
        self.params = dict(params or {})
        self.selection = ColumnSelection(exclude_cols, groups, index_col)

    def one_pass(self) -> Iterator[Batch]:
        start = 0
        try:
            with self._db.transaction(write=False) as conn:
                result = conn.execution_options(yield_per=self.batch_size).execute(
                    self.statement, self.params
                )
                columns = list(result.keys())
                for rows in result.partitions(self.batch_size):
                    yield _batch(columns, rows, self.selection, start)
                    start += len(rows)
        except sa.exc.DBAPIError as exc:
            raise SourceError(f"The query failed: {exc.orig}") from exc


def from_sql(
    connection: Any,
    query_or_table: str | sa.Executable,
    params: Mapping[str, Any] | None = None,
    *,
    exclude_cols: Sequence[str] = (),
    groups: Groups | None = None,
    index_col: str | None = None,
    sample_rows: int = 1000,
) -> dict[str, Input]:
    """Inputs for the columns of a query's result, inferred from its first ``sample_rows`` rows.

    Example::

        inputs = from_sql(engine, 'SELECT age, income FROM customers')
    """
    positive_int(sample_rows, "sample_rows", error=DataError)
    selection = ColumnSelection(exclude_cols, groups, index_col)
    db = open_database(connection)
    try:
        statement = _statement(db, query_or_table)
        with db.transaction(write=False) as conn:
            result = conn.execution_options(yield_per=sample_rows).execute(statement, dict(params or {}))
            columns, rows = list(result.keys()), result.fetchmany(sample_rows)
            result.close()
    finally:
        db.close()
    return inputs_from_batch(_batch(columns, rows, selection), selection.groups)
