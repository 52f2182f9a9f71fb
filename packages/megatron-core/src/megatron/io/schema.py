"""Input nodes from a data source's schema: one ``Input`` per column (or group of columns)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from megatron.arguments import positive_int
from megatron.errors import DataError
from megatron.graph.node import Input
from megatron.io.batch import Batch
from megatron.io.frames import ColumnSelection, Groups, check_frame, frame_rows
from megatron.io.sources import read_csv_batch


def inputs_from_batch(batch: Batch, groups: Groups | None = None, eager: bool = False) -> dict[str, Input]:
    """One Input per array of ``batch``, with its per-observation shape and (numeric) dtype."""
    nodes = {}
    for name, array in batch.items():
        dtype = array.dtype if array.dtype.kind in "biufcmM" else None
        columns = list(groups[name]) if groups and name in groups else None
        node = Input(name, array.shape[1:], dtype, columns=columns)
        nodes[name] = node(array) if eager else node
    return nodes


def from_dataframe(
    df: Any,
    exclude_cols: Sequence[str] = (),
    *,
    groups: Groups | None = None,
    index_col: str | None = None,
    eager: bool = False,
) -> dict[str, Input]:
    """Inputs for the columns of a DataFrame (pandas or Polars) or an Arrow table, shapes and
    dtypes inferred.

    ``groups`` maps an input name to several columns, read together as one (n, k) array.
    With ``eager=True`` the inputs hold the data, so layers called on them run at once.

    Example::

        inputs = megatron.nodes.from_dataframe(df, groups={'xy': ['x', 'y']})
    """
    check_frame(df, "from_dataframe")
    selection = ColumnSelection(exclude_cols, groups, index_col)
    batch = selection.frame_batch(df if eager else frame_rows(df, 0, 1000))
    return inputs_from_batch(batch, selection.groups, eager)


def from_csv(
    path: str | os.PathLike[str],
    exclude_cols: Sequence[str] = (),
    *,
    groups: Groups | None = None,
    index_col: str | None = None,
    eager: bool = False,
    sample_rows: int = 1000,
    **read_csv: Any,
) -> dict[str, Input]:
    """Inputs for the columns of a CSV file, inferred from its first ``sample_rows`` rows (all of
    it with ``eager=True``, which also loads the data into the inputs).

    Example::

        inputs = megatron.nodes.from_csv('train.csv', exclude_cols=['id'])
    """
    nrows = None if eager else positive_int(sample_rows, "sample_rows", error=DataError)
    selection = ColumnSelection(exclude_cols, groups, index_col)
    batch = read_csv_batch(path, nrows, selection, read_csv, feature="from_csv")
    return inputs_from_batch(batch, selection.groups, eager)


__all__ = ["from_csv", "from_dataframe", "inputs_from_batch"]
