"""``SQLStorage``: a pipeline's outputs in a table of any SQLAlchemy database."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import attrs
import numpy as np
import sqlalchemy as sa

from megatron.errors import StorageError, UnknownOutputError
from megatron.outputs import Outputs
from megatron.storage import Key, Storage, checked_write, lookup_keys
from megatron_sql.connections import open_database
from megatron_sql.schema import KEY, OutputColumn, TableSpec, fingerprint_value, metadata_table, table_name
from megatron_sql.statements import LOOKUP_CHUNK, KeyLookup, Rows, upsert

SCHEMA_LOCK = int(hashlib.sha256(b"megatron schema").hexdigest()[:15], 16)
ONE_FOUND, NONE_FOUND = np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
ONE_FOUND.flags.writeable = NONE_FOUND.flags.writeable = False  # shared by every one-row lookup


class SQLStorage(Storage):
    """The outputs of pipeline ``name``/``version`` in one table of a SQL database.

    ``target`` is a SQLAlchemy URL, Engine or Connection, or a ``sqlite3.Connection``. On a
    connection of yours, megatron never commits or rolls back a transaction it did not open:
    its writes join your open transaction, or commit on their own where none is open (see
    ``megatron_sql.connections``). Opened from a URL, the storage pickles as the URL. A write
    whose outputs differ from the existing table's is refused unless ``overwrite=True``, which
    replaces the table. A SQLite file opened from a URL is in WAL mode and flushes commits at
    checkpoints: a killed process loses nothing committed, a power cut may lose the last
    commits; ``durable=True`` flushes every commit. Statements are built by SQLAlchemy once per
    shape (see ``megatron_sql.statements``) and run on the DB-API cursor with bound parameters.

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
    ) -> None:
        self._setup(target, name, version, overwrite, durable)
        self._load()

    def _setup(self, target: Any, name: str, version: str | None, overwrite: bool, durable: bool) -> None:
        """Everything but the table's description, which is read on first use."""
        if not isinstance(name, str):
            raise StorageError(f"A pipeline's name is a string; got {name!r}.")
        self.name = name
        self.version = None if version is None else str(version)  # as Pipeline names versions
        self.overwrite = overwrite
        self._durable = durable
        self._db = open_database(target, durable=durable)
        self.engine = self._db.engine
        self.table_name = table_name(name, self.version)
        self._metadata = sa.MetaData()
        self._registry = metadata_table(self._metadata)
        self._lock = threading.RLock()
        self._upsert: Any = None
        self._plans: dict[Any, _ReadPlan] = {}
        self._spec: TableSpec | None = None
        self._registered_row: Any = None
        self._table: sa.Table | None = None
        self._provisional = False
        """Whether the description was read inside a caller's transaction, which may still
        roll it back: it is then read again at the next operation."""

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
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        # no connection until the first read or write
        self._setup(state["url"], state["name"], state["version"], state["overwrite"], state["durable"])

    @classmethod
    def open(cls, url: str, name: str, version: str | None) -> SQLStorage:
        return cls(url, name, version)

    # -- schema ----------------------------------------------------------------------------------
    def _load(self) -> None:
        """Read the table's description, if a process ever wrote it."""
        try:
            with self._db.transaction(write=False) as conn:
                registered = sa.inspect(conn).has_table(self._registry.name)
                row = conn.execute(self._registered()).first() if registered else None
        except Exception as exc:
            raise self._storage_error(exc, "read the description of its table") from exc
        self._registered_row = row
        if row is None:
            if self._spec is not None:  # made in a caller's transaction that rolled back
                self._forget()
            return
        self.table_name = row.table_name  # tables made before the current naming keep theirs
        spec = TableSpec.from_row(row)
        if spec != self._spec:
            self._use(spec)
        self._provisional = self._db.joins_caller()

    def _storage_error(self, exc: Exception, what: str) -> Exception:
        """A database error as a :class:`StorageError` saying what failed; other errors as
        they are."""
        error = self._db.driver_error(exc)
        if error is None:
            return exc
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return StorageError(
            f"Storage of pipeline {self.name!r} could not {what} at {self._db.where()}: {reason}"
        )

    def _forget(self) -> None:
        self._spec = self._table = self._upsert = None
        self._plans = {}
        self._provisional = False

    def _registered(self) -> sa.Select[Any]:
        """The description of this pipeline's table: found by the exact name and version, never
        by a table name that another pair could share."""
        registry = self._registry
        return sa.select(registry).where(registry.c.pipeline == self.name, registry.c.version == self.version)

    def _use(self, spec: TableSpec) -> None:
        self._metadata = sa.MetaData()
        self._registry = metadata_table(self._metadata)
        self._spec, self._table = spec, spec.build(self._metadata)
        self._upsert = None
        self._plans = {}
        self._provisional = self._db.joins_caller()

    def _create(self, spec: TableSpec, replace: bool) -> None:
        """Create the table and its description, once, whichever process gets there first."""
        for attempt in range(3):
            try:
                self._create_once(spec, replace)
                return
            except sa.exc.DBAPIError as error:
                # Another process created the same table at the same moment: use theirs.
                self._load()
                if self._spec is not None and not replace:
                    return
                if attempt == 2:
                    raise StorageError(
                        f"Cannot create table {spec.table!r} for pipeline {self.name!r} version "
                        f"{self.version!r}: {error.orig}"
                    ) from error

    def _create_once(self, spec: TableSpec, replace: bool) -> None:
        with self._db.transaction(write=True) as conn:
            if conn.dialect.name == "postgresql":  # serialise schema changes, as BEGIN IMMEDIATE does
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": SCHEMA_LOCK})
            self._registry.create(conn, checkfirst=True)
            existing = conn.execute(self._registered()).first()
            if existing is not None and not replace:
                spec = TableSpec.from_row(existing)
            else:
                if existing is not None:
                    # A replaced table gets a new name, so that a storage still holding the old
                    # description (in another process) fails to find it instead of misreading it.
                    TableSpec.from_row(existing).build(sa.MetaData()).drop(conn, checkfirst=True)
                    conn.execute(
                        sa.delete(self._registry).where(self._registry.c.table_name == existing.table_name)
                    )
                    spec = attrs.evolve(
                        spec, table=f"{table_name(self.name, self.version)}_{secrets.token_hex(2)}"
                    )
                self._check_unclaimed(conn, spec.table)
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
            row = conn.execute(self._registered()).first()
        self._use(spec)
        self._registered_row = row

    def _check_unclaimed(self, conn: sa.Connection, table: str) -> None:
        """Refuse to replace a table that the metadata gives to another pipeline (compared
        without case: SQLite's table names ignore it)."""
        registry = self._registry
        owners = conn.execute(
            sa.select(registry.c.pipeline, registry.c.version).where(
                sa.func.lower(registry.c.table_name) == table.lower()
            )
        ).all()
        others = [(p, v) for p, v in owners if (p, v) != (self.name, self.version)]
        if others:
            raise StorageError(
                f"Cannot create table {table!r} for pipeline {self.name!r} version {self.version!r}: it holds "
                f"the outputs of pipeline {others[0][0]!r} version {others[0][1]!r}. Use another name or version."
            )

    # -- writing ---------------------------------------------------------------------------------
    def write(
        self,
        index: Sequence[Key] | np.ndarray,
        outputs: Outputs | dict[str, np.ndarray],
        fingerprint: str | None = None,
        *,
        replaced: bool = False,
    ) -> None:
        current = self._current_spec()
        write = checked_write(index, outputs, None if current is None else current.int_keys)
        if current is None and not write.keys:
            return  # no rows, and no table yet: nothing to decide the key type by
        wanted = TableSpec(
            self.name,
            self.version,
            self.table_name,
            write.int_keys,
            tuple(OutputColumn.for_array(n, i, a) for i, (n, a) in enumerate(zip(write.names, write.arrays))),
        )
        with self._lock:
            if self._spec is None:
                self._create(wanted, replace=False)
            if self._spec is not None and self._spec.schema != wanted.schema:
                if not self.overwrite:
                    raise StorageError(
                        f"Table {self.table_name!r} holds outputs {self._spec.summary()}; this write has "
                        f"{wanted.summary()}. Use another pipeline name or version, or "
                        "SQLStorage(..., overwrite=True) to replace the table."
                    )
                self._create(wanted, replace=True)
            spec = self._spec
            assert spec is not None
            if spec.int_keys != write.int_keys:  # another process made the table meanwhile
                write = checked_write(index, outputs, spec.int_keys)
            by_name = dict(zip(write.names, write.arrays))  # outputs may come in any order
            keys, arrays = _in_key_order(write.keys, [by_name[o.name] for o in spec.outputs])
            rows = Rows(keys, fingerprint_value(fingerprint), list(zip(spec.outputs, arrays)))
            if self._upsert is None:
                assert self._table is not None
                self._upsert = upsert(self._table, self.engine.dialect)
            if not len(rows):
                return
            statement = self._upsert

            def run(conn: sa.Connection) -> None:  # one transaction: all rows or none
                if conn.execute(self._registered()).first() != self._registered_row:
                    raise _Replaced  # by another storage since this one read the description
                statement.execute(conn, rows)

            try:
                self._db.write(run, f"write {len(rows)} rows to table {spec.table!r}")
            except _Replaced:
                self._load()
                if replaced:
                    raise StorageError(
                        f"Could not write to the table of pipeline {self.name!r} version {self.version!r}: "
                        "other writers keep replacing it."
                    ) from None
                self.write(index, outputs, fingerprint, replaced=True)

    # -- reading ---------------------------------------------------------------------------------
    def _current_spec(self) -> TableSpec | None:
        if self._spec is None or self._provisional:
            with self._lock:
                if self._spec is None or self._provisional:
                    self._load()
        return self._spec

    def _plan(self, selection: tuple[str, ...] | None, with_fingerprint: bool) -> _ReadPlan | None:
        """How to look up the outputs ``selection`` (all when None), built once per selection;
        None while the table does not exist."""
        spec = self._current_spec()
        if spec is None or self._table is None:
            return None
        names = [o.name for o in spec.outputs]
        selected = tuple(names) if selection is None else selection
        unknown = [c for c in selected if c not in spec.by_name]
        if unknown:
            raise UnknownOutputError(f"Table {self.table_name!r} has no outputs {unknown}; it holds {names}.")
        columns = tuple(spec.by_name[c] for c in selected)
        lookup = KeyLookup(self._table, [c.column for c in columns], with_fingerprint, self.engine.dialect)
        plan = _ReadPlan(selected, columns, int if spec.int_keys else str, lookup)
        self._plans[(selection, with_fingerprint)] = plan
        return plan

    def lookup(
        self, rows: Iterable[Key], cols: Iterable[str] | None = None, fingerprint: str | None = None
    ) -> tuple[np.ndarray, Outputs]:
        try:
            return self._lookup(rows, cols, fingerprint)
        except Exception as exc:
            if self._db.driver_error(exc) is None:
                raise
            known = self._spec
            self._load()
            if self._spec is not None and self._spec != known:  # replaced meanwhile: read the new table
                return self._lookup(rows, cols, fingerprint)
            raise self._storage_error(exc, f"read table {self.table_name!r}") from exc

    def _lookup(
        self, rows: Iterable[Key], cols: Iterable[str] | None, fingerprint: str | None
    ) -> tuple[np.ndarray, Outputs]:
        selection = None if cols is None else tuple(cols)
        with_fingerprint = fingerprint is not None
        if self._provisional:
            self._current_spec()
        plan = self._plans.get((selection, with_fingerprint)) or self._plan(selection, with_fingerprint)
        if plan is None:  # nothing was ever written
            names = selection or ()
            return np.empty(0, dtype=np.int64), Outputs(names, [np.empty(0) for _ in names], np.empty(0))
        keys = lookup_keys(rows, plan.key_type is int)[1]
        # keys that no row can have (None) are asked for and never found
        query = [k for k in keys if k is not None] if None in keys else keys
        with self._db.reader() as cursor:
            if len(keys) == 1:  # the one-row lookup: no key column, nothing to match
                fetched = (
                    plan.lookup.fetch_one(cursor, keys[0], fingerprint_value(fingerprint)) if query else []
                )
                positions = ONE_FOUND if fetched else NONE_FOUND
                return positions, plan.outputs(fetched, None, keys[: len(fetched)], keyed=False)
            fetched = plan.lookup.fetch(cursor, query, fingerprint_value(fingerprint))
        positions, order = _match(keys, [row[0] for row in fetched])
        found = np.asarray(keys)[positions] if query is keys else np.asarray([keys[p] for p in positions])
        return positions, plan.outputs(fetched, order, found)

    def keys(self) -> list[Key]:
        self._current_spec()
        if self._table is None:
            return []
        table = self._table
        try:
            with self._db.transaction(write=False) as conn:
                return list(conn.execute(sa.select(table.c[KEY]).order_by(table.c[KEY])).scalars())
        except Exception as exc:
            raise self._storage_error(exc, f"list the keys of table {self.table_name!r}") from exc

    def __contains__(self, key: Any) -> bool:
        return len(self.lookup([key], cols=[])[0]) == 1

    def delete(self, rows: Iterable[Key]) -> None:
        spec = self._current_spec()
        if self._table is None or spec is None:
            return
        keys = sorted({k for k in lookup_keys(rows, spec.int_keys)[1] if k is not None})  # in lock order
        table = self._table

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


class _Replaced(Exception):
    """The table's description changed since this storage read it."""


@attrs.frozen
class _ReadPlan:
    """A lookup of some outputs: their names, columns, key type and compiled statements."""

    names: tuple[str, ...]
    columns: tuple[OutputColumn, ...]
    key_type: type
    lookup: KeyLookup
    table_dtype: np.dtype | None = attrs.field(init=False)
    """The one numeric dtype of every selected column, if they share one."""
    key_converts: bool = attrs.field(init=False)
    """Whether the key converts to ``table_dtype`` too (any int64 does to int64, bool and
    floats of 32 bits or more), so that whole rows convert at once."""

    @table_dtype.default
    def _common_numeric_dtype(self) -> np.dtype | None:
        dtypes = {c.dtype for c in self.columns}
        if len(dtypes) != 1 or any(c.is_raw for c in self.columns):
            return None
        dtype = self.columns[0].dtype
        if dtype in ("str", "bytes", "<u8"):  # uint64 is stored as the int64 of its bits
            return None
        return np.dtype(dtype)

    @key_converts.default
    def _key_converts(self) -> bool:
        dtype = self.table_dtype
        return (
            self.key_type is int
            and dtype is not None
            and (dtype == np.int64 or dtype.kind == "b" or (dtype.kind == "f" and dtype.itemsize >= 4))
        )

    def outputs(self, rows: list[Any], order: np.ndarray | None, index: Any, keyed: bool = True) -> Outputs:
        """The outputs in result rows (the key first where ``keyed``, then the selected
        columns), taken in ``order`` (as they come when None)."""
        first = 1 if keyed else 0
        if rows and self.table_dtype is not None:
            # one conversion for the whole table (a key that converts too is dropped after)
            if first and not self.key_converts:
                rows, first = [row[1:] for row in rows], 0
            width = len(rows[0])
            table = np.fromiter(chain.from_iterable(rows), self.table_dtype, len(rows) * width)
            table = table.reshape(len(rows), width)[:, first:] if first else table.reshape(len(rows), width)
            return Outputs.from_table(self.names, table if order is None else table[order], index)
        values = list(zip(*rows))[first:] if rows else [() for _ in self.columns]
        arrays = [column.decode(list(v)) for column, v in zip(self.columns, values)]
        return Outputs(self.names, arrays if order is None else [array[order] for array in arrays], index)


def _match(keys: list[Any], found: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The positions in ``keys`` that were found, and for each, its row's position in
    ``found``."""
    where = dict(zip(found, range(len(found))))
    order = list(map(where.get, keys))
    if None not in order:  # every key found
        return np.arange(len(keys)), np.array(order, dtype=np.intp)
    positions = [i for i, o in enumerate(order) if o is not None]
    return np.array(positions, dtype=np.int64), np.array([order[i] for i in positions], dtype=np.intp)


def _in_key_order(keys: list[Any], arrays: list[np.ndarray]) -> tuple[list[Any], list[np.ndarray]]:
    """A write's rows in ascending key order, so that every writer locks the rows it replaces
    in one order: two writes of overlapping keys then wait for each other instead of
    deadlocking. A write's keys are distinct, so their order changes nothing that is stored."""
    if len(keys) < 2:
        return keys, arrays
    array = np.asarray(keys)  # int64 or str: a write's keys are all ints or all strings
    if bool((array[1:] > array[:-1]).all()):
        return keys, arrays
    order = np.argsort(array, kind="stable")
    return [keys[i] for i in order.tolist()], [a[order] for a in arrays]
