"""The table of one pipeline name and version, as this process knows it: its description read
from the metadata table, created once whichever process gets there first, and replaced when a
write's outputs differ and the storage may overwrite."""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import Any

import attrs
import sqlalchemy as sa

from megatron.errors import StorageError
from megatron_sql.connections import Database
from megatron_sql.schema import TableSpec, metadata_table, table_name

SCHEMA_LOCK = int(hashlib.sha256(b"megatron schema").hexdigest()[:15], 16)


class PipelineTable:
    """The description of pipeline ``name``/``version``'s table (:attr:`spec`, None until a
    process writes it), the SQLAlchemy table it describes, and the statements built for it
    (:attr:`statements`, dropped whenever the description changes)."""

    def __init__(self, db: Database, name: str, version: str | None) -> None:
        self.db = db
        self.name = name
        self.version = version
        self.table_name = table_name(name, version)
        self.lock = threading.RLock()
        self.spec: TableSpec | None = None
        self.table: sa.Table | None = None
        self.statements: dict[Any, Any] = {}
        """What readers and writers built for the current table, by what they call it."""
        self.provisional = False
        """Whether the description was read inside a caller's transaction, which may still
        roll it back: it is then read again at the next operation."""
        self._registered_row: Any = None
        self._metadata = sa.MetaData()
        self._registry = metadata_table(self._metadata)

    def current(self) -> TableSpec | None:
        """The table's description, read when not known yet (or known provisionally)."""
        if self.spec is None or self.provisional:
            with self.lock:
                if self.spec is None or self.provisional:
                    self.load()
        return self.spec

    def load(self) -> None:
        """Read the table's description, if a process ever wrote it."""
        try:
            with self.db.transaction(write=False) as conn:
                registered = sa.inspect(conn).has_table(self._registry.name)
                row = conn.execute(self._registered()).first() if registered else None
        except Exception as exc:
            raise self.error(exc, "read the description of its table") from exc
        self._registered_row = row
        if row is None:
            if self.spec is not None:  # made in a caller's transaction that rolled back
                self._forget()
            return
        self.table_name = row.table_name  # tables made before the current naming keep theirs
        spec = TableSpec.from_row(row)
        if spec != self.spec:
            self._use(spec)
        self.provisional = self.db.joins_caller()

    def unchanged(self, conn: sa.Connection) -> bool:
        """Whether the description in the database is still the one this process read."""
        return conn.execute(self._registered()).first() == self._registered_row

    def error(self, exc: Exception, what: str) -> Exception:
        """A database error as a :class:`StorageError` saying what failed; other errors as
        they are."""
        error = self.db.driver_error(exc)
        if error is None:
            return exc
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return StorageError(
            f"Storage of pipeline {self.name!r} could not {what} at {self.db.where()}: {reason}"
        )

    def _forget(self) -> None:
        self.spec = self.table = None
        self.statements = {}
        self.provisional = False

    def _registered(self) -> sa.Select[Any]:
        """The description of this pipeline's table: found by the exact name and version, never
        by a table name that another pair could share."""
        registry = self._registry
        return sa.select(registry).where(registry.c.pipeline == self.name, registry.c.version == self.version)

    def _use(self, spec: TableSpec) -> None:
        self._metadata = sa.MetaData()
        self._registry = metadata_table(self._metadata)
        self.spec, self.table = spec, spec.build(self._metadata)
        self.statements = {}
        self.provisional = self.db.joins_caller()

    # -- creating ----------------------------------------------------------------------------
    def ensure(self, wanted: TableSpec, overwrite: bool) -> TableSpec:
        """The table a write of ``wanted``'s outputs goes to: created if there is none,
        replaced (with ``overwrite``) if its outputs differ, refused otherwise. Call it
        holding :attr:`lock`."""
        if self.spec is None:
            self._create(wanted, replace=False)
        if self.spec is not None and self.spec.schema != wanted.schema:
            if not overwrite:
                raise StorageError(
                    f"Table {self.table_name!r} holds outputs {self.spec.summary()}; this write has "
                    f"{wanted.summary()}. Use another pipeline name or version, or "
                    "SQLStorage(..., overwrite=True) to replace the table."
                )
            self._create(wanted, replace=True)
        assert self.spec is not None
        return self.spec

    def _create(self, spec: TableSpec, replace: bool) -> None:
        """Create the table and its description, once, whichever process gets there first."""
        for attempt in range(3):
            try:
                self._create_once(spec, replace)
                return
            except sa.exc.DBAPIError as error:
                # Another process created the same table at the same moment: use theirs.
                self.load()
                if self.spec is not None and not replace:
                    return
                if attempt == 2:
                    raise StorageError(
                        f"Cannot create table {spec.table!r} for pipeline {self.name!r} version "
                        f"{self.version!r}: {error.orig}"
                    ) from error

    def _create_once(self, spec: TableSpec, replace: bool) -> None:
        with self.db.transaction(write=True) as conn:
            if conn.dialect.name == "postgresql":  # serialise schema changes, as BEGIN IMMEDIATE does
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": SCHEMA_LOCK})
            self._registry.create(conn, checkfirst=True)
            existing = conn.execute(self._registered()).first()
            if existing is not None and not replace:
                spec = TableSpec.from_row(existing)
            else:
                if existing is not None:
                    spec = self._drop_replaced(conn, existing, spec)
                self._check_unclaimed(conn, spec.table)
                table = spec.build(sa.MetaData())
                table.drop(conn, checkfirst=True)
                table.create(conn)
                self._register(conn, spec)
            row = conn.execute(self._registered()).first()
        self._use(spec)
        self._registered_row = row

    def _drop_replaced(self, conn: sa.Connection, existing: Any, spec: TableSpec) -> TableSpec:
        """Drop the table described by ``existing``, and give its replacement a new name, so
        that a storage still holding the old description (in another process) fails to find it
        instead of misreading it."""
        TableSpec.from_row(existing).build(sa.MetaData()).drop(conn, checkfirst=True)
        conn.execute(sa.delete(self._registry).where(self._registry.c.table_name == existing.table_name))
        return attrs.evolve(spec, table=f"{table_name(self.name, self.version)}_{secrets.token_hex(2)}")

    def _register(self, conn: sa.Connection, spec: TableSpec) -> None:
        registry = self._registry
        conn.execute(sa.delete(registry).where(registry.c.table_name == spec.table))
        conn.execute(
            sa.insert(registry).values(
                table_name=spec.table,
                pipeline=spec.pipeline,
                version=spec.version,
                int_keys=spec.int_keys,
                outputs=spec.describe(),
            )
        )

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
