"""Fitting never gives a wrong answer: one pass for one-pass statistics, statistics kept to the
shape they were learned on, no NaN or infinity learned, casts and shares that cannot be
computed refused, and honest messages and logs."""

import logging
import re
import warnings

import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.errors import DataError, LayerInputError
from megatron.layers import StatefulLayer
from megatron.nodes import Input


class RowCounter(StatefulLayer):
    """A user's counting statistic: how many rows it learned from."""

    def partial_fit(self, X):
        self.metadata["rows"] = self.metadata.get("rows", 0) + len(X)

    def transform(self, X):
        return np.full(len(X), self.metadata["rows"])


def batches_of(data, size):
    return [{"x": data[i : i + size]} for i in range(0, len(data), size)]


# -- epochs are for iterative learners -----------------------------------------------------------
def test_a_counting_statistic_sees_the_data_once_whatever_epochs_says():
    x = Input("x")
    pipeline = megatron.Pipeline(x, RowCounter()(x, "rows"), name="count")
    pipeline.fit_generator(batches_of(np.arange(100.0), 10), epochs=3)
    assert pipeline.transform({"x": np.zeros(1)})["rows"].tolist() == [100]


@pytest.mark.parametrize(
    ("make", "data"),
    [
        (layers.OneHotRange, np.array([0, 3, 1, 2, 7] * 20)),
        (layers.Whiten, np.random.default_rng(0).normal(size=(100, 3))),
        (layers.MinMaxScale, np.random.default_rng(1).normal(size=(100, 3))),
        (layers.CountVectorize, np.array(["a b", "b c c", "d"] * 33 + ["e"])),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_fit_generator_with_epochs_equals_fit_for_one_pass_statistics(make, data):
    x = Input("x", data.shape[1:])
    streamed = make()
    megatron.Pipeline(x, streamed(x, "out"), name="streamed").fit_generator(batches_of(data, 30), epochs=3)
    whole = make()
    x2 = Input("x", data.shape[1:])
    megatron.Pipeline(x2, whole(x2, "out"), name="whole").fit({"x": data})
    assert not streamed.iterative
    assert streamed.metadata.keys() == whole.metadata.keys()
    for key in whole.metadata:
        got, want = np.asarray(streamed.metadata[key]), np.asarray(whole.metadata[key])
        if want.dtype.kind == "f":  # merged moments: equal up to rounding
            np.testing.assert_allclose(got, want, rtol=1e-12)
        else:
            np.testing.assert_array_equal(got, want)


class Learner(RowCounter):
    iterative = True


def test_an_iterative_layer_gets_every_epoch_and_a_statistic_beside_it_one():
    x = Input("x")
    counter, learner = RowCounter(), Learner()
    pipeline = megatron.Pipeline(x, [counter(x, "once"), learner(x, "each")], name="mixed")
    pipeline.fit_generator(batches_of(np.arange(100.0), 25), epochs=3)
    assert counter.metadata["rows"] == 100 and learner.metadata["rows"] == 300


# -- statistics keep to the shape they were fitted on ------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [layers.Whiten, layers.MinMaxScale, lambda: layers.SimpleImpute("mean")],
    ids=["Whiten", "MinMaxScale", "SimpleImpute"],
)
@pytest.mark.parametrize(("fitted", "other"), [((3,), (1,)), ((), (3,)), ((3,), ())])
def test_a_statistic_refuses_another_feature_shape_naming_both(make, fitted, other):
    rng = np.random.default_rng(2)
    x, y = Input("x", fitted), Input("y", other)
    layer = make()
    fit_on = megatron.Pipeline(x, layer(x, "fitted"), name="fit")
    fit_on.fit({"x": rng.normal(size=(20, *fitted))})
    elsewhere = megatron.Pipeline(y, layer(y, "elsewhere"), name="other")
    with pytest.raises(
        LayerInputError,
        match=rf"fitted on observations of shape {re.escape(str(fitted))}.*got observations of shape {re.escape(str(other))}",
    ):
        elsewhere.transform({"y": rng.normal(size=(4, *other))})
    with pytest.raises(LayerInputError, match="fitted on observations of shape"):
        layer.transform(rng.normal(size=(4, *other)))  # called directly, too
    with pytest.raises(LayerInputError, match="fitted on observations of shape"):
        layer.partial_fit(rng.normal(size=(4, *other)))  # a further batch may not change it either
    layer.fit(rng.normal(size=(4, *other)))  # a fresh fit learns the new shape
    assert layer.transform(rng.normal(size=(2, *other))).shape == (2, *other)


def test_a_reloaded_statistic_keeps_its_shape(tmp_path):
    x = Input("x", (3,))
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="shape")
    pipeline.fit({"x": np.random.default_rng(3).normal(size=(10, 3))})
    loaded = megatron.load_pipeline(pipeline.save(tmp_path))
    (whiten,) = loaded.layers
    with pytest.raises(LayerInputError, match=r"shape \(3,\)"):
        whiten.transform(np.ones((2, 1)))


# -- no NaN or infinity learned ----------------------------------------------------------------------
def test_nan_in_fit_data_is_refused_naming_layer_node_and_feature():
    x = Input("x", (3,))
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "white"), name="nan")
    data = np.arange(12.0).reshape(4, 3)
    data[2, 1] = np.nan
    with pytest.raises(
        LayerInputError, match=r"'whiten' \(Whiten\) at node 'white'.*feature 1 holds nan in row 2"
    ):
        pipeline.fit({"x": data})


def test_inf_in_fit_data_is_refused_by_min_max_scale():
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.MinMaxScale()(x, "scaled"), name="inf")
    with pytest.raises(LayerInputError, match="feature 0 holds inf"):
        pipeline.fit({"x": np.array([[1.0, 2.0], [np.inf, 3.0]])})


def test_ignore_nan_leaves_nan_out_of_the_statistics_and_keeps_it_in_the_output():
    data = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0], [5.0, 6.0]])
    whiten = layers.Whiten(ignore_nan=True)
    whiten.fit(data)
    np.testing.assert_allclose(whiten.metadata["mean"], [3.0, 6.0])
    out = whiten.transform(data)
    assert np.isnan(out[0, 1]) and np.isnan(out[2, 0]) and np.isfinite(out[1]).all()
    scale = layers.MinMaxScale(ignore_nan=True)
    scale.fit(data[:2])
    scale.partial_fit(data[2:])
    np.testing.assert_array_equal(scale.metadata["min"], [1.0, 4.0])
    np.testing.assert_array_equal(scale.metadata["max"], [5.0, 8.0])
    with pytest.raises(LayerInputError, match="holds inf"):
        layers.Whiten(ignore_nan=True).fit(np.array([[np.inf], [1.0]]))


def test_simple_impute_refuses_an_infinity_that_would_become_the_fill_value():
    with pytest.raises(LayerInputError, match="holds inf"):
        layers.SimpleImpute("mean").fit(np.array([[1.0], [np.inf], [np.nan]]))
    with pytest.raises(LayerInputError, match="holds inf"):
        layers.SimpleImpute("median").fit(np.array([[1.0], [np.inf], [np.nan]]))
    filled = layers.SimpleImpute("mean")
    filled.fit(np.array([[1.0], [3.0], [np.nan]]))  # NaN is what it fills
    assert filled.transform(np.array([[np.nan]])).tolist() == [[2.0]]


def test_one_hot_labels_refuses_nan_labels():
    with pytest.raises(LayerInputError, match="NaN as a label"):
        layers.OneHotLabels().fit(np.array([1.0, np.nan, 2.0]))


def test_cast_to_int_refuses_nan_inf_and_values_out_of_range_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(LayerInputError, match="cannot cast nan to int32"):
            layers.Cast("int32").transform(np.array([np.nan, np.inf]))
        with pytest.raises(LayerInputError, match="cannot cast 300 to uint8"):
            layers.Cast("uint8").transform(np.array([1, 300]))
        with pytest.raises(LayerInputError, match="beyond its largest value"):
            layers.Cast("float32").transform(np.array([1e300]))
        assert layers.Cast("int32").transform(np.array([1.9, -2.0, 2147483647.0])).tolist() == [
            1,
            -2,
            2147483647,
        ]
        assert layers.Cast("float32").transform(np.array([np.nan])).dtype == np.float32  # NaN stays NaN


def test_normalize_refuses_a_row_that_sums_to_infinity():
    with pytest.raises(LayerInputError, match="row 1 sums to inf"):
        layers.Normalize().transform(np.array([[1.0, 1.0, 2.0], [np.inf, 1.0, 0.0]]))
    with pytest.raises(LayerInputError, match="sums to inf"):
        layers.Normalize().transform(np.array([[1e308, 1e308, 1.0]]))
    np.testing.assert_allclose(layers.Normalize().transform(np.array([[1.0, 3.0]])), [[0.25, 0.75]])


# -- what a one-shot iterator needs ----------------------------------------------------------------
def test_a_one_shot_iterator_that_runs_out_says_why_and_what_to_pass():
    x = Input("x")
    first = layers.Whiten()(x)
    pipeline = megatron.Pipeline(x, layers.MinMaxScale()(first, "out"), name="staged")
    batches = iter([{"x": np.arange(5.0)}] * 2)
    with pytest.raises(
        DataError,
        match=r"ran out after 0 batches; 2 were asked for per pass, in pass 2 of 2 \(2 stages of stateful "
        r"layers, one pass each\)\. It is a one-shot iterator.*4 batches in all: pass a list or a megatron source",
    ):
        pipeline.fit_generator(batches, steps_per_epoch=2)


def test_a_source_that_gives_no_batches_is_refused_instead_of_leaving_layers_unfitted():
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "out"), name="empty")
    with pytest.raises(DataError, match="ran out after 0 batches, in pass 1 of 1.*every time it is iterated"):
        pipeline.fit_generator([])


# -- the fit log --------------------------------------------------------------------------------------
def test_a_shared_layer_logs_its_fit_time_and_all_its_rows(caplog):
    a, b = Input("a"), Input("b")
    shared = layers.Whiten()
    pipeline = megatron.Pipeline([a, b], [shared(a, "sa"), shared(b, "sb")], name="shared")
    with caplog.at_level(logging.INFO, logger="megatron"):
        pipeline.fit({"a": np.arange(5.0), "b": np.arange(5.0)})
    (line,) = [
        r.getMessage() for r in caplog.records if "whiten" in r.getMessage() and "rows" in r.getMessage()
    ]
    seconds = float(line.rsplit(" in ", 1)[1].split()[0])
    assert "on 10 rows of 2 calls" in line and seconds < 60, line
