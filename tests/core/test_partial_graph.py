"""Running part of a graph: ``transform(outputs=[...])`` and ``evaluate(metrics=[...])`` compute
only what the named nodes or metrics need, from only the inputs they read, with the values,
index and storage semantics of the whole graph."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import (
    ConfigError,
    GraphError,
    MissingInputError,
    NotFittedError,
    StorageError,
    UnknownOutputError,
)
from megatron.metrics import MeanSquaredError
from megatron.nodes import Input


def graph(storage=None, calls=None):
    """Two branches over different inputs, a fitted layer, a row filter on one branch feeding a
    metric, and two metrics; ``calls`` counts the transforms of each branch's Lambda."""
    calls = {} if calls is None else calls

    def counted(name, fn):
        def run(a):
            calls[name] = calls.get(name, 0) + 1
            return fn(a)

        return layers.Lambda(run)

    x, z, y = Input("x", (3,)), Input("z"), Input("y")
    embedding = counted("x", lambda a: a * 2.0)(x, "embedding")
    scaled = layers.Whiten()(embedding, "scaled")
    total = layers.Lambda(lambda a: a.sum(axis=1))(scaled, "total")
    kept_total, kept_y = layers.Filter(lambda a, t: t > 0)([total, y], ["kept_total", "kept_y"])
    doubled = counted("z", lambda a: a * 2.0)(z, "doubled")
    fit_mse = MeanSquaredError()([kept_y, kept_total], "fit_mse")
    z_mse = MeanSquaredError()([z, doubled], "z_mse")
    return megatron.Pipeline(
        [x, z, y], [total, doubled], name="parts", storage=storage, metrics=[fit_mse, z_mse]
    )


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 3)), "z": rng.normal(size=n), "y": rng.normal(size=n)}


def test_an_output_is_computed_from_only_the_inputs_it_needs():
    calls = {}
    pipeline = graph(calls=calls).fit(data())
    calls.clear()
    batch = data(seed=1)
    part = pipeline.transform({"z": batch["z"]}, outputs=["doubled"])
    assert list(part) == ["doubled"]
    np.testing.assert_array_equal(part["doubled"], batch["z"] * 2.0)
    assert calls == {"z": 1}  # the other branch did not run
    np.testing.assert_array_equal(part.index, np.arange(8))


def test_intermediate_nodes_by_name_or_node_in_the_order_asked():
    pipeline = graph().fit(data())
    batch = data(seed=2)
    whole = pipeline.transform(batch)
    asked = pipeline.transform(batch, outputs=["total", "embedding"], store=False)
    assert list(asked) == ["total", "embedding"]
    np.testing.assert_array_equal(asked["total"], whole["total"])
    np.testing.assert_array_equal(asked["embedding"], batch["x"] * 2.0)
    node = pipeline.graph.node_named("scaled")
    assert list(pipeline.transform(batch, outputs=node)) == ["scaled"]


def test_the_index_follows_the_filters_upstream_of_the_nodes_asked_for():
    pipeline = graph().fit(data())
    batch = data(seed=3)
    kept = np.flatnonzero(batch["y"] > 0)
    asked = pipeline.transform(batch, outputs=["kept_y", "kept_total"])
    np.testing.assert_array_equal(asked.index, kept)
    np.testing.assert_array_equal(asked["kept_y"], batch["y"][kept])
    np.testing.assert_array_equal(pipeline.transform(batch, outputs="scaled").index, np.arange(8))
    with pytest.raises(GraphError, match=r"cannot combine node 'kept_total'.*'scaled'.*rows differ"):
        pipeline.transform(batch, outputs=["kept_total", "scaled"])


def test_a_part_that_needs_no_fitted_layer_runs_before_fit():
    pipeline = graph()
    np.testing.assert_array_equal(
        pipeline.transform(data(), outputs="embedding")["embedding"], data()["x"] * 2
    )
    with pytest.raises(NotFittedError):
        pipeline.transform(data(), outputs="scaled")


def test_bad_requests_are_refused_naming_what_exists():
    pipeline = graph().fit(data())
    with pytest.raises(UnknownOutputError, match=r"no node named 'totl'.*Did you mean 'total'\?"):
        pipeline.transform(data(), outputs=["totl"])
    with pytest.raises(GraphError, match=r"names \['total'\] more than once"):
        pipeline.transform(data(), outputs=["total", "total"])
    with pytest.raises(GraphError, match="names no node"):
        pipeline.transform(data(), outputs=[])
    with pytest.raises(GraphError, match="not a node of this graph"):
        pipeline.transform(data(), outputs=Input("x", (3,)))
    with pytest.raises(GraphError, match="takes node names or nodes; got 3"):
        pipeline.transform(data(), outputs=[3])


def test_storage_refuses_a_part_without_every_output_unless_told_not_to_store():
    pipeline = graph(storage="memory://").fit(data())
    with pytest.raises(StorageError, match=r"leaves out outputs \['doubled'\]; pass store=False"):
        pipeline.transform(data(), outputs=["total"])
    assert len(pipeline.storage.read().index) == 0  # nothing was computed or written
    pipeline.transform(data(), outputs=["total"], store=False)
    assert len(pipeline.storage.read().index) == 0


def test_a_part_with_every_output_stores_the_outputs_only():
    pipeline = graph(storage="memory://").fit(data())
    batch = data(seed=4)
    asked = pipeline.transform(batch, outputs=["embedding", "doubled", "total"])
    stored = pipeline.storage.read()
    assert list(stored) == ["total", "doubled"]
    np.testing.assert_array_equal(stored.index, asked.index)
    np.testing.assert_array_equal(stored["total"], asked["total"])


def test_cache_reads_whole_rows_only():
    pipeline = graph(storage="memory://").fit(data())
    with pytest.raises(ConfigError, match=r"reads and stores whole rows.*asks for \['total'\]"):
        pipeline.transform(data(), cache=True, outputs=["total"])
    with pytest.raises(ConfigError, match="store=False"):
        pipeline.transform(data(), cache=True, store=False)
    first = pipeline.transform(data(), cache=True)
    again = pipeline.transform(data(), cache=True, outputs=["doubled", "total"])  # the same rows, reordered
    assert list(again) == ["doubled", "total"]
    np.testing.assert_array_equal(again["total"], first["total"])


@settings(max_examples=15, deadline=None)
@given(st.permutations(["total", "doubled", "embedding"]), st.booleans())
def test_every_output_in_any_order_is_labelled_and_stored_as_computed(order, cache):
    """Values come back under their own names and are stored under them, whatever the order
    asked, with or without the cache (a reordered cached part once swapped them)."""
    pipeline = graph(storage="memory://").fit(data())
    batch = data(seed=9)
    plain = graph().fit(data()).transform(batch, outputs=order)
    names = [n for n in order if n != "embedding"] if cache else order
    for _ in range(2):  # computed and stored, then read back from storage
        asked = pipeline.transform(batch, cache=cache, outputs=names)
        assert list(asked) == names
        for name in names:
            np.testing.assert_array_equal(asked[name], plain[name])
    stored = pipeline.storage.read()
    for name in ["total", "doubled"]:
        np.testing.assert_array_equal(stored[name], plain[name])


def test_transform_generator_takes_a_part():
    pipeline = graph().fit(data())
    batches = [data(4, seed=5), data(3, seed=6)]
    results = list(pipeline.transform_generator([{"z": b["z"]} for b in batches], outputs=["doubled"]))
    assert [r.index.tolist() for r in results] == [[0, 1, 2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(results[1]["doubled"], batches[1]["z"] * 2)


def test_evaluate_computes_only_the_metrics_asked_for():
    calls = {}
    pipeline = graph(calls=calls).fit(data())
    calls.clear()
    batch = data(seed=7)
    assert pipeline.evaluate({"z": batch["z"]}, metrics=["z_mse"]) == {
        "z_mse": pytest.approx(float(np.mean(batch["z"] ** 2)))
    }
    assert calls == {"z": 1}
    everything = pipeline.evaluate(batch)
    assert pipeline.evaluate_generator([batch], metrics=["fit_mse"]) == {"fit_mse": everything["fit_mse"]}
    assert pipeline.metric_states(batch, ["z_mse", "fit_mse"])[1] == pipeline.metric_states(batch)[0]
    with pytest.raises(UnknownOutputError, match=r"no metric named 'z_mae'.*Did you mean 'z_mse'\?"):
        pipeline.evaluate(batch, metrics=["z_mae"])


NAMES = ["x", "z", "y", "embedding", "scaled", "total", "kept_total", "kept_y", "doubled"]
BEFORE_FILTER = {"x", "z", "y", "embedding", "scaled", "total", "doubled"}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True), st.integers(0, 2**16))
def test_a_part_equals_a_pipeline_built_with_those_outputs(names, seed):
    """Whatever nodes are asked for, the values and index are those of a pipeline whose outputs
    are those nodes (built separately from the same layers)."""
    pipeline = graph().fit(data(20))
    batch = data(6, seed=seed)
    filtered = [n for n in names if n not in BEFORE_FILTER]
    if filtered and len(filtered) != len(names):
        with pytest.raises(GraphError, match="rows differ"):
            pipeline.transform(batch, outputs=names)
        return
    asked = pipeline.transform(batch, outputs=names)
    nodes = [pipeline.graph.node_named(n) for n in names]
    own = megatron.Pipeline(list(pipeline.inputs), nodes, name="own").transform(batch)
    assert list(asked) == names
    np.testing.assert_array_equal(asked.index, own.index)
    for name in names:
        np.testing.assert_array_equal(asked[name], own[name])


def test_metrics_are_asked_for_by_name_or_node_and_a_metric_is_no_output():
    pipeline = graph().fit(data())
    batch = data(seed=8)
    z_mse = next(m for m in pipeline.metrics if m.name == "z_mse")
    assert pipeline.evaluate(batch, metrics=[z_mse]) == pipeline.evaluate(batch, metrics="z_mse")
    assert list(pipeline.evaluate(batch, metrics=z_mse)) == ["z_mse"]
    other = MeanSquaredError()([Input("a"), Input("b")], "other")
    with pytest.raises(GraphError, match="metric 'other' is not a metric of this graph"):
        pipeline.evaluate(batch, metrics=[other])
    with pytest.raises(UnknownOutputError, match=r"'z_mse' is a metric, not a node; evaluate\(metrics="):
        pipeline.transform(batch, outputs=["z_mse"])


def test_a_missing_input_names_the_call_made():
    pipeline = graph().fit(data())
    with pytest.raises(MissingInputError, match=r"Pipeline 'parts'\.evaluate\(\) needs input 'y'") as caught:
        pipeline.evaluate({"x": data()["x"], "z": data()["z"]})
    assert "Batch" not in str(caught.value)  # one batch, as given
    with pytest.raises(MissingInputError, match=r"Batch 0: Pipeline 'parts'\.evaluate_generator\(\) needs"):
        pipeline.evaluate_generator([{"x": data()["x"], "z": data()["z"]}])
