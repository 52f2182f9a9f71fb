"""SQL sources: whole queries, streamed batches, inputs from a result's schema."""

import uuid

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import ConfigError, DataError, SourceError
from megatron.testing import SourceCase, source_checks
from megatron.testing.sources import selected_columns
from megatron.testing.strategies import column_selections
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
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        SQLGenerator(engine, "SELECT age FROM people", batch_size=0)
    for bad in (0, 2.5, True):
        with pytest.raises(DataError, match="sample_rows must be a positive integer"):
            from_sql(engine, "people", sample_rows=bad)


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


# -- one column selection per source ----------------------------------------------------------------
COLUMNS = ["a", "b", "c", "d", "e"]


def assert_same(batches, expected):
    want, want_index = expected
    assert all(b.keys() == want.keys() for b in batches)
    for name in want:
        np.testing.assert_array_equal(np.concatenate([b[name] for b in batches]), want[name], err_msg=name)
    np.testing.assert_array_equal(np.concatenate([b.index for b in batches]), want_index)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(selection=column_selections(COLUMNS), n=st.integers(1, 9), batch_size=st.integers(1, 4))
def test_every_sql_source_reads_every_batch_with_the_selection_it_was_given(engine, selection, n, batch_size):
    table = f"t_{uuid.uuid4().hex[:10]}"
    values = np.arange(n * len(COLUMNS), dtype=np.int64).reshape(n, len(COLUMNS))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} ({', '.join(f'{c} INTEGER' for c in COLUMNS)})")
        conn.execute(
            sa.text(f"INSERT INTO {table} VALUES ({', '.join(':' + c for c in COLUMNS)})"),
            [dict(zip(COLUMNS, row.tolist())) for row in values],
        )
    query = f"SELECT * FROM {table} ORDER BY a"
    expected = selected_columns(values, COLUMNS, **selection)
    data = megatron.io.SQLData(engine, query, **selection)
    source = SQLGenerator(engine, query, batch_size, **selection)
    inputs = from_sql(engine, query, **selection)
    selection["exclude_cols"].append("nope")  # the caller's list and dict, edited after: not seen
    if selection["groups"]:
        selection["groups"]["g"].append("nope")
    assert_same([data], expected)
    assert_same(list(source), expected)
    assert_same(list(source), expected)  # each pass alike
    assert set(inputs) == set(expected[0])
