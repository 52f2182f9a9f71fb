"""Parquet files in: whole, streamed in batches, inputs from a file; only the columns a
pipeline reads are read, and a column keeps one dtype from batch to batch."""

import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import DataError, SourceError
from megatron.io import Batch
from megatron.io import parquet as parquet_io
from megatron.nodes import Input
from megatron.testing import SourceCase, source_checks
from megatron.testing.sources import selected_columns
from megatron.testing.strategies import column_selections

pa = pytest.importorskip("pyarrow", reason="needs pyarrow: pip install -e 'packages/megatron-core[parquet]'")
pq = pytest.importorskip(
    "pyarrow.parquet", reason="needs pyarrow: pip install -e 'packages/megatron-core[parquet]'"
)


def write(path, columns, row_group_size=7):
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


@pytest.fixture
def table_file(tmp_path):
    n = 23
    rng = np.random.default_rng(3)
    return write(
        tmp_path / "t.parquet",
        {
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
            "k": np.arange(n) % 4,
            "city": [["paris", "lyon"][i % 2] for i in range(n)],
            "id": [f"id{i}" for i in range(n)],
        },
    )


@pytest.fixture
def reads(monkeypatch):
    """Every (row group, column) read from a file."""
    seen = []
    real = parquet_io.ParquetFile.read

    def read(self, group, name):
        seen.append((group, name))
        return real(self, group, name)

    monkeypatch.setattr(parquet_io.ParquetFile, "read", read)
    return seen


def test_generator_batches_span_row_groups_and_number_rows(table_file):
    source = megatron.io.ParquetGenerator(table_file, batch_size=5)
    batches = list(source)
    assert len(source) == len(batches) == 5
    assert [len(b["x"]) for b in batches] == [5, 5, 5, 5, 3]
    assert list(batches[1].index) == [5, 6, 7, 8, 9]  # rows 5-6 from group 0, 7-9 from group 1
    whole = pq.read_table(table_file)
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in batches]), whole["x"].to_numpy())
    assert batches[0]["city"].dtype == object and batches[0]["k"].dtype == np.int64


def test_only_the_columns_the_pipeline_reads_are_read(table_file, reads):
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="projection")
    pipeline.fit_generator(megatron.io.ParquetGenerator(table_file, batch_size=5, index_col="id"))
    assert {name for _, name in reads} == {"x", "id"}
    assert sorted(reads) == sorted(set(reads))  # each column of each row group read once
    reads.clear()
    pipeline.transform(megatron.io.ParquetData(table_file))
    assert {name for _, name in reads} == {"x"}


def test_fit_generator_over_parquet_equals_fit_over_the_whole_file(table_file):
    def chain():
        x, y = Input("x"), Input("y")
        first = layers.Whiten()(layers.Concatenate()([x, y]), "first")
        second = layers.MinMaxScale()(layers.ScalarMultiply(3)(first), "second")
        return megatron.Pipeline([x, y], [first, second], name="chain")

    streamed, whole = chain(), chain()
    streamed.fit_generator(megatron.io.ParquetGenerator(table_file, batch_size=4))
    whole.fit(megatron.io.ParquetData(table_file))
    for a, b in zip(streamed.graph.stateful_layers, whole.graph.stateful_layers):
        for key in b.metadata:
            np.testing.assert_allclose(a.metadata[key], b.metadata[key], err_msg=key)


def test_an_int_column_with_a_null_in_a_later_row_group_is_float_in_every_batch(tmp_path):
    values = list(range(20))
    values[17] = None
    path = write(tmp_path / "n.parquet", {"a": pa.array(values, pa.int64()), "b": [True] * 19 + [None]})
    batches = list(megatron.io.ParquetGenerator(path, batch_size=5))
    assert {b["a"].dtype for b in batches} == {np.dtype(np.float64)}
    assert {b["b"].dtype for b in batches} == {np.dtype(object)}
    assert np.isnan(batches[3]["a"][2]) and batches[3]["b"][4] is None
    inputs = megatron.nodes.from_parquet(path)
    assert inputs["a"].dtype == np.float64  # the sample (first row group) agrees with later batches


def test_a_pandas_index_stored_in_the_file_is_the_index(tmp_path):
    pd = pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")
    frame = pd.DataFrame({"x": np.arange(4.0)}, index=pd.Index(["a", "b", "c", "d"], name="key"))
    frame.to_parquet(tmp_path / "p.parquet")
    data = megatron.io.ParquetData(tmp_path / "p.parquet")
    assert set(data) == {"x"} and list(data.index) == ["a", "b", "c", "d"]
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(2)(x, "y"), name="stored_index")
    result = pipeline.transform(data).to_frame()
    assert list(result.index) == ["a", "b", "c", "d"]


def test_a_stored_range_index_or_multiindex_is_the_index_pandas_gives(tmp_path):
    pd = pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")
    ranged = pd.DataFrame({"x": np.arange(10.0)}, index=pd.RangeIndex(100, 120, 2))
    ranged.to_parquet(tmp_path / "range.parquet", row_group_size=3)  # kept as start, stop, step: no column
    pairs = [(1, "a"), (1, "b"), (2, "a"), (2, "b"), (3, "a")]
    multi = pd.DataFrame({"x": np.arange(5.0)}, index=pd.MultiIndex.from_tuples(pairs, names=["g", "h"]))
    multi.to_parquet(tmp_path / "multi.parquet", row_group_size=2)
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(2)(x, "y"), name="stored", storage="memory://")
    for path in (tmp_path / "range.parquet", tmp_path / "multi.parquet"):
        want = pipeline.transform(pd.read_parquet(path), store=False).index.tolist()
        data = megatron.io.ParquetData(path)
        assert set(data) == {"x"} and data.index.tolist() == want, path.name
        assert pipeline.transform(data, store=False).index.tolist() == want, path.name
        assert megatron.io.ParquetData(path, nrows=3).index.tolist() == want[:3], path.name
        batches = list(megatron.io.ParquetGenerator(path, batch_size=4))
        assert [key for batch in batches for key in batch.index.tolist()] == want, path.name
    assert want == pairs
    pipeline.transform(megatron.io.ParquetData(tmp_path / "range.parquet"))
    assert list(pipeline.storage.read().index) == list(range(100, 120, 2))  # stored under its own keys
    named = megatron.io.ParquetData(tmp_path / "multi.parquet", index_col="h")
    assert set(named) == {"x"} and named.index.tolist() == ["a", "b", "a", "b", "a"]


def test_transform_generator_keeps_numbering_rows_across_batches(table_file):
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(2)(x, "x2"), name="gen", storage="memory://")
    outputs = list(pipeline.transform_generator(megatron.io.ParquetGenerator(table_file, batch_size=10)))
    assert [list(o.index)[:1] for o in outputs] == [[0], [10], [20]]
    assert sorted(pipeline.storage.keys()) == list(range(23))


def test_a_lazy_batch_is_a_batch_and_ships_as_one(table_file):
    data = megatron.io.ParquetData(table_file, exclude_cols=["city"], groups={"xy": ["x", "y"]}, nrows=9)
    assert isinstance(data, Batch) and set(data) == {"k", "id", "xy"}
    assert data["xy"].shape == (9, 2) and data.get("nope") is None
    shipped = pickle.loads(pickle.dumps(data))
    assert type(shipped) is Batch and set(shipped) == set(data)
    np.testing.assert_array_equal(shipped["xy"], data["xy"])
    assert dict(data).keys() == data.keys() and all(v is not None for v in dict(data).values())


def test_sample_rows_and_eager_inputs(table_file):
    inputs = megatron.nodes.from_parquet(table_file, exclude_cols=["id"], sample_rows=3)
    assert set(inputs) == {"x", "y", "k", "city"} and inputs["k"].dtype == np.int64
    eager = megatron.nodes.from_parquet(table_file, exclude_cols=["id", "city"], eager=True)
    assert abs(layers.Whiten()(eager["x"]).output.mean()) < 1e-9
    with pytest.raises(DataError, match="sample_rows must be a positive integer"):
        megatron.nodes.from_parquet(table_file, sample_rows=0)


def test_bad_files_and_columns(tmp_path, table_file):
    with pytest.raises(SourceError, match="No such file: .*nope.parquet"):
        megatron.io.ParquetData(tmp_path / "nope.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(SourceError, match="Cannot read Parquet file .*bad.parquet"):
        megatron.io.ParquetGenerator(tmp_path / "bad.parquet", batch_size=3)
    with pytest.raises(DataError, match=r"excluded columns \['cty'\].*Did you mean 'city'"):
        megatron.io.ParquetGenerator(table_file, batch_size=3, exclude_cols=["cty"])
    with pytest.raises(DataError, match="nrows must be a positive integer"):
        megatron.io.ParquetData(table_file, nrows=0)


def test_an_empty_file_gives_empty_arrays_and_no_batches(tmp_path):
    path = write(tmp_path / "e.parquet", {"x": pa.array([], pa.float64())})
    assert megatron.io.ParquetData(path)["x"].shape == (0,)
    assert list(megatron.io.ParquetGenerator(path, batch_size=3)) == []


@pytest.mark.parametrize("check", source_checks(), ids=lambda c: c.__name__)
def test_parquet_generator_passes_the_conformance_suite(check, tmp_path):
    x = np.arange(23.0)
    path = write(tmp_path / "s.parquet", {"x": x, "y": np.arange(23) % 3}, row_group_size=6)
    for batch_size in (1, 5, 6, 30):
        check(
            SourceCase(
                lambda size=batch_size: megatron.io.ParquetGenerator(path, batch_size=size),
                {"x": x},
                batch_size,
                f"parquet, batches of {batch_size}",
            )
        )


COLUMNS = ["a", "b", "c", "d", "e"]


def joined(batches):
    names = batches[0].keys()
    arrays = {n: np.concatenate([b[n] for b in batches]) for n in names}
    return arrays, np.concatenate([b.index for b in batches])


def assert_same(got, expected):
    (arrays, index), (want, want_index) = got, expected
    assert arrays.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(arrays[name], want[name], err_msg=name)
    np.testing.assert_array_equal(index, want_index)


# 25 examples, about 1 s
@settings(max_examples=25, deadline=None)
@given(
    selection=column_selections(COLUMNS),
    n=st.integers(1, 12),
    batch_size=st.integers(1, 5),
    row_group=st.integers(1, 6),
)
def test_parquet_sources_read_the_selection_they_were_given(selection, n, batch_size, row_group):
    values = np.arange(n * len(COLUMNS), dtype=np.int64).reshape(n, len(COLUMNS))
    expected = selected_columns(values, COLUMNS, **selection)
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "t.parquet", dict(zip(COLUMNS, values.T)), row_group)
        whole = megatron.io.ParquetData(path, **selection)
        source = megatron.io.ParquetGenerator(path, batch_size, **selection)
        inputs = megatron.nodes.from_parquet(path, **selection)
        selection["exclude_cols"].append("nope")  # later edits of the caller's list do not reach them
        assert_same((dict(whole), whole.index), expected)
        assert_same(joined(list(source)), expected)
        assert_same(joined(list(source)), expected)
    assert set(inputs) == set(expected[0])
