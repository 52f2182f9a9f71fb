"""The public stage API that executors and plugins build on (stages, stage_inputs,
metric_states, feeds), and data the core does not read itself going to the plugin that claims
it (run_operation) instead of being collected into memory."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron.errors import ConfigError, DataError, GraphError, MissingDependencyError
from megatron.layers import Lambda, MinMaxScale, OneHotRange, Whiten
from megatron.metrics import Accuracy, MeanSquaredError
from megatron.nodes import Input
from megatron.plugins import get_plugin_manager, hookimpl


def two_stage_pipeline():
    """x -> Whiten (stage 1) -> twice -> MinMaxScale (stage 2, called on two nodes); a label
    one-hot encoded (stage 1); metrics on the scaled values."""
    x, label = Input("x", (3,)), Input("label", dtype="int64")
    white = Whiten()(x, "white")
    scale = MinMaxScale()
    a = scale(Lambda(lambda v: v * 2.0)(white), "a")
    b = scale(Lambda(lambda v: v - 1.0)(white), "b")
    onehot = OneHotRange()(label, "onehot")
    MeanSquaredError()([a, b], "mse")
    Accuracy()([label, Lambda(lambda v: v[:, 0].astype("int64"))(a, "guess")], "acc")
    return megatron.Pipeline([x, label], [a, b, onehot], name="staged")


def batches_of(seed, sizes):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=(n, 3)), "label": rng.integers(0, 4, n)} for n in sizes]


def test_stages_are_the_stateful_layers_in_fitting_order():
    pipeline = two_stage_pipeline()
    stages = pipeline.stages()
    assert [sorted(type(layer).__name__ for layer in stage) for stage in stages] == [
        ["OneHotRange", "Whiten"],
        ["MinMaxScale"],
    ]
    stages[0].clear()  # a copy: the pipeline's own stages are not changed through it
    assert len(pipeline.stages()[0]) == 2


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16), st.lists(st.integers(1, 9), min_size=1, max_size=4))
def test_partial_fits_over_stage_inputs_equal_fit_generator(seed, sizes):
    batches = batches_of(seed, sizes)
    local = two_stage_pipeline().fit_generator(batches)
    staged = two_stage_pipeline()
    for k, stage in enumerate(staged.stages()):
        for layer in stage:
            layer.reset()
        for batch in batches:
            for layer, args in zip(stage, staged.stage_inputs(k, batch)):
                layer.partial_fit(*args)
    for ours, theirs in zip(staged.layers, local.layers):
        assert ours.get_config().keys() == theirs.get_config().keys()
        if ours.stateful:
            for key, value in theirs.metadata.items():
                np.testing.assert_array_equal(ours.metadata[key], value, err_msg=f"{ours.name}.{key}")
    batch = batches[0]
    for name in ("a", "b", "onehot"):
        np.testing.assert_array_equal(staged.transform(batch)[name], local.transform(batch)[name])


def test_a_layer_called_twice_learns_from_both_calls_joined():
    pipeline = two_stage_pipeline().fit(batches_of(1, [6])[0])
    batch = batches_of(2, [5])[0]
    (scale_args,) = pipeline.stage_inputs(1, batch)
    assert len(scale_args) == 1 and scale_args[0].shape == (10, 3)  # two calls of 5 rows


def test_metric_states_of_one_batch_give_what_evaluate_gives():
    pipeline = two_stage_pipeline().fit(batches_of(3, [20])[0])
    batch = batches_of(4, [7])[0]
    states = pipeline.metric_states(batch)
    kept = copy.deepcopy(states)
    results = {m.name: m.metric.result(state) for m, state in zip(pipeline.metrics, states)}
    assert results == pipeline.evaluate(batch)
    for before, after in zip(kept, states):  # reading a result changes no state
        assert repr(before) == repr(after)


def test_feeds_read_a_batch_for_an_operation():
    pipeline = two_stage_pipeline().fit(batches_of(5, [8])[0])
    batch = batches_of(6, [4])[0]
    feeds, index = pipeline.feeds(batch, "transform")
    assert index is None
    np.testing.assert_array_equal(feeds[0], batch["x"])
    assert len(pipeline.feeds(batch, "fit")[0]) == 2  # the label feeds the fit
    with pytest.raises(ConfigError, match="'transform', 'fit' or 'evaluate'; got 'predict'"):
        pipeline.feeds(batch, "predict")


class Distributed:
    """A stand-in for a collection of a library the core does not read (its type's module is
    ``dask.dataframe``, as a dask DataFrame's): collecting it into memory is an error."""

    __module__ = "dask.dataframe.core"

    def __array__(self, *args, **kwargs):
        raise AssertionError("the collection was read into memory")


def test_a_collection_nobody_claims_names_the_plugin_to_install(megatron_plugins):
    manager = get_plugin_manager()
    manager.load()
    manager.unregister("dask")  # as without megatron-dask (nothing to remove where it is absent)
    pipeline = two_stage_pipeline()
    for call in (pipeline.fit, pipeline.transform, pipeline.evaluate):
        with pytest.raises(MissingDependencyError, match="megatron-dask"):
            call(Distributed())
        with pytest.raises(MissingDependencyError, match="megatron-dask"):
            call({"x": Distributed(), "label": np.zeros(3, dtype="int64")})


def test_a_plugin_that_claims_the_data_runs_the_operation(megatron_plugins):
    seen = []

    class Runner:
        @hookimpl
        def run_operation(self, pipeline, operation, data, options):
            if type(data).__module__.startswith("dask."):
                seen.append((pipeline.name, operation, dict(options)))
                return pipeline if operation == "fit" else {"ran": operation}
            return None

    megatron_plugins(Runner(), "runner")
    pipeline = two_stage_pipeline()
    assert pipeline.fit(Distributed()) is pipeline
    assert pipeline.transform(Distributed(), index=[1], cache=True) == {"ran": "transform"}
    assert pipeline.evaluate(Distributed()) == {"ran": "evaluate"}
    assert seen == [
        ("staged", "fit", {"progress": None}),
        ("staged", "transform", {"index": [1], "cache": True}),
        ("staged", "evaluate", {}),
    ]


def test_arrays_of_an_unknown_library_nobody_claims_are_read_as_numpy_reads_them(megatron_plugins):
    class Tensor:
        __module__ = "tensorlib"

        def __init__(self, array):
            self.array = array

        def __array__(self, dtype=None, copy=None):
            return self.array

    x = Input("x")
    pipeline = megatron.Pipeline(x, Lambda(lambda v: v + 1)(x, "y"), name="plain")
    np.testing.assert_array_equal(pipeline.transform({"x": Tensor(np.arange(3.0))})["y"], [1, 2, 3])
    with pytest.raises(DataError, match="takes a mapping of input name to array"):
        pipeline.transform(Tensor(np.arange(3.0)))


def test_two_shared_layers_each_upstream_of_the_other_are_refused_not_looped_on():
    """Layer L called on K's output and K on L's: neither can be fitted first (the stages grew
    without end before)."""
    x, z = Input("x"), Input("z")
    first, second = MinMaxScale(), Whiten()
    crossed = [first(second(z), "l2"), second(first(x), "k2")]
    pipeline = megatron.Pipeline([x, z], crossed, name="crossed")
    with pytest.raises(GraphError, match="each would have to be fitted before the other"):
        pipeline.stages()
    with pytest.raises(GraphError, match="each would have to be fitted before the other"):
        pipeline.fit_generator([{"x": np.arange(4.0), "z": np.arange(4.0)}])


def test_a_pickled_pipeline_finds_each_layers_calls_again():
    import pickle

    from megatron.layers import ScalarMultiply

    x = Input("x", (3,))
    white = Whiten()(x)
    scale = MinMaxScale()
    outputs = [scale(ScalarMultiply(2.0)(white), "a"), scale(ScalarMultiply(-1.0)(white), "b")]
    pipeline = megatron.Pipeline(x, outputs, name="picklable").fit({"x": np.arange(27.0).reshape(9, 3)})
    batch = {"x": np.arange(12.0).reshape(4, 3)}
    before = pipeline.stage_inputs(1, batch)  # the graph's index of calls by layer is built here
    copied = pickle.loads(pickle.dumps(pipeline))  # layers are new objects: the index is rebuilt
    after = copied.stage_inputs(1, batch)
    assert after[0][0].shape == (8, 3)  # both calls of the shared layer, found in the copy
    np.testing.assert_array_equal(after[0][0], before[0][0])
