"""Megatron's SQL plugin: output storage on any SQLAlchemy database, and SQL data sources.

``Pipeline(..., storage='sqlite:///out.db')`` (or an Engine, a Connection, a
``sqlite3.Connection``) stores outputs in SQL; ``megatron.io.SQLData`` and
``megatron.io.SQLGenerator`` read inputs; :func:`from_sql` makes inputs from a query's schema.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Keep ``import megatron_sql`` free of SQLAlchemy until something is used.
    if name == "SQLStorage":
        from megatron_sql.storage import SQLStorage

        return SQLStorage
    if name in ("SQLData", "SQLGenerator", "from_sql"):
        from megatron_sql import sources

        return getattr(sources, name)
    raise AttributeError(f"module 'megatron_sql' has no attribute {name!r}")


__all__ = ["SQLData", "SQLGenerator", "SQLStorage", "from_sql"]
