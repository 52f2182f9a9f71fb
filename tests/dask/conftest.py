"""The dask tests run where megatron-dask is installed (``tox -e dask``, ``all``).

Fast unit tests run on dask's synchronous scheduler (in this process); tests that take the
``client`` fixture run on one session-wide ``LocalCluster`` of two worker processes of one
thread each, on 127.0.0.1 only. PostgreSQL cases read ``MEGATRON_TEST_POSTGRES_URL`` as the
SQL tests do (skipped without it, a failure under CI).
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("megatron_dask", reason="needs megatron_dask: pip install -e packages/megatron-dask")

import dask
from distributed import Client, LocalCluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes of one thread each, listening on 127.0.0.1 only. The workers start
    with this process's ``sys.path`` and the repository's root on it, so that functions of the
    test modules, which pickle by reference as those of any installed module, import there."""
    root = str(Path(__file__).resolve().parents[2])
    sys.path.insert(0, root)
    with warnings.catch_warnings():
        # no dashboard, but the scheduler's small HTTP server tries port 8787 first
        warnings.filterwarnings("ignore", "Port 8787 is already in use", UserWarning)
        local = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
    try:
        with local:
            yield local
    finally:
        sys.path.remove(root)


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[Client]:
    """A client of the session's cluster, the default scheduler for the test."""
    with Client(cluster) as connected:
        yield connected


@pytest.fixture(autouse=True)
def _synchronous_unless_clustered(request: pytest.FixtureRequest) -> Iterator[None]:
    if "client" in request.fixturenames:
        yield
        return
    with dask.config.set(scheduler="sync"):
        yield


def postgres_url() -> str:
    url = os.environ.get("MEGATRON_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("MEGATRON_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests")
    pytest.skip("set MEGATRON_TEST_POSTGRES_URL (bash .ci/postgres.sh prints one) to run on PostgreSQL")


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL of a fresh schema on the PostgreSQL server, dropped afterwards."""
    import sqlalchemy as sa

    base = postgres_url()
    schema = f"d_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A URL of a fresh schema on the PostgreSQL server."""
    pytest.importorskip("megatron_sql", reason="needs megatron_sql: pip install -e packages/megatron-sql")
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, or a fresh schema on the PostgreSQL server."""
    pytest.importorskip("megatron_sql", reason="needs megatron_sql: pip install -e packages/megatron-sql")
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dask.db'}"
        return
    with postgres_schema() as url:
        yield url
