"""Data in: DataFrames, CSV files and arrays, whole or in batches, and inputs from schemas."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import ConfigError, DataError, MissingInputError, SourceError
from megatron.io import Batch
from megatron.nodes import Input
from megatron.testing import SourceCase, source_checks
from megatron.testing.sources import selected_columns
from megatron.testing.strategies import column_selections

pd = pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")


@pytest.fixture
def frame():
    rng = np.random.default_rng(5)
    n = 50
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n).astype(np.int32),
            "income": rng.normal(50_000, 10_000, n),
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "member": rng.random(n) > 0.5,
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
        },
        index=pd.Index([f"id{i}" for i in range(n)], name="id"),
    )


def test_mixed_dtype_frame_through_a_pipeline_keeps_dtypes_and_index(frame):
    inputs = megatron.nodes.from_dataframe(frame)
    assert inputs["age"].dtype == np.int32 and inputs["member"].dtype == np.bool_
    assert inputs["city"].dtype is None  # text: any dtype accepted
    doubled = layers.ScalarMultiply(2)(inputs["age"], "age2")
    city = layers.Lambda(lambda c: c)(inputs["city"], "city_out")
    member = layers.Lambda(lambda m: m)(inputs["member"], "member_out")
    pipeline = megatron.Pipeline(list(inputs.values()), [doubled, city, member], name="frame")
    result = pipeline.transform(frame).to_frame()
    assert list(result.index) == list(frame.index)
    assert result["age2"].dtype == np.int64 or result["age2"].dtype == np.int32
    assert result["member_out"].dtype == np.bool_
    assert result["city_out"].tolist() == frame["city"].tolist()
    np.testing.assert_array_equal(result["age2"], frame["age"] * 2)


def test_pandas_data_keeps_each_column_dtype(frame):
    data = megatron.io.PandasData(frame, exclude_cols=["x"], nrows=10)
    assert set(data) == {"age", "income", "city", "member", "y"}
    assert data["age"].dtype == np.int32 and data["income"].dtype == np.float64
    assert data["member"].dtype == np.bool_
    assert len(data["city"]) == 10 and isinstance(data["city"][0], str)
    assert list(data.index) == [f"id{i}" for i in range(10)]


def test_grouped_columns_become_one_input(frame):
    inputs = megatron.nodes.from_dataframe(frame, groups={"xy": ["x", "y"]})
    assert inputs["xy"].shape == (2,) and "x" not in inputs
    norm = layers.Lambda(lambda v: np.linalg.norm(v, axis=1))(inputs["xy"], "norm")
    pipeline = megatron.Pipeline(inputs["xy"], norm, name="grouped")
    np.testing.assert_allclose(pipeline.transform(frame)["norm"], np.hypot(frame["x"], frame["y"]))
    batch = megatron.io.PandasData(frame, groups={"xy": ["x", "y"]})
    np.testing.assert_allclose(pipeline.transform(batch)["norm"], np.hypot(frame["x"], frame["y"]))


def test_eager_inputs_from_a_frame(frame):
    inputs = megatron.nodes.from_dataframe(frame, eager=True)
    scaled = layers.Whiten()(inputs["income"])
    assert scaled.output.shape == (50,)
    assert abs(scaled.output.mean()) < 1e-9


def write_csv(path, frame):
    frame.to_csv(path, index=False)
    return path


def build_chain():
    x = Input("x")
    y = Input("y")
    first = layers.Whiten()(layers.Concatenate()([x, y]), "first")
    second = layers.MinMaxScale()(layers.ScalarMultiply(3)(first), "second")
    return megatron.Pipeline([x, y], [first, second], name="csv_chain")


def test_csv_fit_generator_through_two_stateful_layers_equals_fit(tmp_path, frame):
    path = write_csv(tmp_path / "data.csv", frame)
    streamed = build_chain()
    source = megatron.io.CSVGenerator(path, batch_size=7)
    streamed.fit_generator(source)
    whole = build_chain()
    whole.fit(megatron.io.CSVData(path))
    for a, b in zip(streamed.graph.stateful_layers, whole.graph.stateful_layers):
        for key in b.metadata:
            np.testing.assert_allclose(a.metadata[key], b.metadata[key], err_msg=key)


def test_csv_generator_streams_with_bounded_batches(tmp_path):
    n = 5_000
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "y": np.ones(n)})
    path = write_csv(tmp_path / "big.csv", frame)
    sizes = []

    class Counting(megatron.io.CSVGenerator):
        def one_pass(self):
            for batch in super().one_pass():
                sizes.append(len(batch["x"]))
                yield batch

    pipeline = build_chain()
    pipeline.fit_generator(Counting(path, batch_size=256))
    assert max(sizes) == 256 and sum(sizes) == 2 * n  # two stages, each one pass
    np.testing.assert_allclose(pipeline.graph.stateful_layers[0].metadata["mean"], [frame["x"].mean(), 1.0])


def test_transform_generator_writes_each_batch_under_its_own_index(tmp_path, frame):
    path = write_csv(tmp_path / "data.csv", frame)
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(2)(x, "x2"), name="gen", storage="memory://")
    outputs = list(pipeline.transform_generator(megatron.io.CSVGenerator(path, batch_size=13)))
    assert len(outputs) == 4
    keys = [list(o.index) for o in outputs]
    assert keys[0] == list(range(13)) and keys[3] == list(range(39, 50))
    assert sorted(pipeline.storage.keys()) == list(range(50))
    np.testing.assert_allclose(pipeline.storage.read(rows=[45])["x2"], [frame["x"].iloc[45] * 2])


def test_array_generator_reads_npy_memory_mapped_and_is_re_iterable(tmp_path):
    images = np.random.default_rng(1).random((30, 4, 4, 3)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    source = megatron.io.ArrayGenerator(
        {"image": tmp_path / "images.npy", "label": np.arange(30)}, batch_size=8
    )
    assert len(source) == 4
    first = [b["image"] for b in source]
    second = [b["image"] for b in source]
    assert len(first) == len(second) == 4
    np.testing.assert_array_equal(np.concatenate(second), images)
    assert list(next(iter(source)).index) == list(range(8))
    repeating = megatron.io.ArrayGenerator({"x": np.arange(10.0)}, batch_size=4, repeat=True)
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="repeat")
    with pytest.raises(DataError, match="repeats forever: pass steps_per_epoch"):
        pipeline.fit_generator(repeating)
    pipeline.fit_generator(repeating, steps_per_epoch=5)  # cycles past the end
    assert int(pipeline.layers[0].metadata["n"]) == 4 + 4 + 2 + 4 + 4


def test_progress_bar_can_be_switched(tmp_path, capsys):
    pytest.importorskip("tqdm", reason="needs tqdm (megatron-core[progress]), which draws the bars")
    source = megatron.io.ArrayGenerator({"x": np.arange(100.0)}, batch_size=10)
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="bars")
    pipeline.fit_generator(source, progress=True)
    err = capsys.readouterr().err
    assert "bars: fit stage 1/1, epoch 1/1" in err and "/10" in err
    pipeline.fit_generator(source, progress=False)
    assert capsys.readouterr().err == ""


# -- bad input ------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="No such file: .*nope.csv"):
        megatron.io.CSVData(tmp_path / "nope.csv")
    with pytest.raises(SourceError, match="No such file"):
        megatron.io.CSVGenerator(tmp_path / "nope.csv", batch_size=10)


def test_excluded_column_that_does_not_exist(frame, tmp_path):
    with pytest.raises(
        DataError, match=r"excluded columns \['agee'\] not among the columns.*Did you mean 'age'"
    ):
        megatron.io.PandasData(frame, exclude_cols=["agee"])
    path = write_csv(tmp_path / "d.csv", frame)
    with pytest.raises(DataError, match=r"excluded columns \['nope'\]"):
        megatron.io.CSVGenerator(path, batch_size=5, exclude_cols=["nope"])


def test_ragged_csv_rows(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(SourceError, match="ragged.csv.*Expected 2 fields"):
        megatron.io.CSVData(path)
    with pytest.raises(SourceError, match="Expected 2 fields"):
        list(megatron.io.CSVGenerator(path, batch_size=1))


def test_dtype_change_between_batches_names_column_and_batch(tmp_path):
    path = tmp_path / "drift.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(10)) + "10,\n")
    with pytest.raises(
        SourceError, match=r"Column 'b' .* changes dtype in batch 2: int64 in the first batch, float64"
    ):
        list(megatron.io.CSVGenerator(path, batch_size=5))
    fixed = list(megatron.io.CSVGenerator(path, batch_size=5, dtype={"b": float}))
    assert len(fixed) == 3


def test_generator_batch_missing_an_input_names_the_batch():
    x, y = Input("x"), Input("y")
    pipeline = megatron.Pipeline([x, y], layers.Add()([x, y], "s"), name="p")
    batches = [{"x": np.ones(2), "y": np.ones(2)}, {"x": np.ones(2)}]
    with pytest.raises(MissingInputError, match="Batch 1: .*needs input 'y'"):
        list(pipeline.transform_generator(batches))


@pytest.mark.parametrize("size", [0, -3, 2.5, None])
def test_batch_size_must_be_positive(frame, size):
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        megatron.io.PandasGenerator(frame, batch_size=size)


def test_batch_is_a_dict_with_an_index():
    batch = Batch({"x": np.arange(3)}, index=["a", "b", "c"])
    x = Input("x")
    out = megatron.Pipeline(x, layers.ScalarMultiply(1)(x, "y"), name="b").transform(batch)
    assert list(out.index) == ["a", "b", "c"]


def source_cases(tmp_path):
    frame = pd.DataFrame({"x": np.arange(23.0), "y": np.arange(23) % 3})
    frame.to_csv(tmp_path / "s.csv", index=False)
    np.save(tmp_path / "x.npy", frame["x"].to_numpy())
    expected = {"x": frame["x"].to_numpy()}
    return [
        SourceCase(lambda: megatron.io.PandasGenerator(frame, batch_size=5), expected, 5, "pandas"),
        SourceCase(lambda: megatron.io.CSVGenerator(tmp_path / "s.csv", batch_size=5), expected, 5, "csv"),
        SourceCase(
            lambda: megatron.io.ArrayGenerator({"x": tmp_path / "x.npy"}, batch_size=5), expected, 5, "npy"
        ),
    ]


@pytest.mark.parametrize("check", source_checks(), ids=lambda c: c.__name__)
def test_sources_pass_the_conformance_suite(check, tmp_path):
    for case in source_cases(tmp_path):
        check(case)


# -- one column selection per source ----------------------------------------------------------------
COLUMNS = ["a", "b", "c", "d", "e"]


def joined(batches):
    """Batches of one pass as one: arrays and index concatenated."""
    names = batches[0].keys()
    return {n: np.concatenate([b[n] for b in batches]) for n in names}, np.concatenate(
        [b.index for b in batches]
    )


def assert_same(got, expected):
    (arrays, index), (want, want_index) = got, expected
    assert arrays.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(arrays[name], want[name], err_msg=name)
    np.testing.assert_array_equal(index, want_index)


def edit_in_place(selection):
    """Change the caller's list and dict after the source is built: the source keeps the
    selection it was given."""
    selection["exclude_cols"].append("nope")
    if selection["groups"]:
        selection["groups"]["g"].append("nope")
        selection["groups"]["other"] = ["nope"]


@settings(max_examples=25, deadline=None)
@given(selection=column_selections(COLUMNS), n=st.integers(1, 12), batch_size=st.integers(1, 5))
def test_every_source_reads_every_batch_with_the_selection_it_was_given(selection, n, batch_size):
    values = np.arange(n * len(COLUMNS), dtype=np.int64).reshape(n, len(COLUMNS))
    table = pd.DataFrame(values, columns=COLUMNS)
    expected = selected_columns(values, COLUMNS, **selection)
    with tempfile.TemporaryDirectory() as folder:
        path = write_csv(Path(folder) / "t.csv", table)
        whole = [megatron.io.PandasData(table, **selection), megatron.io.CSVData(path, **selection)]
        sources = [
            megatron.io.PandasGenerator(table, batch_size, **selection),
            megatron.io.CSVGenerator(path, batch_size, **selection),
        ]
        inputs = megatron.nodes.from_dataframe(table, **selection)
        edit_in_place(selection)
        for batch in whole:
            assert_same((dict(batch), batch.index), expected)
        for source in sources:
            assert_same(joined(list(source)), expected)
            assert_same(joined(list(source)), expected)  # each pass alike
    assert set(inputs) == set(expected[0])


def test_a_mistyped_column_is_suggested_even_when_short(frame):
    with pytest.raises(DataError, match=r"Did you mean 'x' for 'X'\?.*Did you mean 'city' for 'ctiy'\?"):
        megatron.io.PandasData(frame, exclude_cols=["X", "ctiy"])


def test_sample_rows_must_be_a_positive_count(tmp_path, frame):
    path = write_csv(tmp_path / "d.csv", frame)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(DataError, match="sample_rows must be a positive integer"):
            megatron.nodes.from_csv(path, sample_rows=bad)
    assert set(megatron.nodes.from_csv(path, sample_rows=3)) == set(frame.columns)
