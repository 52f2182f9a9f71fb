"""A transform on dask equals a local transform of the computed data, bit for bit, index
included: several inputs, grouped columns, a string index, row filters, empty partitions, dask
arrays, and every built-in layer that runs row by row (windowed layers are refused)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from dask import delayed
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
import megatron_dask as md
from megatron import layers, metrics
from megatron.errors import ConfigError, DataError, GraphError, LengthMismatchError, NotFittedError
from megatron.nodes import Input
from megatron.testing import LayerCase
from megatron.testing.layers import named_pipeline

rng = np.random.default_rng(3)
N = 60


def frame(n: int = N, index=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(2, 3, size=n),
            "c": rng.integers(0, 5, size=n),
            "label": rng.integers(0, 2, size=n),
        },
        index=np.arange(n) * 7 + 100 if index is None else index,
    )


def rich_pipeline() -> megatron.Pipeline:
    """Two inputs, one of grouped columns: a scaled pair, one-hot codes, a product, a filter."""
    pair, code = Input("pair", (2,), columns=["a", "b"]), Input("c")
    scaled = layers.Whiten()(pair, "scaled")
    onehot = layers.OneHotRange()(code, "onehot")
    squared = layers.Lambda(lambda v: v**2)(scaled, "squared")
    return megatron.Pipeline([pair, code], [scaled, onehot, squared], name="rich")


def local_frame(pipeline: megatron.Pipeline, data) -> pd.DataFrame:
    expected = pipeline.transform(data).to_frame()
    expected.index.name = getattr(getattr(data, "index", None), "name", None)
    return expected


def assert_identical(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    for column in expected:
        if expected[column].to_numpy().dtype.kind not in "biufcmM":
            continue  # strings: equal values, checked above (an object array's bytes are pointers)
        assert got[column].to_numpy().tobytes() == expected[column].to_numpy().tobytes(), column


def test_a_dask_dataframe_transforms_as_the_local_data():
    df = frame()
    pipeline = rich_pipeline().fit(df)
    ddf = dd.from_pandas(df, npartitions=4)
    out = md.transform(pipeline, ddf)
    assert out.npartitions == 4
    assert list(out.columns) == ["a", "b", *(f"one_hot_range__c_{i}" for i in range(5)),
                                 "squared[0]", "squared[1]"]  # named by feature names where known  # fmt: skip
    assert out.divisions == ddf.divisions
    assert_identical(out.compute(), local_frame(pipeline, df))


def test_the_pipeline_methods_dispatch_to_megatron_dask():
    df = frame()
    pipeline = rich_pipeline().fit(df)
    ddf = dd.from_pandas(df, npartitions=3)
    assert_identical(pipeline.transform(ddf).compute(), md.transform(pipeline, ddf).compute())
    with pytest.raises(ConfigError, match="takes no index= for a dask collection"):
        pipeline.transform(ddf, index=np.arange(N))


def test_a_string_index_and_its_name_are_kept():
    df = frame(index=pd.Index([f"obs-{i:03d}" for i in range(N)], name="key"))
    pipeline = rich_pipeline().fit(df)
    ddf = dd.from_pandas(df, npartitions=5)
    out = md.transform(pipeline, ddf)
    assert out._meta.index.dtype == out.compute().index.dtype
    assert_identical(out.compute(), local_frame(pipeline, df))
    assert out.compute().index.name == "key"


def test_a_filter_keeps_the_index_of_the_kept_rows_and_empty_partitions_stay_empty():
    df = frame()
    x = Input("a")
    kept = layers.Filter(lambda v: v > 0.5)(x, "kept")
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(2.0)(kept, "doubled"), name="filtered")
    ddf = dd.from_pandas(df, npartitions=6)
    ddf = ddf.map_partitions(lambda p: p[(p.index < 150) | (p.index > 300)])  # a middle one is empty
    computed = ddf.compute()
    out = md.transform(pipeline, ddf)
    sizes = out.map_partitions(len).compute().tolist()
    assert 0 in sizes
    assert_identical(out.compute(), local_frame(pipeline, computed))


def test_dask_arrays_by_input_name_are_cut_into_aligned_row_chunks():
    df = frame()
    pipeline = rich_pipeline().fit(df)
    pair = df[["a", "b"]].to_numpy()
    arrays = {"pair": da.from_array(pair, chunks=(25, 1)), "c": da.from_array(df["c"].to_numpy(), chunks=7)}
    out = md.transform(pipeline, arrays)
    assert out.npartitions == 3  # the first array's row chunks: 25, 25, 10
    assert out.divisions == (0, 25, 50, 59)
    expected = pipeline.transform({"pair": pair, "c": df["c"].to_numpy()}).to_frame()
    assert_identical(out.compute(), expected)
    mixed = md.transform(pipeline, {"pair": arrays["pair"], "c": df["c"].to_numpy()})  # numpy cut alike
    assert_identical(mixed.compute(), expected)


def test_dask_arrays_that_cannot_be_aligned_are_refused():
    df = frame()
    pipeline = rich_pipeline().fit(df)
    pair = da.from_array(df[["a", "b"]].to_numpy(), chunks=10)
    with pytest.raises(LengthMismatchError, match="different numbers of observations"):
        md.transform(pipeline, {"pair": pair, "c": da.arange(N - 1, chunks=10)})
    unknown = pair[pair[:, 0] > 0]
    with pytest.raises(DataError, match="compute_chunk_sizes"):
        md.transform(pipeline, {"pair": unknown, "c": da.arange(N, chunks=10)})
    with pytest.raises(DataError, match="got a dask Series named 'a'"):
        md.transform(pipeline, dd.from_pandas(df, npartitions=2)["a"])


def test_an_unfitted_pipeline_and_windowed_layers_are_refused_before_any_task():
    ddf = dd.from_pandas(frame(), npartitions=2)
    with pytest.raises(NotFittedError):
        md.transform(rich_pipeline(), ddf)
    x = Input("a")
    windows = megatron.Pipeline(x, layers.TimeSeries(3)(x, "windows"), name="windows")
    with pytest.raises(GraphError, match=r"layers \['time_series'\] depend on neighbouring rows"):
        md.transform(windows, ddf)


FLOATS = rng.normal(5, 2, size=(N, 3))
POSITIVE = rng.uniform(0.5, 4, size=(N, 3))
IMAGES = rng.random((N, 4, 6, 3))
WORDS = np.array([" ".join(rng.choice(["the", "cat", "sat", "on", "Dog"], size=4)) for _ in range(N)])
LAYER_CASES = [
    LayerCase(layers.Whiten, (FLOATS,), name="Whiten"),
    LayerCase(layers.MinMaxScale, (FLOATS,), name="MinMaxScale"),
    LayerCase(lambda: layers.Lambda(np.sqrt), (POSITIVE,), name="Lambda"),
    LayerCase(layers.Add, (FLOATS, POSITIVE), name="Add"),
    LayerCase(
        lambda: layers.SimpleImpute("mean"), (np.where(FLOATS > 6, np.nan, FLOATS),), name="SimpleImpute"
    ),
    LayerCase(layers.OneHotRange, (rng.integers(0, 4, size=N),), name="OneHotRange"),
    LayerCase(layers.OneHotLabels, (np.array(["b", "a", "c"] * (N // 3)),), name="OneHotLabels"),
    LayerCase(lambda: layers.Downsample((2, 3)), (IMAGES,), name="Downsample"),
    LayerCase(layers.Flatten, (IMAGES,), name="Flatten"),
    LayerCase(layers.Concatenate, (FLOATS, POSITIVE), name="Concatenate"),
    LayerCase(lambda: layers.Filter(lambda x: x[:, 0] > 5), (FLOATS,), name="Filter"),
    LayerCase(lambda: layers.CountVectorize(max_features=4), (WORDS,), name="CountVectorize"),
    LayerCase(layers.Lowercase, (WORDS,), name="Lowercase"),
]


@pytest.mark.parametrize("case", LAYER_CASES, ids=str)
def test_built_in_layers_transform_as_locally(case: LayerCase):
    pipeline, layer = named_pipeline(case)
    if layer.stateful:
        pipeline.fit(case.feed(case.inputs))
    arrays = {name: da.from_array(a, chunks=(17, *a.shape[1:])) for name, a in case.feed(case.inputs).items()}
    out = md.transform(pipeline, arrays)
    assert_identical(out.compute(), pipeline.transform(case.feed(case.inputs)).to_frame())


def filtered_pipeline() -> megatron.Pipeline:
    """Rows kept by a condition on the grouped columns, then scaled and encoded."""
    pair, code = Input("pair", (2,), columns=["a", "b"]), Input("c")
    kept_pair, kept_code = layers.Filter(lambda p, c: p[:, 0] > 0)([pair, code], ["kept_pair", "kept_code"])
    return megatron.Pipeline(
        [pair, code],
        [layers.Whiten()(kept_pair, "scaled"), layers.OneHotRange(0, 4)(kept_code, "code")],
        name="kept",
    )


INDEXES = {
    "int": lambda n, rng: pd.Index(rng.integers(-50, 50, size=n)),
    "str": lambda n, rng: pd.Index([f"k{v}" for v in rng.integers(0, 30, size=n)], name="key"),
    "float": lambda n, rng: pd.Index(rng.normal(size=n), name="f"),
    "datetime": lambda n, rng: pd.DatetimeIndex(pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 99, n), "D")),
}  # fmt: skip


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(0, 30),
    cuts=st.lists(st.integers(0, 30), max_size=4),
    kind=st.sampled_from(sorted(INDEXES)),
    seed=st.integers(0, 2**16),
)
def test_generated_partitions_transform_and_evaluate_as_the_local_data(n, cuts, kind, seed):
    """Any split into partitions (empty ones, repeated and unsorted keys, unknown divisions) and
    any index type: the dask transform equals the local one of the computed data, and so do
    metrics of filtered rows (a count exactly, a sum to 1e-12)."""
    rng = np.random.default_rng(seed)
    df = frame(n, index=INDEXES[kind](n, rng))
    bounds = [0, *sorted(min(c, n) for c in cuts), n]
    parts = [delayed(df.iloc[start:stop]) for start, stop in itertools.pairwise(bounds)]
    ddf = dd.from_delayed(parts, meta=df.iloc[:0])
    fitted = rich_pipeline().fit(frame(20))
    filtered = filtered_pipeline().fit(frame(20))
    for pipeline in (fitted, filtered):
        out, expected = md.transform(pipeline, ddf), local_frame(pipeline, df)
        if not len(expected):  # no keys: the local frame cannot tell strings from objects, dask's meta can
            expected.index = expected.index.astype(out._meta.index.dtype)
        assert_identical(out.compute(), expected)
    scored = scored_pipeline()
    got, expected = md.evaluate(scored, ddf, split_every=2), scored.evaluate(df)
    assert got["accuracy"] == expected["accuracy"] or (
        np.isnan(got["accuracy"]) and np.isnan(expected["accuracy"])
    )
    assert np.isclose(got["mse"], expected["mse"], rtol=1e-12, atol=0, equal_nan=True)


def scored_pipeline() -> megatron.Pipeline:
    """Metrics of the kept rows: a count and a sum."""
    a, label = Input("a"), Input("label")
    kept_a, kept_label = layers.Filter(lambda v, _: v > -0.5)([a, label], ["kept_a", "kept_label"])
    guess = layers.Lambda(lambda v: (v > 0).astype(np.int64))(kept_a, "guess")
    attached = [
        metrics.Accuracy()([kept_label, guess], "accuracy"),
        metrics.MeanSquaredError()([kept_a, layers.Cast("float64")(kept_label)], "mse"),
    ]
    return megatron.Pipeline([a, label], guess, name="scored", metrics=attached)


def test_the_plugin_imports_no_dask_for_other_data():
    """Loading the plugin and running a pipeline on a dict and on a pandas DataFrame imports
    neither dask nor distributed: the plugin looks at the module name of the data's type."""
    code = """
import sys
import numpy as np, pandas as pd
import megatron
from megatron.nodes import Input
from megatron.layers import ScalarMultiply
from megatron.plugins import get_plugin_manager
assert "dask" in [info.name for info in get_plugin_manager().plugins]
x = Input("x")
pipeline = megatron.Pipeline(x, ScalarMultiply(2.0)(x, "y"), name="light")
pipeline.transform({"x": np.arange(3.0)})
pipeline.transform(pd.DataFrame({"x": np.arange(3.0)}))
import megatron_dask
print(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
