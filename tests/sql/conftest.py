"""The SQL tests run on SQLite and on a real PostgreSQL server.

PostgreSQL's URL comes from ``MEGATRON_TEST_POSTGRES_URL`` (``.ci/postgres.sh`` starts a
server and prints one). Without it the PostgreSQL cases are skipped locally; under CI
(``CI=true``) a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid

import pytest

pytest.importorskip("megatron_sql", reason="needs megatron_sql: pip install -e packages/megatron-sql")

import sqlalchemy as sa


def _postgres_url() -> str:
    url = os.environ.get("MEGATRON_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("MEGATRON_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests")
    pytest.skip("set MEGATRON_TEST_POSTGRES_URL (bash .ci/postgres.sh prints one) to run on PostgreSQL")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL of an empty database: a SQLite file, or a fresh schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    yield from _postgres_schema()


@pytest.fixture
def postgres_url() -> str:
    """A URL of a fresh schema on the PostgreSQL server."""
    yield from _postgres_schema()


def _postgres_schema():
    base = _postgres_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()
