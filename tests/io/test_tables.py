"""Polars DataFrames and Arrow tables in, and out (``Outputs.to_frame(backend="polars")``,
``Outputs.to_arrow()``): read as the pandas DataFrame of the same data is read."""

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import ConfigError, DataError
from megatron.nodes import Input
from megatron.outputs import Outputs
from megatron.testing import SourceCase, source_checks

pl = pytest.importorskip("polars", reason="needs polars: pip install -e 'packages/megatron-core[polars]'")
pa = pytest.importorskip("pyarrow", reason="needs pyarrow: pip install -e 'packages/megatron-core[parquet]'")
pd = pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")
pq = pytest.importorskip("pyarrow.parquet")

KINDS = {
    "int": (pl.Int64, st.integers(-(2**40), 2**40)),
    "small": (pl.Int32, st.integers(-1000, 1000)),
    "float": (pl.Float64, st.floats(allow_nan=True, allow_infinity=False, width=64)),
    "bool": (pl.Boolean, st.booleans()),
    "text": (pl.String, st.text(max_size=5)),
    "time": (pl.Datetime("us"), st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1))),
    "paris": (
        pl.Datetime("us", "Europe/Paris"),
        st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1)),
    ),
    "utc": (pl.Datetime("ns", "UTC"), st.datetimes(dt.datetime(1700, 1, 1), dt.datetime(2200, 1, 1))),
}


@st.composite
def frames(draw):
    """A Polars DataFrame of 1-3 columns of the kinds above, some with nulls."""
    n = draw(st.integers(1, 8))
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=3))
    columns = {}
    for i, kind in enumerate(kinds):
        dtype, values = KINDS[kind]
        nulls = draw(st.booleans())
        cells = st.none() | values if nulls else values
        columns[f"{kind}{i}"] = pl.Series(
            f"{kind}{i}", draw(st.lists(cells, min_size=n, max_size=n)), dtype=dtype
        )
    return pl.DataFrame(list(columns.values()))


def missing(value):
    return value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value))


def assert_same_array(got, want, where):
    """Equal dtype and values; in object columns a None and a NaN are both a missing value
    (pandas' text columns give NaN, Arrow's and Polars' None)."""
    assert got.dtype == want.dtype and got.shape == want.shape, f"{where}: {got.dtype} vs {want.dtype}"
    if got.dtype == object:
        assert [None if missing(v) else v for v in got] == [None if missing(v) else v for v in want], where
    else:
        np.testing.assert_array_equal(got, want, err_msg=where)


def identity_pipeline(frame, parquet=None):
    inputs = megatron.nodes.from_dataframe(frame) if parquet is None else megatron.nodes.from_parquet(parquet)
    outputs = [layers.Lambda(lambda v: v)(node, f"{name}_out") for name, node in inputs.items()]
    return megatron.Pipeline(list(inputs.values()), outputs, name="same"), inputs


def whiten_pipeline(frame):
    inputs = megatron.nodes.from_dataframe(frame)
    floats = [node for node in inputs.values() if node.dtype is not None and node.dtype.kind == "f"]
    if not floats:
        return None
    out = layers.Whiten(ignore_nan=True)(floats[0], "w")
    mse = megatron.metrics.MeanSquaredError()([floats[0], out], "mse")
    return megatron.Pipeline(floats[0], out, metrics=[mse], name="fit_same")


def nullable(pandas, frame):
    """The pandas frame with its boolean columns of pandas' nullable ``boolean`` dtype."""
    return pandas.astype({name: "boolean" for name, kind in frame.schema.items() if kind == pl.Boolean})


# 40 examples, about 4 s
@settings(max_examples=40, deadline=None)
@given(frame=frames())
def test_a_polars_frame_and_its_arrow_table_give_what_the_pandas_frame_gives(frame):
    pandas = frame.to_pandas()
    same = {"polars": frame, "arrow": frame.to_arrow(), "nullable pandas": nullable(pandas, frame)}
    pipeline, inputs = identity_pipeline(pandas)
    want = pipeline.transform(pandas)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "same.parquet"
        pq.write_table(frame.to_arrow(), path, row_group_size=3)
        kinds = [(kind, data, None) for kind, data in same.items()]
        for kind, data, parquet in [*kinds, ("parquet", megatron.io.ParquetData(path), path)]:
            other, other_inputs = identity_pipeline(data, parquet)
            assert {n: (i.shape, i.dtype) for n, i in other_inputs.items()} == {
                n: (i.shape, i.dtype) for n, i in inputs.items()
            }, kind
            got = other.transform(data)
            np.testing.assert_array_equal(got.index, want.index)
            same_pipeline = pipeline.transform(data)  # a pipeline built on one kind reads the others
            for name in want:
                assert_same_array(got[name], want[name], f"{kind}: {name}")
                assert_same_array(same_pipeline[name], want[name], f"{kind} in the pandas pipeline")
        batches = list(megatron.io.ParquetGenerator(path, batch_size=2))
        for name in want:
            column = np.concatenate([b[name.removesuffix("_out")] for b in batches])
            assert_same_array(column, want[name], f"parquet batches: {name}")
    for data in same.values():
        batches = list(megatron.io.PandasGenerator(data, batch_size=3))
        assert np.concatenate([b.index for b in batches]).tolist() == list(range(len(pandas)))
    if whiten_pipeline(pandas) is None:
        return
    for how in ("fit", "fit_generator"):
        want_fit = fitted(pandas, pandas, how)  # like with like: batches change the rounding
        for kind, data in same.items():
            got = fitted(data, data, how)
            assert type(got) is type(want_fit), f"{kind} {how}: {got!r} vs {want_fit!r}"
            if isinstance(got, tuple):
                np.testing.assert_array_equal(got[0], want_fit[0], err_msg=f"{kind} {how}")
                np.testing.assert_array_equal(got[1], want_fit[1], err_msg=f"{kind} {how}")
            else:
                assert got is want_fit, f"{kind} {how}: {got} vs {want_fit}"


def fitted(frame, data, how):
    """What a Whiten fitted on ``data`` gives (its output and a metric), or the error it raises
    (all missing values, say): the same for every kind of table."""
    pipeline = whiten_pipeline(frame)
    try:
        if how == "fit":
            pipeline.fit(data)
        else:
            pipeline.fit_generator(megatron.io.PandasGenerator(data, batch_size=3))
        return pipeline.transform(data)["w"], pipeline.evaluate(data)["mse"]
    except megatron.errors.MegatronError as exc:
        return type(exc)


def test_zoned_datetimes_keep_their_time_zone_as_in_pandas(tmp_path):
    """Local times, not naive UTC: the day of month of 00:30 in Paris is the 1st, not the 31st."""
    stamps = pd.to_datetime(["2024-01-01 00:30", None, "2024-06-01 01:00"]).tz_localize("Europe/Paris")
    pandas = pd.DataFrame({"ts": stamps})
    pq.write_table(pa.Table.from_pandas(pandas), tmp_path / "tz.parquet")
    ts = Input("ts")
    day = layers.Lambda(lambda v: pd.DatetimeIndex(pd.Series(v)).day.to_numpy(), output_shape=())(ts, "day")
    pipeline = megatron.Pipeline(ts, day, name="zoned")
    want = pipeline.transform(pandas)["day"]
    assert want[0] == 1 and np.isnan(want[1])
    for kind, data in {
        "polars": pl.from_pandas(pandas),
        "arrow": pa.Table.from_pandas(pandas),
        "parquet": megatron.io.ParquetData(tmp_path / "tz.parquet"),
    }.items():
        np.testing.assert_array_equal(pipeline.transform(data)["day"], want, err_msg=kind)
        got = megatron.io.PandasData(data)["ts"] if kind != "parquet" else data["ts"]
        assert got.dtype == object and got[0] == stamps[0] and str(got[0].tz) == "Europe/Paris", kind
        assert got[1] is pd.NaT, kind
    out = megatron.Pipeline(ts, layers.Lambda(lambda v: v)(ts, "out"), name="out").transform(pandas)
    for column in (out.to_frame(backend="polars")["out"], pl.from_arrow(out.to_arrow()["out"])):
        assert column.dtype == pl.Datetime("us", "Europe/Paris") and column.null_count() == 1
        assert column.to_list()[0] == stamps[0].to_pydatetime()


def test_nullable_booleans_are_true_false_none_whichever_library_holds_them():
    pandas = pd.DataFrame({"b": pd.array([True, None, False], dtype="boolean")})
    tables = {"pandas": pandas, "polars": pl.from_pandas(pandas), "arrow": pa.Table.from_pandas(pandas)}
    tables["pyarrow-backed pandas"] = pandas.astype({"b": "bool[pyarrow]"})
    for kind, frame in tables.items():
        inputs = megatron.nodes.from_dataframe(frame)
        pipeline = megatron.Pipeline(inputs["b"], inputs["b"], name="b")
        for other, data in tables.items():
            got = pipeline.transform(data)["b"]
            assert got.dtype == object and got.tolist() == [True, None, False], (kind, other)
    grouped = pd.DataFrame(
        {"a": pd.array([True, None], dtype="boolean"), "b": pd.array([False, True], dtype="boolean")}
    )
    data = megatron.io.PandasData(grouped, groups={"ab": ["a", "b"]})
    assert data["ab"].tolist() == [[True, False], [None, True]]


def test_a_list_of_polars_frames_is_a_stream_and_one_frame_is_not():
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="stream")
    frames = [pl.DataFrame({"x": [1.0, 2.0]}), pl.DataFrame({"x": [3.0, 4.0]})]
    pipeline.fit_generator(frames)
    assert float(pipeline.layers[0].metadata["mean"]) == 2.5
    outputs = list(pipeline.transform_generator(frames))
    assert list(outputs[1].index) == [2, 3]
    with pytest.raises(DataError, match=r"takes an iterable of batches.*polars.*use fit\(data\)"):
        pipeline.fit_generator(frames[0])


def test_grouped_columns_of_a_polars_frame_are_one_input():
    frame = pl.DataFrame({"x": [3.0, 0.0], "y": [4.0, 1.0], "label": ["a", "b"]})
    inputs = megatron.nodes.from_dataframe(frame, groups={"xy": ["x", "y"]}, index_col="label")
    assert set(inputs) == {"xy"} and inputs["xy"].shape == (2,)
    norm = layers.Lambda(lambda v: np.linalg.norm(v, axis=1))(inputs["xy"], "norm")
    pipeline = megatron.Pipeline(inputs["xy"], norm, name="grouped")
    np.testing.assert_allclose(pipeline.transform(frame)["norm"], [5.0, 1.0])
    data = megatron.io.PandasData(frame, groups={"xy": ["x", "y"]}, index_col="label")
    assert list(data.index) == ["a", "b"] and data["xy"].shape == (2, 2)


def test_a_missing_input_in_a_polars_frame_names_it():
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(2)(x, "y"), name="missing")
    with pytest.raises(
        megatron.errors.MissingInputError, match="needs input 'x'.*Did you mean 'x' for the given key 'X'"
    ):
        pipeline.transform(pl.DataFrame({"X": [1.0]}))


@pytest.mark.parametrize("check", source_checks(), ids=lambda c: c.__name__)
def test_tables_in_batches_pass_the_conformance_suite(check):
    frame = pl.DataFrame({"x": np.arange(23.0), "y": np.arange(23) % 3})
    expected = {"x": frame["x"].to_numpy()}
    for name, table in (("polars", frame), ("arrow", frame.to_arrow())):
        check(SourceCase(lambda t=table: megatron.io.PandasGenerator(t, batch_size=5), expected, 5, name))


# -- out --------------------------------------------------------------------------------------------


def outputs():
    return Outputs(
        ["score", "label", "pair", "when"],
        [
            np.array([0.5, np.nan, 2.0]),
            np.array(["a", None, "c"], dtype=object),
            np.arange(6).reshape(3, 2),
            np.array(["2026-01-01", "NaT", "2026-03-01"], dtype="datetime64[us]"),
        ],
        index=np.array([10, 11, 12]),
    )


def test_to_frame_polars_and_to_arrow_hold_what_the_pandas_frame_holds():
    result = outputs()
    frame = result.to_frame()
    polars = result.to_frame(backend="polars")
    arrow = result.to_arrow()
    assert polars.columns == arrow.column_names == ["index", *frame.columns]
    assert polars["index"].to_list() == arrow["index"].to_pylist() == [10, 11, 12]
    assert polars["label"].to_list() == arrow["label"].to_pylist() == ["a", None, "c"]
    assert polars["pair[1]"].to_list() == [1, 3, 5] and arrow.schema.field("pair[1]").type == pa.int64()
    assert np.isnan(arrow["score"].to_numpy()[1]) and arrow["score"].null_count == 0  # NaN stays NaN
    assert arrow["when"].null_count == 1 and polars["when"].null_count() == 1
    for column in frame.columns:
        assert_same_array(polars[column].to_numpy(), frame[column].to_numpy(), column)
    assert result.to_arrow(index=None).column_names == list(frame.columns)
    assert result.to_frame(backend="polars", index="key").columns[0] == "key"


def test_outputs_to_tables_refuse_clashing_names_and_unknown_backends():
    clash = Outputs(["index"], [np.arange(2)])
    with pytest.raises(ConfigError, match=r"an output column is named 'index'.*index='another name'"):
        clash.to_arrow()
    assert clash.to_frame(backend="polars", index="row").columns == ["row", "index"]
    with pytest.raises(ConfigError, match=r"backend must be one of \['pandas', 'polars'\]; got 'spark'"):
        clash.to_frame(backend="spark")
    mixed = Outputs(["m"], [np.array([1, "a"], dtype=object)])
    with pytest.raises(DataError, match="column 'm' cannot become an Arrow column"):
        mixed.to_arrow()


def test_a_table_out_is_a_table_in():
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(2)(x, "x2"), name="round")
    doubled = pipeline.transform(pl.DataFrame({"x": [1.0, 2.0]})).to_frame(backend="polars")
    x2 = Input("x2")
    again = megatron.Pipeline(x2, layers.ScalarMultiply(2)(x2, "x4"), name="again")
    np.testing.assert_array_equal(again.transform(doubled)["x4"], [4.0, 8.0])
    np.testing.assert_array_equal(
        again.transform(pipeline.transform({"x": np.ones(2)}).to_arrow())["x4"], [4, 4]
    )
