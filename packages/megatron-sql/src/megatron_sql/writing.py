"""Writing outputs: checked, into the pipeline's table (made or replaced as needed), as one
upsert in one transaction, in ascending key order."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from megatron.errors import StorageError
from megatron.outputs import Outputs
from megatron.storage.domain import Write, checked_outputs
from megatron_sql.copying import COPY_THRESHOLD, CopyUpsert, copies
from megatron_sql.schema import OutputColumn, TableSpec, fingerprint_value
from megatron_sql.statements import BulkUpsert, DeleteThenInsert, Rows, upsert
from megatron_sql.tables import PipelineTable


class _Replaced(Exception):
    """The table's description changed since this process read it."""


def store(
    tables: PipelineTable,
    outputs: Outputs,
    fingerprint: str | None,
    overwrite: bool,
    copy_threshold: int | None = COPY_THRESHOLD,
    replaced: bool = False,
) -> None:
    """Insert or replace the rows of ``outputs``, all of them or none: see ``SQLStorage``.
    Writes of at least ``copy_threshold`` rows to PostgreSQL go through ``COPY`` (None: never;
    see ``megatron_sql.copying``). A table that another process replaced meanwhile is read
    again and written once more (``replaced``: this is that second attempt)."""
    current = tables.current()
    write = checked_outputs(outputs, None if current is None else current.int_keys)
    if current is None and not write.keys:
        return  # no rows, and no table yet: nothing to decide the key type by
    columns = (OutputColumn.for_array(n, i, a) for i, (n, a) in enumerate(zip(write.names, write.arrays)))
    wanted = TableSpec(tables.name, tables.version, tables.table_name, write.int_keys, tuple(columns))
    with tables.lock:
        spec = tables.ensure(wanted, overwrite)
        if spec.int_keys != write.int_keys:  # another process made the table meanwhile
            write = checked_outputs(outputs, spec.int_keys)
        rows = _rows(write, spec, fingerprint)
        if not len(rows):
            return
        statement = _upsert(tables, rows, copy_threshold)

        def run(conn: sa.Connection) -> None:  # one transaction: all rows or none
            if not tables.unchanged(conn):
                raise _Replaced  # by another storage since this one read the description
            statement.execute(conn, rows)

        try:
            tables.db.write(run, f"write {len(rows)} rows to table {spec.table!r}")
        except _Replaced:
            tables.load()
            if replaced:
                raise StorageError(
                    f"Could not write to the table of pipeline {tables.name!r} version {tables.version!r}: "
                    "other writers keep replacing it."
                ) from None
            store(tables, outputs, fingerprint, overwrite, copy_threshold, replaced=True)


def _upsert(
    tables: PipelineTable, rows: Rows, copy_threshold: int | None
) -> BulkUpsert | DeleteThenInsert | CopyUpsert:
    """How ``rows`` are written to the current table (each way built once per table)."""
    dialect = tables.db.engine.dialect
    bulk = copy_threshold is not None and len(rows) >= copy_threshold and copies(dialect)
    name = ("copy" if bulk else "upsert", rows.with_fingerprint)
    statement = tables.statements.get(name)
    if statement is None:
        assert tables.table is not None
        make = CopyUpsert if bulk else upsert
        statement = tables.statements[name] = make(tables.table, dialect, rows.with_fingerprint)
    return statement


def _rows(write: Write, spec: TableSpec, fingerprint: str | None) -> Rows:
    """The rows of a checked write, in the table's column order and ascending key order."""
    by_name = dict(zip(write.names, write.arrays))  # outputs may come in any order
    keys, arrays = _in_key_order(write.keys, [by_name[o.name] for o in spec.outputs])
    return Rows(keys, fingerprint_value(fingerprint), list(zip(spec.outputs, arrays)))


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
