"""pandas values a function reads (a lookup table in a Series, a frame of constants) and
deques count by content in the fingerprint: a copy in another process (a pipeline sent to a
dask worker) computes the same fingerprint, and a changed value changes it. They were counted
by identity, so a worker's copy never matched the client's and could not store its rows."""

from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.fingerprint.walk import value_fingerprint
from megatron.nodes import Input

pd = pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")

values = st.lists(st.floats(width=32, allow_nan=True), min_size=0, max_size=6)
labels = st.lists(st.integers(-5, 5), min_size=0, max_size=6)


@settings(max_examples=60, deadline=None)
@given(values, st.sampled_from(["float64", "float32", "object"]), st.sampled_from([None, "price"]))
def test_a_series_and_its_copy_elsewhere_read_alike(numbers, dtype, name):
    series = pd.Series(numbers, dtype=dtype, name=name)
    copy = pickle.loads(pickle.dumps(series))  # another object, as on a worker
    assert value_fingerprint(series) == value_fingerprint(copy)
    frame = pd.DataFrame({"a": series, "b": series.astype(str)})
    assert value_fingerprint(frame) == value_fingerprint(pickle.loads(pickle.dumps(frame)))


@settings(max_examples=60, deadline=None)
@given(labels, st.data())
def test_a_changed_value_label_or_dtype_changes_the_fingerprint(numbers, data):
    series = pd.Series(np.array(numbers, dtype=np.int64))
    before = value_fingerprint(series)
    change = data.draw(st.sampled_from(["value", "index", "dtype", "name"]))
    if change == "value" and len(series):
        series.iloc[0] += 1
    elif change == "index":
        series.index = series.index + 1
    elif change == "dtype":
        series = series.astype(np.float64)
    else:
        series.name = "renamed"
    if change == "value" and not len(series):
        return
    if change == "index" and not len(series):
        return
    assert value_fingerprint(series) != before


def test_frames_differ_by_column_names_and_index_names():
    frame = pd.DataFrame({"a": [1, 2]})
    assert value_fingerprint(frame) != value_fingerprint(frame.rename(columns={"a": "b"}))
    named = frame.copy()
    named.index.name = "key"
    assert value_fingerprint(frame) != value_fingerprint(named)


def test_a_pipeline_reading_a_series_or_a_deque_has_the_same_fingerprint_when_copied():
    prices = pd.Series([1.5, 2.5, 3.5])
    scale = collections.deque([2.0])
    x = Input("x", dtype="int64")
    pipeline = megatron.Pipeline(
        x, layers.Lambda(lambda v: prices.to_numpy()[v] * scale[0])(x, "price"), name="lookup"
    )
    cloudpickle = pytest.importorskip("cloudpickle", reason="needs cloudpickle (megatron-dask installs it)")
    copy = cloudpickle.loads(cloudpickle.dumps(pipeline))
    assert copy.fingerprint == pipeline.fingerprint
    before = pipeline.fingerprint
    scale[0] = 3.0
    assert pipeline.fingerprint != before  # a changed captured deque is seen
