"""Feature names through the graph: inputs' columns, each layer's get_feature_names_out, the
pipeline's feature_names() and Outputs.to_frame() columns.

Property budget: 30 derandomized examples of grouped DataFrame columns (about 1 s).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import LayerError, UnknownOutputError
from megatron.features import feature_columns
from megatron.layers import Layer
from megatron.nodes import Input
from megatron.specs import Spec

pd = pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")

FRAME = pd.DataFrame(
    {
        "age": [20.0, 30, 40, 50],
        "income": [1.0, 3, 2, 8],
        "label": [0, 1, 2, 1],
        "colour": ["red", "green", "blue", "red"],
    }
)


def build():
    inputs = megatron.nodes.from_dataframe(FRAME, groups={"x": ["age", "income"]})
    x, label, colour = inputs["x"], inputs["label"], inputs["colour"]
    scaled = layers.Whiten()(x, "scaled")
    codes = layers.OneHotRange()(label, "codes")
    colours = layers.OneHotLabels()(colour, "colours")
    features = layers.Concatenate()([scaled, codes, colours], "features")
    projected = layers.StaticDot(np.ones((2, 3)))(scaled, "projected")
    logged = layers.Log(offset=1)(label, "logged")
    return megatron.Pipeline([x, label, colour], [features, projected, logged], name="names")


def test_inputs_carry_their_columns_and_layers_name_their_outputs():
    pipeline = build()
    assert pipeline.feature_names("x") == ["age", "income"]
    assert pipeline.feature_names("label") == ["label"]  # one value per observation: its own name
    assert pipeline.feature_names("scaled") == ["age", "income"]
    assert pipeline.feature_names() == {
        "features": None,
        "projected": ["static_dot0", "static_dot1", "static_dot2"],
        "logged": ["label"],
    }
    pipeline.fit(FRAME)  # the range and the labels are learned: now the names are known
    assert pipeline.feature_names("features") == [
        "age",
        "income",
        "one_hot_range__label_0",
        "one_hot_range__label_1",
        "one_hot_range__label_2",
        "one_hot_labels__colour_blue",
        "one_hot_labels__colour_green",
        "one_hot_labels__colour_red",
    ]


def test_names_known_from_hyperparameters_before_any_fit():
    label = Input("label")
    pipeline = megatron.Pipeline(label, layers.OneHotRange(0, 2)(label, "codes"), name="known")
    assert pipeline.feature_names() == {
        "codes": ["one_hot_range__label_0", "one_hot_range__label_1", "one_hot_range__label_2"]
    }


def test_to_frame_names_columns_by_features_and_keeps_positions_where_unknown():
    pipeline = build().fit(FRAME)
    frame = pipeline.transform(FRAME).to_frame()
    assert list(frame.columns[:3]) == ["age", "income", "one_hot_range__label_0"]
    assert "static_dot0" in frame.columns and "logged" in frame.columns
    x = Input("x", (2,))  # no columns: names unknown
    unnamed = megatron.Pipeline(x, layers.Whiten()(x, "scaled"), name="unnamed").fit({"x": np.eye(2)})
    assert list(unnamed.transform({"x": np.eye(2)}).to_frame().columns) == ["scaled[0]", "scaled[1]"]


def test_to_frame_prefixes_the_output_where_names_would_repeat():
    x = Input("x", (2,), columns=["a", "b"])
    pipeline = megatron.Pipeline(
        x, [layers.Whiten()(x, "scaled"), layers.Clip(0, 1)(x, "clipped")], name="twice"
    )
    pipeline.fit({"x": np.eye(2)})
    columns = list(pipeline.transform({"x": np.eye(2)}).to_frame().columns)
    assert columns == ["scaled__a", "scaled__b", "clipped__a", "clipped__b"]


def test_outputs_read_from_storage_have_no_names():
    x = Input("x", (2,), columns=["a", "b"])
    pipeline = megatron.Pipeline(x, layers.Clip(0, 1)(x, "clipped"), name="stored", storage="memory://")
    assert list(pipeline.transform({"x": np.eye(2)}).to_frame().columns) == ["a", "b"]
    assert list(pipeline.storage.read().to_frame().columns) == ["clipped[0]", "clipped[1]"]


def test_layers_with_several_outputs_name_each():
    x = Input("x", (2,), columns=["a", "b"])
    (kept,) = (layers.Filter(lambda v: v[:, 0] > 0)(x, ["kept"]),)
    pipeline = megatron.Pipeline(x, kept, name="filtered")
    assert pipeline.feature_names() == {"kept": ["a", "b"]}


NAMED = []  # the calls of CountingNames.get_feature_names_out (a class attribute would change its fingerprint)


class CountingNames(Layer):
    def output_spec(self, X):
        return X

    def transform(self, X):
        return X

    def get_feature_names_out(self, *features):
        NAMED.append(1)
        return features[0]


def test_names_are_computed_once_per_fitted_state_not_per_transform():
    x = Input("x", (2,), columns=["a", "b"])
    scaler = layers.Whiten()
    pipeline = megatron.Pipeline(x, CountingNames()(scaler(x), "out"), name="once")
    data = {"x": np.random.default_rng(0).random((5, 2))}
    pipeline.fit(data)
    NAMED.clear()
    for _ in range(5):
        pipeline.transform(data)
    assert len(NAMED) == 0  # transform alone never names
    for _ in range(3):
        pipeline.transform(data).to_frame()
    assert len(NAMED) == 1
    pipeline.fit(data)  # a new fitted state: named again
    pipeline.transform(data).to_frame()
    assert len(NAMED) == 2


class WrongCount(Layer):
    def output_spec(self, X):
        return X

    def transform(self, X):
        return X

    def get_feature_names_out(self, *features):
        return ["only one"]


def test_a_layer_giving_the_wrong_number_of_names_is_named():
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, WrongCount()(x, "out"), name="wrong")
    with pytest.raises(LayerError, match="wrong_count.*1 names for node 'out'.*2 values"):
        pipeline.feature_names()


def test_an_unknown_node_gets_a_suggestion():
    with pytest.raises(UnknownOutputError, match="Did you mean 'scaled'"):
        build().feature_names("scaled_")


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    columns=st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=6),
        min_size=1,
        max_size=4,
        unique=True,
    )
)
def test_grouped_columns_come_out_under_their_names(columns):
    """Any column names survive a group, an element-wise layer and to_frame, in order."""
    frame = pd.DataFrame(np.arange(3.0 * len(columns)).reshape(3, -1), columns=columns)
    x = megatron.nodes.from_dataframe(frame, groups={"grouped": columns})["grouped"]
    pipeline = megatron.Pipeline(x, layers.ScalarMultiply(2.0)(x, "doubled"), name="any")
    out = pipeline.transform(frame).to_frame()
    assert list(out.columns) == columns
    np.testing.assert_array_equal(out.to_numpy(), frame.to_numpy() * 2)


def test_pickled_outputs_keep_their_names_without_the_pipeline():
    """Outputs ask their pipeline for names lazily; pickled, they carry the names alone (a
    pipeline holding a lambda cannot be pickled at all)."""
    import pickle

    x = Input("x", (2,), columns=["a", "b"])
    pipeline = megatron.Pipeline(x, layers.Lambda(lambda v: v + 1)(layers.Clip(0, 1)(x), "y"), name="pickled")
    outputs = pipeline.transform({"x": np.eye(2)})
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(pipeline)
    copy = pickle.loads(pickle.dumps(outputs))
    assert copy.feature_names() == {"y": None}  # a Lambda's names are not known
    clipped = megatron.Pipeline(x, layers.Clip(0, 1)(x, "c"), name="clipped").transform({"x": np.eye(2)})
    assert list(pickle.loads(pickle.dumps(clipped)).to_frame().columns) == ["a", "b"]


def test_token_counts_are_named_by_their_vocabulary():
    text = Input("text")
    pipeline = megatron.Pipeline(text, layers.CountVectorize()(text, "counts"), name="words")
    data = {"text": np.array(["a cat", "the cat sat"])}
    assert pipeline.feature_names() == {"counts": None}
    pipeline.fit(data)
    assert list(pipeline.transform(data).to_frame().columns) == ["a", "cat", "sat", "the"]


def test_rows_served_from_the_cache_are_named_as_computed_ones():
    x = Input("x", (2,), columns=["a", "b"])
    pipeline = megatron.Pipeline(x, layers.Clip(0, 1)(x, "clipped"), name="cached", storage="memory://")
    data = {"x": np.eye(2)}
    computed = pipeline.transform(data, cache=True).to_frame()
    served = pipeline.transform(data, cache=True).to_frame()  # every row read back
    assert list(served.columns) == list(computed.columns) == ["a", "b"]


def test_a_concatenation_of_nodes_sharing_names_prefixes_them_by_node():
    frame = pd.DataFrame({"age": [23.0, 35, 51], "income": [1.2, 3.4, 2.2], "label": [0, 1, 1]})
    inputs = megatron.nodes.from_dataframe(frame, groups={"x": ["age", "income"]})
    a = layers.Whiten()(inputs["x"], "a")
    b = layers.MinMaxScale()(inputs["x"], "b")
    codes = layers.OneHotRange(0, 1)(inputs["label"], "codes")
    c = layers.Concatenate()([a, b, codes], "c")
    pipeline = megatron.Pipeline([inputs["x"], inputs["label"]], c, name="fn").fit(frame)
    names = ["a__age", "a__income", "b__age", "b__income", "one_hot_range__label_0", "one_hot_range__label_1"]
    assert pipeline.feature_names() == {"c": names}
    assert list(pipeline.transform(frame).to_frame().columns) == names


def test_a_node_joined_to_itself_numbers_its_repeats():
    x = Input("x", (2,), columns=["age", "income"])
    pipeline = megatron.Pipeline(x, layers.Concatenate()([x, x], "c"), name="self")
    assert pipeline.feature_names() == {"c": ["x__age", "x__income", "x__age_1", "x__income_1"]}
    frame = pipeline.transform({"x": np.eye(2)}).to_frame()
    assert list(frame.columns) == ["x__age", "x__income", "x__age_1", "x__income_1"]


class Twice(Layer):
    """A layer of its own whose names repeat."""

    def output_spec(self, X):
        return Spec((2,), X.dtype)

    def transform(self, X):
        return np.column_stack([X, X])

    def get_feature_names_out(self, *features):
        return ["v", "v"]


def test_an_output_repeating_its_own_names_gets_distinct_columns():
    x = Input("x")
    pipeline = megatron.Pipeline(x, Twice()(x, "twice"), name="own")
    assert pipeline.feature_names() == {"twice": ["v", "v_1"]}
    assert list(pipeline.transform({"x": np.ones(2)}).to_frame().columns) == ["v", "v_1"]
    # names handed over from elsewhere (a pickled Outputs) that repeat within one output
    assert feature_columns([("twice", np.ones((2, 2)))], {"twice": ["v", "v"]}) == {"twice": ["v", "v_1"]}


NAME = st.sampled_from(["a", "b", "a__b", "a_1", "x__a"])


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_names_of_generated_concatenations_are_unique(data):
    """Concatenations of inputs whose columns repeat one another's (and look like prefixed or
    numbered names), of the same node twice and of concatenations: every node's names are
    distinct, as many as its columns, and name the columns of to_frame()."""
    widths = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    nodes, feed = [], {}
    for i, width in enumerate(widths):
        columns = data.draw(st.lists(NAME, min_size=width, max_size=width, unique=True))
        node = Input(f"x{i}" if i else "x", (width,), columns=columns)
        nodes.append(node)
        feed[node.name] = np.arange(2.0 * width).reshape(2, width)
    inputs = list(nodes)
    pool = list(nodes) + [layers.ScalarAdd(1.0)(n, f"a{i}") for i, n in enumerate(nodes)]
    outputs = []
    for j in range(data.draw(st.integers(1, 3))):
        parts = data.draw(st.lists(st.sampled_from(pool), min_size=2, max_size=4))
        joined = layers.Concatenate()(parts, f"c{j}")
        pool.append(joined)
        outputs.append(joined)
    pipeline = megatron.Pipeline(inputs, outputs, name="joins")
    for node in pipeline.graph.nodes:
        names = pipeline.feature_names(node)
        assert len(names) == len(set(names)) == node.shape[-1], (node.name, names)
    frame = pipeline.transform(feed).to_frame()
    assert len(set(frame.columns)) == len(frame.columns) == sum(o.shape[-1] for o in outputs)
