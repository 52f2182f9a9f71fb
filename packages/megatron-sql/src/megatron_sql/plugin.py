"""The sql plugin's hook implementations. Imports nothing heavy: SQLAlchemy loads on first use."""

from __future__ import annotations

from typing import Any

from megatron.plugins import hookimpl

SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle")
DEFAULT_URL = "sqlite:///megatron.db"
"""The default storage: the embedded SQLite file ``megatron.db`` in the working directory."""


@hookimpl
def register_storage(register: Any) -> None:
    for scheme in SCHEMES:
        register(scheme, "megatron_sql.storage:SQLStorage")


@hookimpl
def register_sources(register: Any) -> None:
    register("SQLData", "megatron_sql.sources:SQLData")
    register("SQLGenerator", "megatron_sql.sources:SQLGenerator")
    register("from_sql", "megatron_sql.sources:from_sql")


@hookimpl
def default_storage_url() -> str:
    """``storage='default'`` keeps outputs in ``megatron.db``, SQLite, in the working directory."""
    return DEFAULT_URL


@hookimpl
def adapt_storage(obj: Any, name: str, version: str | None) -> Any:
    """Claim database connections and engines, and URLs of any other SQLAlchemy dialect."""
    module = type(obj).__module__
    if not (module.startswith(("sqlite3", "sqlalchemy")) or isinstance(obj, str)):
        return None
    from megatron_sql.engines import claims

    if not claims(obj):
        return None
    from megatron_sql.storage import SQLStorage

    return SQLStorage(obj, name, version)
