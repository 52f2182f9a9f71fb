"""Feeds: the input arrays of a pipeline operation, read from the data a user passes (a
mapping of input name to array, a source's :class:`~megatron.io.batch.Batch`, or a pandas
DataFrame, whose columns are read as :mod:`megatron.io.frames` reads a source's), checked
against each input's spec, with the rows' observation index where the data has one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from megatron.errors import DataError, LengthMismatchError, MissingInputError
from megatron.graph.node import Input
from megatron.io.batch import Batch
from megatron.io.columnar import TableColumns, is_table
from megatron.io.frames import column_array, stack_columns
from megatron.io.lazy import LazyBatch
from megatron.suggest import closest

Data = Mapping[str, Any] | Any  # a mapping of input name to array-like, or a pandas DataFrame


def read_feeds(
    inputs: Sequence[Input], data: Data, index: Any, pipeline: str, operation: str
) -> tuple[list[np.ndarray], Any]:
    """The arrays of ``inputs`` in ``data``, checked, and the index of their rows: ``index``
    when given, else the data's own (a DataFrame's, a batch's), else None (positions)."""
    columns, own_index = columns_of(data)
    if columns is None:
        raise DataError(not_a_mapping(pipeline, operation, data, inputs))
    feeds = []
    read = columns.read if type(columns) is FrameColumns or type(columns) is TableColumns else None
    for node in inputs:
        try:
            value = columns[node.name] if read is None else read(node)
        except KeyError:
            raise _missing_input(pipeline, node, columns, inputs, operation) from None
        except TypeError:
            raise DataError(
                f"Pipeline {pipeline!r}.{operation}() takes a mapping of input name to array or a "
                f"pandas DataFrame; got {type(data).__name__}."
            ) from None
        feeds.append(node.check(value))
    if len(feeds) > 1:
        n = len(feeds[0])
        if any(len(f) != n for f in feeds):
            lengths = ", ".join(f"{node.name!r}: {len(f)}" for node, f in zip(inputs, feeds))
            raise LengthMismatchError(
                f"Pipeline {pipeline!r}.{operation}(): inputs hold different numbers of observations "
                f"({lengths})."
            )
    if index is None:
        index = own_index
    if index is not None:
        index = np.asarray(index)
        if feeds and len(index) != len(feeds[0]):
            raise LengthMismatchError(
                f"Pipeline {pipeline!r}.{operation}(): the index has {len(index)} keys for "
                f"{len(feeds[0])} observations."
            )
    return feeds, index


def read_batch(
    inputs: Sequence[Input], batch: Data, number: int, pipeline: str, operation: str
) -> tuple[list[np.ndarray], Any]:
    """:func:`read_feeds` for batch ``number`` of a stream; errors say which batch."""
    try:
        return read_feeds(inputs, batch, None, pipeline, operation)
    except DataError as exc:
        raise type(exc)(f"Batch {number}: {exc}") from None


def rows_in(feeds: Sequence[np.ndarray]) -> int:
    """How many observations ``feeds`` hold (0 when an operation reads no input)."""
    return len(feeds[0]) if feeds else 0


_READ_HERE = frozenset({"numpy", "builtins", "pandas", "polars", "pyarrow"})
"""Top-level modules of the values a mapping may hold that the core reads itself."""


def foreign_part(data: Data) -> Any:
    """What the core does not read itself in ``data``, or None: ``data`` when it is neither a
    mapping, a megatron batch, a pandas or Polars DataFrame nor an Arrow table (a type of
    another library is, even when it looks like a DataFrame); else the first value of a
    mapping that belongs to another library (a dask array). A plugin may claim such data
    (``run_operation``) before anything collects it into memory."""
    if type(data) is LazyBatch:  # numpy arrays, read when asked for: looking would read them all
        return None
    if type(data) is dict or isinstance(data, Mapping):  # a dict first: the ABC check costs more
        for value in data.values():
            if type(value) is not np.ndarray and type(value).__module__.partition(".")[0] not in _READ_HERE:
                return value
        return None
    if isinstance(data, Batch) or type(data).__module__.partition(".")[0] in _READ_HERE:
        return data if columns_of(data)[0] is None else None
    # another library's collection may look like a DataFrame (a dask DataFrame does) and yet be
    # lazy: a plugin may claim it first; run_elsewhere reads it here when none does
    return data


def columns_of(data: Data) -> tuple[Any, Any]:
    """The name -> column lookup of ``data``, and its own index where it has one; ``(None,
    None)`` for data that is not a mapping or a DataFrame."""
    if type(data) is dict:
        return data, None
    if isinstance(data, Batch):
        return data, data.index
    if isinstance(data, Mapping):
        return data, None
    if hasattr(data, "columns") and hasattr(data, "index") and hasattr(data, "iloc"):  # pandas
        return FrameColumns(data), data.index.to_numpy()
    if is_table(data):  # Polars, Arrow: no index, rows by position
        return TableColumns(data), None
    if hasattr(data, "keys") and hasattr(data, "__getitem__") and not isinstance(data, np.ndarray):
        return data, None  # a mapping in all but name
    return None, None


class FrameColumns:
    """A DataFrame's columns by input name; an input with ``columns`` stacks them."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame

    def read(self, node: Input) -> np.ndarray:
        names = node.columns or [node.name]
        if any(name not in self.frame.columns for name in names):
            raise KeyError(node.name)
        if node.columns is None:
            return column_array(self.frame[node.name])
        return stack_columns(self.frame, names)

    def __iter__(self) -> Iterator[str]:
        return iter(map(str, self.frame.columns))


def not_a_mapping(pipeline: str, operation: str, data: Any, inputs: Sequence[Input]) -> str:
    """The message for ``data`` that is neither a mapping nor a DataFrame."""
    names = [node.name for node in inputs]
    if len(names) == 1:
        hint = f" With its one input, pass {{{names[0]!r}: data}}."
    else:
        hint = f" Expected keys {names}."
    return (
        f"Pipeline {pipeline!r}.{operation}() takes a mapping of input name to array (a dict, a "
        f"megatron source's batch) or a pandas DataFrame; got {describe_data(data)}.{hint}"
    )


def describe_data(data: Any) -> str:
    """What ``data`` is, in a few words, for error messages."""
    kind = type(data)
    if kind.__module__.startswith("scipy.sparse"):
        return f"a scipy.sparse {kind.__name__} of shape {data.shape}"
    if isinstance(data, np.ndarray):
        return f"a numpy array of shape {data.shape}"
    if isinstance(data, list | tuple):
        return f"a {kind.__name__} of {len(data)} items"
    return (
        f"a {kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else f"a {kind.__name__}"
    )


def _missing_input(
    pipeline: str, node: Input, columns: Any, inputs: Sequence[Input], operation: str
) -> MissingInputError:
    given = [str(k) for k in columns]
    expected = {n.name for n in inputs}
    # a given key that no input expects may be a typo of this input's name
    typo = closest(node.name, [key for key in given if key not in expected], ignore_case=True)
    hint = f" Did you mean {node.name!r} for the given key {typo!r}?" if typo is not None else ""
    return MissingInputError(
        f"Pipeline {pipeline!r}.{operation}() needs input {node.name!r}, which the data does not "
        f"have.{hint} Expected keys {[n.name for n in inputs]}; got {given}."
    )
