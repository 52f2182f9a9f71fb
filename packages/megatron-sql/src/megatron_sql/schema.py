"""How outputs map to SQL: one table per pipeline name and version, described in a metadata
table so that any process can read it back.

Scalar outputs get native columns; array outputs are raw bytes, with their dtype and shape
recorded in the metadata table. Column names are positional (``out_0``, ``out_1``...), so
output names may hold any character; the names live in the metadata.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any

import attrs
import numpy as np
import sqlalchemy as sa

from megatron.errors import StorageError
from megatron.storage import output_schema

METADATA_TABLE = "megatron_tables"
KEY = "key"
FINGERPRINT = "fingerprint"
MAX_IDENTIFIER = 60  # under PostgreSQL's 63 bytes and most dialects' limits


@attrs.frozen
class OutputColumn:
    """One output: its name, the column holding it, and how its values are stored."""

    name: str
    column: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def is_array(self) -> bool:
        return bool(self.shape)

    @property
    def is_raw(self) -> bool:
        """Whether each row's value is stored as its raw bytes: arrays, and scalars of dtypes
        without a SQL type of their own (complex numbers, dates, durations, floats wider than
        64 bits)."""
        if self.is_array:
            return True
        if self.dtype in ("str", "bytes"):
            return False
        dtype = np.dtype(self.dtype)
        return dtype.kind in "cmM" or (dtype.kind == "f" and dtype.itemsize > 8)

    @classmethod
    def for_array(cls, name: str, position: int, array: np.ndarray) -> OutputColumn:
        dtype, shape = output_schema(name, array)
        return cls(name, f"out_{position}", dtype, shape)

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        if self.is_raw:
            return sa.LargeBinary()
        if self.dtype == "str":
            return sa.Text()
        if self.dtype == "bytes":
            return sa.LargeBinary()
        kind = np.dtype(self.dtype).kind
        if kind == "b":
            return sa.Boolean()
        if kind in "iu":
            return sa.BigInteger()
        if kind == "f":
            return sa.Double()
        raise StorageError(f"Cannot store output {self.name!r} of dtype {self.dtype}")

    def encode(self, array: np.ndarray) -> list[Any]:
        """Per-row Python values for the database: numbers, booleans, strings and bytes, or the
        raw bytes of each row's value (strings and bytes in the width of this batch), as
        ``bytearray``: ``sqlite3`` binds a ``bytearray`` directly and ``bytes`` through its
        adapter lookup; every driver stores both alike."""
        if not self.is_raw:
            if self.dtype == "<u8":  # BIGINT is signed: uint64 is stored as the int64 of its bits
                return np.ascontiguousarray(array, dtype=np.uint64).view(np.int64).tolist()
            return array.tolist()
        cells = self.raw_cells(array)
        width = cells.shape[1]
        if not width:
            return [bytearray() for _ in range(len(array))]
        raw = bytearray(cells)
        return [raw[i : i + width] for i in range(0, len(raw), width)]  # a slice of a bytearray is one

    def raw_cells(self, array: np.ndarray) -> np.ndarray:
        """The raw bytes of each row's value, one row of uint8 per row (strings and bytes in the
        width of this batch)."""
        dtype = array.dtype.newbyteorder("<") if self.dtype in ("str", "bytes") else np.dtype(self.dtype)
        cells = int(np.prod(array.shape[1:], dtype=np.int64))
        return np.ascontiguousarray(array, dtype=dtype).reshape(len(array), cells).view(np.uint8)

    def decode(self, values: list[Any]) -> np.ndarray:
        """An array from per-row database values."""
        if self.is_raw and self.dtype in ("str", "bytes"):
            return self._decode_text_arrays(values)
        if self.is_raw:
            dtype = np.dtype(self.dtype)
            return np.frombuffer(b"".join(values), dtype=dtype).reshape((len(values), *self.shape)).copy()
        if self.dtype in ("str", "bytes"):
            return np.array(values, dtype=self.dtype) if values else np.empty(0, dtype=self.dtype)
        if self.dtype == "<u8":
            return np.array(values, dtype=np.int64).view(np.uint64)
        return np.array(values, dtype=np.dtype(self.dtype))

    def _decode_text_arrays(self, values: list[bytes]) -> np.ndarray:
        """Arrays of strings or bytes from rows written in batches of different widths: each
        row's width follows from its length, and the result has the widest."""
        unit = 4 if self.dtype == "str" else 1  # numpy strings are UCS-4
        cells = max(1, int(np.prod(self.shape)))
        kind = "<U" if self.dtype == "str" else "S"
        widths = [len(v) // (unit * cells) for v in values]
        result = np.zeros((len(values), *self.shape), dtype=f"{kind}{max([1, *widths])}")
        for width in set(widths):
            rows = [i for i, w in enumerate(widths) if w == width]
            if width:
                raw = b"".join(values[i] for i in rows)
                result[rows] = np.frombuffer(raw, dtype=f"{kind}{width}").reshape((len(rows), *self.shape))
        return result


@attrs.frozen(slots=False)  # slots=False: room for the cached by_name
class TableSpec:
    """A stored pipeline's table: its name, key type and output columns."""

    pipeline: str
    version: str | None
    table: str
    int_keys: bool
    outputs: tuple[OutputColumn, ...]

    def describe(self) -> str:
        return json.dumps([attrs.asdict(o) for o in self.outputs])

    @functools.cached_property
    def by_name(self) -> dict[str, OutputColumn]:
        return {o.name: o for o in self.outputs}

    @property
    def schema(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """What must match for a write to go into this table: each output's dtype and shape,
        by name, in any order."""
        return {o.name: (o.dtype, o.shape) for o in self.outputs}

    def summary(self) -> str:
        return ", ".join(f"{o.name!r} {o.dtype}{list(o.shape) if o.shape else ''}" for o in self.outputs)

    @classmethod
    def from_row(cls, row: Any) -> TableSpec:
        outputs = tuple(
            OutputColumn(o["name"], o["column"], o["dtype"], tuple(o["shape"]))
            for o in json.loads(row.outputs)
        )
        return cls(row.pipeline, row.version, row.table_name, bool(row.int_keys), outputs)

    def build(self, metadata: sa.MetaData) -> sa.Table:
        # INTEGER PRIMARY KEY is the rowid itself on SQLite: no separate index to maintain
        key_type: sa.types.TypeEngine[Any] = (
            sa.BigInteger().with_variant(sa.Integer(), "sqlite") if self.int_keys else sa.String(255)
        )
        return sa.Table(
            self.table,
            metadata,
            sa.Column(KEY, key_type, primary_key=True, autoincrement=False),
            sa.Column(FINGERPRINT, sa.BigInteger(), nullable=True),
            *(sa.Column(o.column, o.sql_type()) for o in self.outputs),
        )


def fingerprint_value(fingerprint: str | None) -> int | None:
    """A pipeline fingerprint as the 60-bit integer stored with each row (compact to store
    and compare; a collision between two fits of one pipeline is out of reach)."""
    return None if fingerprint is None else int(fingerprint[:15], 16)


def table_name(pipeline: str, version: str | None) -> str:
    """The table of a pipeline's outputs: a valid identifier, distinct for every (pipeline,
    version) pair even where table names ignore case (SQLite), and readable where possible.

    A digest of the exact pair makes it distinct (``'Sales'`` and ``'sales'``, or
    ``'model@v2'`` and ``'model'`` version ``'v2'``, get different tables); the readable part
    is the pair lowered to letters, digits and ``_``. A replaced table adds ``_`` and four hex
    digits (see ``SQLStorage``).
    """
    for what, text in (("pipeline name", pipeline), ("version", version)):
        if text is not None and ("\x00" in text or (not text.isprintable() and _unencodable(text))):
            raise StorageError(
                f"Cannot store outputs under {what} {text!r}: names are valid Unicode without NUL characters."
            )
    digest = hashlib.sha256(json.dumps([pipeline, version]).encode()).hexdigest()[:16]
    words = f"{pipeline}_{version}" if version is not None else pipeline
    room = MAX_IDENTIFIER - len(digest) - len("megatron__") - len("_0000")  # see the replaced-table suffix
    readable = re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")[:room]
    return f"megatron_{readable}_{digest}" if readable else f"megatron_{digest}"


def _unencodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def metadata_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        METADATA_TABLE,
        metadata,
        sa.Column("table_name", sa.String(255), primary_key=True),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("int_keys", sa.Boolean(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
    )
