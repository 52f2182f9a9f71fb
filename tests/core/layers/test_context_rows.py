"""Windowed layers say their reach: ``Layer.context_rows`` rows before a row are all it needs,
so batches overlapped by that many rows give the rows of the whole; a layer that declares a
reach is stream-stateful."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from megatron import Pipeline, layers
from megatron.errors import GraphError
from megatron.layers.base import Layer
from megatron.nodes import Input
from megatron.plugins import get_registry


def test_a_layer_reaches_no_other_row_unless_it_says_so():
    assert layers.Lambda(np.sqrt).context_rows == 0
    assert layers.TimeSeries(5).context_rows == 4 and layers.TimeSeries(1).context_rows == 0
    assert layers.TimeSeries(5).stream_stateful


def test_every_installed_layer_that_declares_a_reach_is_stream_stateful():
    registry = get_registry()
    declaring = []
    for name in registry.names("layer"):
        cls = registry.get("layer", name)
        if isinstance(cls, type) and issubclass(cls, Layer) and cls.context_rows is not Layer.context_rows:
            declaring.append(name)
            assert cls.stream_stateful, f"{name} declares context_rows but is not stream_stateful"
    assert "TimeSeries" in declaring


@settings(max_examples=50, deadline=None)
@given(
    rows=st.integers(0, 30),
    window=st.integers(1, 6),
    time_axis=st.sampled_from([1, 2]),
    reverse=st.booleans(),
    cuts=st.lists(st.integers(0, 30), max_size=5),
)
def test_batches_overlapped_by_the_context_rows_give_the_windows_of_the_whole(
    rows, window, time_axis, reverse, cuts
):
    layer = layers.TimeSeries(window, time_axis=time_axis, reverse=reverse)
    data = np.arange(rows * 2, dtype=float).reshape(rows, 2)
    whole, whole_positions = layer.transform(data)
    bounds = [0, *sorted(min(c, rows) for c in cuts), rows]
    pieces, positions = [], []
    for start, end in itertools.pairwise(bounds):
        first = max(start - layer.context_rows, 0)  # the batch, with the rows its first row reaches
        windows, kept = layer.transform(data[first:end])
        keep = kept + first >= start  # windows that end in this batch's own rows
        pieces.append(windows[keep])
        positions.append(kept[keep] + first)
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    np.testing.assert_array_equal(np.concatenate(positions), whole_positions)


@pytest.mark.parametrize("window", [1, 3])
def test_a_cached_transform_still_refuses_a_windowed_layer(window):
    # the cache reads stream_stateful, whatever the reach: a window of one row is refused too
    x = Input("x", (2,))
    pipeline = Pipeline(x, layers.TimeSeries(window)(x, "w"), name="windows", storage="memory://")
    with pytest.raises(GraphError, match=r"depend on neighbouring rows"):
        pipeline.transform({"x": np.ones((4, 2))}, cache=True)
