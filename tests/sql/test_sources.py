"""SQL sources: whole queries, streamed batches, inputs from a result's schema."""

import numpy as np
import pytest
import sqlalchemy as sa

import megatron
from megatron import layers
from megatron.errors import DataError, SourceError
from megatron.testing import SourceCase, source_checks
from megatron_sql import SQLGenerator, from_sql


@pytest.fixture
def engine(database_url):
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, age INTEGER, income DOUBLE PRECISION, name TEXT, member BOOLEAN)"
        )
        rows = [
            {"id": i, "age": 20 + i % 50, "income": 1000.0 * i, "name": f"p{i}", "member": i % 2 == 0}
            for i in range(250)
        ]
        conn.execute(sa.text("INSERT INTO people VALUES (:id, :age, :income, :name, :member)"), rows)
    yield engine
    engine.dispose()


def test_sql_data_keeps_database_types_and_binds_parameters(engine):
    data = megatron.io.SQLData(
        engine, "SELECT age, income, name FROM people WHERE age > :min_age", {"min_age": 60}
    )
    assert data["age"].dtype == np.int64 and data["income"].dtype == np.float64
    assert data["name"].dtype.kind == "U"
    assert (data["age"] > 60).all() and len(data["age"]) == 45
    table = megatron.io.SQLData(engine, "people", index_col="id")  # a table: its declared column types
    assert list(table.index[:3]) == [0, 1, 2] and "id" not in table
    assert table["member"].dtype == np.bool_ and table["member"][:2].tolist() == [True, False]


def test_sql_generator_streams_batches_and_is_re_iterable(engine):
    source = SQLGenerator(engine, "SELECT age, income FROM people ORDER BY id", batch_size=64)
    sizes = [len(b["age"]) for b in source]
    assert sizes == [64, 64, 64, 58]
    assert [len(b["age"]) for b in source] == sizes
    x = megatron.nodes.Input("income")
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="sqlgen")
    pipeline.fit_generator(source)
    assert float(pipeline.layers[0].metadata["mean"]) == pytest.approx(1000.0 * 249 / 2)


def test_inputs_from_a_query_schema_without_altering_the_query(engine):
    inputs = from_sql(engine, "SELECT age, income, name FROM people -- a trailing comment")
    assert set(inputs) == {"age", "income", "name"}
    assert inputs["age"].dtype == np.int64 and inputs["name"].dtype is None
    assert megatron.nodes.from_sql(engine, "people")["member"].dtype == np.bool_


def test_bad_queries_and_batch_sizes(engine):
    with pytest.raises(SourceError, match="The query failed"):
        megatron.io.SQLData(engine, "SELECT nope FROM people")
    with pytest.raises(DataError, match="batch_size must be a positive integer"):
        SQLGenerator(engine, "SELECT age FROM people", batch_size=0)


@pytest.mark.parametrize("check", source_checks(), ids=lambda c: c.__name__)
def test_sql_generator_passes_the_conformance_suite(check, engine):
    expected = {"age": np.array([20 + i % 50 for i in range(250)])}
    check(
        SourceCase(
            lambda: SQLGenerator(engine, "SELECT age FROM people ORDER BY id", batch_size=40),
            expected,
            40,
            "sql",
        )
    )
