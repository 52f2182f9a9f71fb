"""A pipeline is its own graph: automatic names are the same each time the graph is built, and
only metrics that read the pipeline's own nodes are found without being listed."""

import numpy as np
import pytest

import megatron
from megatron import layers, metrics
from megatron.errors import GraphError
from megatron.layers import StatefulLayer
from megatron.nodes import Input


def build():
    x = Input("x", (3,))
    scaled = layers.MinMaxScale()(layers.Whiten()(x))
    return megatron.Pipeline(x, layers.MinMaxScale()(scaled, "out"), name="built")


def names(pipeline):
    return [node.name for node in pipeline.nodes], [layer.name for layer in pipeline.layers]


# -- automatic names ------------------------------------------------------------------------------
def test_the_same_graph_built_twice_gets_the_same_names():
    first, second = build(), build()
    assert names(first) == names(second)
    assert names(first)[1] == ["whiten", "min_max_scale", "min_max_scale_1"]
    assert names(first)[0] == ["x", "whiten/0", "min_max_scale/0", "out"]


def test_separate_graphs_joined_by_a_layer_get_distinct_names_in_build_order():
    a, b = Input("a"), Input("b")
    left, right = layers.Whiten()(a), layers.Whiten()(b)  # each graph names its own 'whiten'
    assert left.name == right.name == "whiten/0"
    joined = layers.Add()([left, right], "sum")  # the join renumbers the one that joined
    assert (left.name, right.name) == ("whiten/0", "whiten_1/0")
    pipeline = megatron.Pipeline([a, b], joined, name="joined")
    assert [layer.name for layer in pipeline.layers] == ["whiten", "whiten_1", "add"]


def test_separate_branches_of_one_pipeline_are_renamed_when_the_pipeline_joins_them():
    a, b = Input("a"), Input("b")
    left, right = layers.Whiten()(a, "left"), layers.Whiten()(b, "right")
    pipeline = megatron.Pipeline([a, b], [left, right], name="branches")
    assert sorted(layer.name for layer in pipeline.layers) == ["whiten", "whiten_1"]


def test_a_name_given_by_the_user_is_kept_and_automatic_ones_step_aside():
    x = Input("x")
    auto = layers.Whiten()(x)
    given = layers.Whiten()
    given.name = "whiten"
    out = given(auto, "out")
    assert out.layer.name == "whiten" and auto.name == "whiten_1/0"
    megatron.Pipeline(x, out, name="given")  # unique node names


def test_a_layer_name_is_fixed_by_its_first_call():
    layer = layers.Whiten()
    assert layer.name == "whiten"  # provisional before any call
    x = Input("x")
    layers.Whiten()(x)
    layer(x)
    assert layer.name == "whiten_1"
    layer(Input("y"))  # another graph: the name stays
    assert layer.name == "whiten_1"


def test_names_survive_pickling_and_a_reload(tmp_path):
    import pickle

    pipeline = build()
    pipeline.fit({"x": np.random.default_rng(0).normal(size=(5, 3))})
    assert names(pickle.loads(pickle.dumps(pipeline))) == names(pipeline)
    assert names(megatron.load_pipeline(pipeline.save(tmp_path))) == names(pipeline)


# -- metric discovery -----------------------------------------------------------------------------
class Model(StatefulLayer):
    """A stand-in model that records each fit."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def fit(self, X, y):
        self.metadata["fits"] = self.metadata.get("fits", 0) + 1

    def n_targets(self, n_inputs):
        return 1

    def transform(self, X):
        return (X.sum(axis=1) > 0).astype(int)


def test_a_pipeline_on_shared_inputs_does_not_pull_in_another_pipelines_model_or_metric():
    x, y = Input("x", (2,)), Input("y")
    model_a = Model("a")
    probs = model_a([x, y], "probs")
    metrics.Accuracy()([y, probs], "acc")
    pipeline_a = megatron.Pipeline([x, y], probs, name="a")
    p2 = Model("b")([x, y], "p2")
    pipeline_b = megatron.Pipeline([x, y], p2, name="b")

    assert [m.name for m in pipeline_a.metrics] == ["acc"]
    assert pipeline_b.metrics == ()
    assert model_a not in pipeline_b.layers
    summary = pipeline_b.summary_text()
    assert "probs" not in summary and "acc" not in summary
    data = {"x": np.ones((4, 2)), "y": np.ones(4, dtype=int)}
    pipeline_b.fit(data)
    assert "fits" not in model_a.metadata  # B's fit never fits A's model
    with pytest.raises(megatron.MegatronError, match="has no metrics"):
        pipeline_b.evaluate(data)


def test_a_metric_off_the_path_to_the_outputs_is_attached_with_metrics():
    x, y = Input("x", (2,)), Input("y")
    out = layers.Lambda(lambda v: v.sum(axis=1))(x, "out")
    side = layers.Lambda(lambda v: (v[:, 0] > 0).astype(int))(x)
    acc = metrics.Accuracy()([y, side], "side_acc")
    assert megatron.Pipeline([x, y], out, name="found").metrics == ()
    listed = megatron.Pipeline([x, y], out, name="listed", metrics=[acc])
    data = {"x": np.array([[1.0, 0.0], [-1.0, 0.0]]), "y": np.array([1, 1])}
    assert listed.evaluate(data) == {"side_acc": 0.5}


def test_a_metric_on_the_pipelines_own_nodes_is_found():
    x, y = Input("x", (2,)), Input("y")
    out = layers.Lambda(lambda v: (v[:, 0] > 0).astype(int))(x, "out")
    metrics.Accuracy()([y, out], "acc")
    pipeline = megatron.Pipeline([x, y], out, name="own")
    assert pipeline.evaluate({"x": np.array([[1.0, 0.0]]), "y": np.array([1])}) == {"acc": 1.0}


def test_duplicate_metric_names_are_still_refused():
    x, y = Input("x"), Input("y")
    out = layers.Lambda(lambda v: v)(x, "out")
    metrics.Accuracy()([y, out], "acc")
    metrics.Accuracy()([out, y], "acc")
    with pytest.raises(GraphError, match="several metrics are named"):
        megatron.Pipeline([x, y], out, name="dupes")
