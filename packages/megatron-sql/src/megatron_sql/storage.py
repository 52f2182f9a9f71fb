"""``SQLStorage``: a pipeline's outputs in a table of any SQLAlchemy database."""

from __future__ import annotations

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
from megatron_sql.schema import FINGERPRINT, KEY, OutputColumn, TableSpec, metadata_table, table_name

LOOKUP_CHUNK = 5_000  # keys per IN (...) clause, well under every dialect's parameter limit


class SQLStorage(Storage):
    """The outputs of pipeline ``name``/``version`` in one table of a SQL database.

    ``target`` is a SQLAlchemy URL, Engine or Connection, or a ``sqlite3.Connection``. A write
    whose outputs differ from the existing table's is refused unless ``overwrite=True``, which
    replaces the table. Every statement uses bound parameters.

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
        self._lock = threading.Lock()
        self._statements: dict[Any, Any] = {}
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

    def _create(self, spec: TableSpec) -> None:
        """Create the table and its description (once, whichever process gets there first)."""
        with self.engine.connect() as conn:
            conn.info["megatron_write"] = True
            with conn.begin():
                self._registry.create(conn, checkfirst=True)
                existing = conn.execute(
                    sa.select(self._registry).where(self._registry.c.table_name == spec.table)
                ).first()
                if existing is not None and not self.overwrite:
                    spec = TableSpec.from_row(existing)
                else:
                    metadata = sa.MetaData()
                    table = spec.build(metadata)
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

    def _spec_for(self, names: Sequence[str], arrays: Sequence[np.ndarray], int_keys: bool) -> TableSpec:
        outputs = tuple(OutputColumn.for_array(n, i, a) for i, (n, a) in enumerate(zip(names, arrays)))
        return TableSpec(self.name, self.version, self.table_name, int_keys, outputs)

    # -- writing ---------------------------------------------------------------------------------
    def write(
        self,
        index: Sequence[Key] | np.ndarray,
        outputs: Outputs | dict[str, np.ndarray],
        fingerprint: str | None = None,
    ) -> None:
        keys = np.asarray(index).tolist()
        names = list(outputs)
        arrays = [np.asarray(outputs[n]) for n in names]
        for name, array in zip(names, arrays):
            if len(array) != len(keys):
                raise StorageError(f"Cannot store output {name!r}: {len(array)} rows for {len(keys)} keys.")
        if len(set(keys)) != len(keys):
            raise StorageError("Cannot store rows: the index holds duplicate keys.")
        with self._lock:
            wanted = self._spec_for(names, arrays, all(isinstance(k, int) for k in keys))
            if self._spec is None:
                self._create(wanted)
            spec = self._spec
            assert spec is not None
            if [(o.name, o.dtype, o.shape) for o in spec.outputs] != [
                (o.name, o.dtype, o.shape) for o in wanted.outputs
            ]:
                if not self.overwrite:
                    raise StorageError(
                        f"Table {self.table_name!r} holds outputs {_describe(spec)}; this write has "
                        f"{_describe(wanted)}. Use another pipeline name or version, or "
                        "SQLStorage(..., overwrite=True) to replace the table."
                    )
                self._create(
                    TableSpec(self.name, self.version, self.table_name, wanted.int_keys, wanted.outputs)
                )
                spec = self._spec
                assert spec is not None
            rows = self._rows(spec, keys, arrays, fingerprint)
            with self.engine.connect() as conn:
                conn.info["megatron_write"] = True
                with conn.begin():  # one transaction: all rows or none
                    if rows:
                        _execute_upsert(conn, self._upsert_statement(conn.dialect.name), rows)

    def _rows(
        self, spec: TableSpec, keys: list[Any], arrays: list[np.ndarray], fingerprint: str | None
    ) -> list[dict[str, Any]]:
        stored_keys = [normalize_key(k, spec.int_keys) for k in keys]
        if spec.int_keys and not all(isinstance(k, int) for k in stored_keys):
            raise StorageError(
                f"Table {self.table_name!r} has integer keys; got keys such as {stored_keys[:3]}"
            )
        columns = [KEY, FINGERPRINT] + [o.column for o in spec.outputs]
        values = [stored_keys, [fingerprint] * len(keys)] + [
            o.encode(a) for o, a in zip(spec.outputs, arrays)
        ]
        return [dict(zip(columns, row)) for row in zip(*values)]

    def _upsert_statement(self, dialect: str) -> Any:
        cached = self._statements.get(("upsert", dialect))
        if cached is not None:
            return cached
        table = self._table
        assert table is not None
        others = [c.name for c in table.columns if c.name != KEY]
        if dialect in ("sqlite", "postgresql"):
            module = sqlite if dialect == "sqlite" else postgresql
            insert = module.insert(table)
            statement = insert.on_conflict_do_update(
                index_elements=[KEY], set_={c: insert.excluded[c] for c in others}
            )
        elif dialect in ("mysql", "mariadb"):
            insert = mysql.insert(table)
            statement = insert.on_duplicate_key_update({c: insert.inserted[c] for c in others})
        else:
            statement = _DeleteThenInsert(table)
        self._statements[("upsert", dialect)] = statement
        return statement

    # -- reading ---------------------------------------------------------------------------------
    def _select(self, cols: tuple[str, ...], with_fingerprint: bool) -> sa.Select[Any]:
        key = ("select", cols, with_fingerprint)
        statement = self._statements.get(key)
        if statement is None:
            table = self._table
            assert table is not None and self._spec is not None
            by_name = {o.name: o for o in self._spec.outputs}
            statement = sa.select(table.c[KEY], *(table.c[by_name[c].column] for c in cols)).where(
                table.c[KEY].in_(sa.bindparam("keys", expanding=True))
            )
            if with_fingerprint:
                statement = statement.where(table.c[FINGERPRINT] == sa.bindparam("fingerprint"))
            self._statements[key] = statement
        return statement

    def lookup(
        self, rows: Iterable[Key], cols: Iterable[str] | None = None, fingerprint: str | None = None
    ) -> tuple[np.ndarray, Outputs]:
        wanted = list(rows)
        with self._lock:
            if self._spec is None:
                self._load()
            spec = self._spec
        if spec is None:
            selected = [] if cols is None else list(cols)
            return np.empty(0, dtype=np.int64), Outputs(
                selected, [np.empty(0) for _ in selected], np.empty(0)
            )
        names = [o.name for o in spec.outputs]
        selected = names if cols is None else list(cols)
        unknown = [c for c in selected if c not in names]
        if unknown:
            raise UnknownOutputError(f"Table {self.table_name!r} has no outputs {unknown}; it holds {names}.")
        keys = [normalize_key(k, spec.int_keys) for k in wanted]
        statement = self._select(tuple(selected), fingerprint is not None)
        found: dict[Any, Any] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), LOOKUP_CHUNK):
                params: dict[str, Any] = {"keys": keys[start : start + LOOKUP_CHUNK]}
                if fingerprint is not None:
                    params["fingerprint"] = fingerprint
                for row in conn.execute(statement, params):
                    found[row[0]] = row[1:]
        positions = [i for i, k in enumerate(keys) if k in found]
        hits = [found[keys[i]] for i in positions]
        by_name = {o.name: o for o in spec.outputs}
        arrays = [by_name[c].decode([h[j] for h in hits]) for j, c in enumerate(selected)]
        return np.asarray(positions, dtype=np.int64), Outputs(
            selected, arrays, np.asarray([keys[i] for i in positions])
        )

    def keys(self) -> list[Key]:
        if self._table is None:
            self._load()
        if self._table is None:
            return []
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(self._table.c[KEY]).order_by(self._table.c[KEY])).scalars())

    def __contains__(self, key: Any) -> bool:
        return len(self.lookup([key], cols=[])[0]) == 1

    def delete(self, rows: Iterable[Key]) -> None:
        if self._table is None or self._spec is None:
            return
        keys = [normalize_key(k, self._spec.int_keys) for k in rows]
        with self.engine.connect() as conn:
            conn.info["megatron_write"] = True
            with conn.begin():
                for start in range(0, len(keys), LOOKUP_CHUNK):
                    conn.execute(
                        sa.delete(self._table).where(
                            self._table.c[KEY].in_(keys[start : start + LOOKUP_CHUNK])
                        )
                    )

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"<SQLStorage {self.table_name!r} at {url}>"


def _describe(spec: TableSpec) -> str:
    return ", ".join(f"{o.name!r} {o.dtype}{list(o.shape) if o.shape else ''}" for o in spec.outputs)


class _DeleteThenInsert:
    """A portable upsert for dialects without one: delete the keys, then insert, in the
    caller's transaction."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.insert = sa.insert(table)
        self.delete = sa.delete(table).where(table.c[KEY].in_(sa.bindparam("keys", expanding=True)))


def _execute_upsert(conn: sa.Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
    if isinstance(statement, _DeleteThenInsert):
        keys = [r[KEY] for r in rows]
        for start in range(0, len(keys), LOOKUP_CHUNK):
            conn.execute(statement.delete, {"keys": keys[start : start + LOOKUP_CHUNK]})
        conn.execute(statement.insert, rows)
    else:
        conn.execute(statement, rows)
