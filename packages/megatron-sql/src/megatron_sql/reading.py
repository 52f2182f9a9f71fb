"""Reading stored rows by key: a read plan per selection of outputs (its statements built
once), and the lookup that runs it."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

import attrs
import numpy as np

from megatron.errors import UnknownOutputError
from megatron.outputs import Outputs
from megatron.storage import Key, lookup_keys
from megatron_sql.schema import OutputColumn, fingerprint_value
from megatron_sql.statements import KeyLookup
from megatron_sql.tables import PipelineTable

ONE_FOUND, NONE_FOUND = np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
ONE_FOUND.flags.writeable = NONE_FOUND.flags.writeable = False  # shared by every one-row lookup


def lookup(
    tables: PipelineTable, rows: Iterable[Key], cols: Iterable[str] | None, fingerprint: str | None
) -> tuple[np.ndarray, Outputs]:
    """The stored rows among ``rows`` (written with ``fingerprint``, when given): the positions
    in ``rows`` found, and their outputs ``cols`` (all when None) in that order."""
    selection = None if cols is None else tuple(cols)
    with_fingerprint = fingerprint is not None
    if tables.provisional:
        tables.current()
    plan = tables.statements.get(("read", selection, with_fingerprint)) or _plan(
        tables, selection, with_fingerprint
    )
    if plan is None:  # nothing was ever written
        names = selection or ()
        return np.empty(0, dtype=np.int64), Outputs(names, [np.empty(0) for _ in names], np.empty(0))
    keys = lookup_keys(rows, plan.key_type is int)[1]
    # keys that no row can have (None) are asked for and never found
    query = [k for k in keys if k is not None] if None in keys else keys
    with tables.db.reader() as cursor:
        if len(keys) == 1:  # the one-row lookup: no key column, nothing to match
            fetched = plan.lookup.fetch_one(cursor, keys[0], fingerprint_value(fingerprint)) if query else []
            positions = ONE_FOUND if fetched else NONE_FOUND
            return positions, plan.outputs(fetched, None, keys[: len(fetched)], keyed=False)
        fetched = plan.lookup.fetch(cursor, query, fingerprint_value(fingerprint))
    positions, order = _match(keys, [row[0] for row in fetched])
    found = np.asarray(keys)[positions] if query is keys else np.asarray([keys[p] for p in positions])
    return positions, plan.outputs(fetched, order, found)


def _plan(
    tables: PipelineTable, selection: tuple[str, ...] | None, with_fingerprint: bool
) -> ReadPlan | None:
    """How to look up the outputs ``selection`` (all when None), built once per selection;
    None while the table does not exist."""
    spec = tables.current()
    if spec is None or tables.table is None:
        return None
    names = [o.name for o in spec.outputs]
    selected = tuple(names) if selection is None else selection
    unknown = [c for c in selected if c not in spec.by_name]
    if unknown:
        raise UnknownOutputError(f"Table {tables.table_name!r} has no outputs {unknown}; it holds {names}.")
    columns = tuple(spec.by_name[c] for c in selected)
    dialect = tables.db.engine.dialect
    lookup = KeyLookup(tables.table, [c.column for c in columns], with_fingerprint, dialect)
    plan = ReadPlan(selected, columns, int if spec.int_keys else str, lookup)
    tables.statements[("read", selection, with_fingerprint)] = plan
    return plan


@attrs.frozen
class ReadPlan:
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
