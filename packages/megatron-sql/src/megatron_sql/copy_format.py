"""Rows in PostgreSQL's binary ``COPY`` format, laid out by numpy a chunk at a time.

Where every value of a write has a width fixed for the batch (int keys, the fingerprint,
numbers, booleans, and raw bytes of arrays and of other dtypes), each row is a record of one
numpy structured dtype: the field count, then each field's length and its value, big-endian.
A chunk of rows is then one array built column by column, with no Python object per value;
the values are those the statement path binds (see ``OutputColumn.encode``). Writes with text
(str keys, string or bytes outputs) go row by row through psycopg's ``write_row``.
"""

from __future__ import annotations

import numpy as np

from megatron_sql.schema import OutputColumn
from megatron_sql.statements import Rows

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # the signature, no flags, no header extension
TRAILER = b"\xff\xff"


def fixed_width(rows: Rows) -> bool:
    """Whether every value of ``rows`` has a width fixed for the batch."""
    return bool(rows.keys) and isinstance(rows.keys[0], int) and all(_fixed(o) for o, _ in rows.outputs)


def _fixed(column: OutputColumn) -> bool:
    return column.is_raw or column.dtype not in ("str", "bytes")


def encode(rows: Rows, start: int, stop: int) -> bytes:
    """Rows ``start:stop`` of ``rows`` (fixed width, see :func:`fixed_width`) as binary
    ``COPY`` tuples, without the signature and the trailer."""
    keys = np.asarray(rows.keys[start:stop], dtype=np.int64)
    columns: list[tuple[np.ndarray, np.dtype]] = [(keys, np.dtype(">i8"))]
    if rows.with_fingerprint:
        columns.append((np.full(len(keys), rows.fingerprint, dtype=np.int64), np.dtype(">i8")))
    columns += [_values(column, array[start:stop]) for column, array in rows.outputs]
    fields: list[tuple[str, object]] = [("count", ">i2")]
    for i, (_, dtype) in enumerate(columns):
        fields.append((f"size{i}", ">i4"))
        if dtype.itemsize:
            fields.append((f"value{i}", dtype))
    table = np.empty(len(keys), dtype=np.dtype(fields))
    table["count"] = len(columns)
    for i, (values, dtype) in enumerate(columns):
        table[f"size{i}"] = dtype.itemsize
        if dtype.itemsize:
            table[f"value{i}"] = values
    return table.tobytes()


def _values(column: OutputColumn, array: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    """One output's values as the column's binary type takes them, and their field's dtype."""
    if column.is_raw:
        cells = column.raw_cells(array)
        return cells, np.dtype(("u1", (cells.shape[1],)))
    kind = array.dtype.kind
    if kind == "b":
        return array.view(np.uint8), np.dtype("u1")
    if kind == "f":  # DOUBLE PRECISION: floats of 64 bits or fewer widen exactly
        return array.astype(np.float64, copy=False), np.dtype(">f8")
    if column.dtype == "<u8":  # BIGINT is signed: uint64 is stored as the int64 of its bits
        return np.ascontiguousarray(array, dtype=np.uint64).view(np.int64), np.dtype(">i8")
    return array.astype(np.int64, copy=False), np.dtype(">i8")
