"""Nodes: the values of a pipeline graph, and inputs made from a data source's columns.

An :class:`Input` is a named entry point for data; calling a layer on nodes returns new
nodes. ``from_dataframe``, ``from_csv``, ``from_parquet`` and (with megatron-sql) ``from_sql``
make one input per column. The classes live in :mod:`megatron.graph`; this module is their public home.
"""

from __future__ import annotations

from typing import Any

from megatron.graph.node import Input, Node
from megatron.io.schema import from_csv, from_dataframe


def from_sql(connection: Any, query_or_table: Any, params: Any = None, **options: Any) -> dict[str, Input]:
    """Inputs for a query's or table's result columns: the ``from_sql`` source a plugin
    registers (megatron-sql; see ``megatron_sql.from_sql``)."""
    from megatron.plugins import get_registry

    build = get_registry().get("source", "from_sql")
    return build(connection, query_or_table, params, **options)


def from_parquet(path: Any, exclude_cols: Any = (), **options: Any) -> dict[str, Input]:
    """Inputs for the columns of a Parquet file (``megatron-core[parquet]``; see
    :func:`megatron.io.parquet.from_parquet`)."""
    from megatron.io.parquet import from_parquet as build

    return build(path, exclude_cols, **options)


__all__ = ["Input", "Node", "from_csv", "from_dataframe", "from_parquet", "from_sql"]
