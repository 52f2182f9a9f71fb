"""What each built-in layer computes, and regressions of the original's defects."""

import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.errors import ConfigError, LayerInputError, SpecError
from megatron.nodes import Input


def run(layer, *arrays, fit=True):
    """Apply ``layer`` eagerly to ``arrays`` and return its output value(s)."""
    nodes = [Input(f"x{i}", a.shape[1:])(a) for i, a in enumerate(arrays)]
    out = layer(nodes if len(nodes) > 1 else nodes[0])
    return tuple(n.output for n in out) if isinstance(out, tuple) else out.output


# -- regressions of the original's defects ----------------------------------------------------


def test_divide_keeps_precision_and_imputes_zero_divisors():
    a = np.array([1_000_001, 6, 1])
    b = np.array([1, 0, 3])
    out = run(layers.Divide(impute=-1), a, b)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1_000_001.0, -1.0, 1 / 3])
    f32 = run(layers.Divide(), a.astype(np.float32), b.astype(np.float32))
    assert f32.dtype == np.float32
    assert np.isfinite(f32).all()


def test_impute_does_not_mutate_and_handles_strings():
    column = np.array([1.0, np.nan, 3.0])
    assert np.isnan(column[1])
    np.testing.assert_array_equal(run(layers.Impute({np.nan: 0.0}), column), [1.0, 0.0, 3.0])
    assert np.isnan(column[1])  # the caller's array is untouched
    words = np.array(["a", "?", "b"])
    out = run(layers.Impute({"?": "unknown"}), words)
    assert out.tolist() == ["a", "unknown", "b"]  # not cut to the input's 1-character width
    objects = np.array(["a", None, "b"], dtype=object)
    assert run(layers.Impute({np.nan: "none"}), objects).tolist() == ["a", "none", "b"]


def test_flatten_keeps_the_batch_axis():
    assert run(layers.Flatten(), np.zeros((5, 48, 48, 3))).shape == (5, 6912)
    assert run(layers.Flatten(), np.zeros((1, 2, 2))).shape == (1, 4)


def test_image_layers_take_batches():
    images = np.random.default_rng(0).random((7, 4, 6, 3))
    grey = run(layers.RGBtoGrey(), images)
    np.testing.assert_allclose(grey, 0.21 * images[..., 0] + 0.72 * images[..., 1] + 0.07 * images[..., 2])
    np.testing.assert_allclose(run(layers.RGBtoGrey("average"), images), images.mean(axis=-1))
    np.testing.assert_allclose(
        run(layers.RGBtoGrey("lightness"), images), (images.max(axis=-1) + images.min(axis=-1)) / 2
    )
    binary = run(layers.RGBtoBinary(), images)
    assert binary.shape == (7, 4, 6, 1) and set(np.unique(binary)) <= {0, 1}
    small = run(layers.Downsample((2, 3)), images)
    np.testing.assert_allclose(small[0, 0, 0], images[0, :2, :2].mean(axis=(0, 1)))
    big = run(layers.Upsample((8, 12)), images)
    np.testing.assert_array_equal(big[:, ::2, ::2], images)
    uneven = run(layers.Downsample((3, 4)), images)
    np.testing.assert_allclose(
        uneven.mean(axis=(1, 2)), images.mean(axis=(1, 2))
    )  # area averaging keeps the mean


def test_time_series_row_counts_and_index_alignment():
    x = Input("x", (2,))
    windows = layers.TimeSeries(window_size=4)(x, "windows")
    assert windows.spec.shape == (4, 2)
    pipeline = megatron.Pipeline(x, windows, name="ts", storage="memory://")
    data = np.arange(20.0).reshape(10, 2)
    out = pipeline.transform({"x": data}, index=list("abcdefghij"))
    assert out["windows"].shape == (7, 4, 2)
    np.testing.assert_array_equal(out["windows"][0], data[:4])
    assert out.index.tolist() == list("defghij")  # each window keeps its last observation's key
    assert sorted(pipeline.storage.keys()) == list("defghij")
    short = pipeline.transform({"x": data[:3]})
    assert short["windows"].shape == (0, 4, 2)
    assert len(short.index) == 0


def test_time_series_reverse_and_time_axis():
    data = np.arange(6.0).reshape(6, 1)
    out = run(layers.TimeSeries(3, reverse=True), data)
    np.testing.assert_array_equal(out[0, :, 0], [2.0, 1.0, 0.0])
    assert run(layers.TimeSeries(3, time_axis=2), data).shape == (4, 1, 3)


def test_reshape_and_slice_work_per_observation():
    data = np.arange(24.0).reshape(2, 12)
    assert run(layers.Reshape((3, 4)), data).shape == (2, 3, 4)
    assert run(layers.Reshape((-1, 2)), data).shape == (2, 6, 2)
    np.testing.assert_array_equal(run(layers.Slice(1, 3), data), data[:, 1:3])
    np.testing.assert_array_equal(
        run(layers.Slice(0, 1, axis=0), data.reshape(2, 3, 4)), data.reshape(2, 3, 4)[:, :1]
    )
    with pytest.raises(SpecError, match="cannot reshape observations of shape \\(12,\\) to \\(5, 5\\)"):
        layers.Reshape((5, 5))(Input("x", (12,)))


def test_seed_tutorial_preprocessing_shapes():
    images = Input("image", (48, 48, 3))
    labels = Input("label")
    grey = layers.RGBtoGrey(method="luminosity", keep_dim=True)(images, "grey")
    ohe = layers.OneHotRange(max_val=1)(labels, "ohe")
    assert grey.spec.shape == (48, 48, 1)
    pipeline = megatron.Pipeline([images, labels], [grey, ohe], name="tutorial")
    data = {"image": np.random.random((100, 48, 48, 3)), "label": np.random.randint(0, 1, 100)}
    pipeline.fit(data)
    out = pipeline.transform(data)
    assert out["grey"].shape == (100, 48, 48, 1)
    assert out["ohe"].shape == (100, 2)
    np.testing.assert_array_equal(out["ohe"][:, 0], 1)


# -- values -------------------------------------------------------------------------------------


def test_arithmetic_layers():
    a, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([10.0, 20.0])
    np.testing.assert_array_equal(run(layers.Add(), a, b), a + b[:, None])
    np.testing.assert_array_equal(run(layers.Subtract(), a, b), a - b[:, None])
    np.testing.assert_array_equal(run(layers.ElementWiseMultiply(), a, a), a * a)
    np.testing.assert_array_equal(run(layers.ScalarMultiply(3), a), 3 * a)
    np.testing.assert_array_equal(run(layers.Clip(2, 3), a), np.clip(a, 2, 3))
    np.testing.assert_allclose(run(layers.Log(base=2), a), np.log2(a))
    np.testing.assert_allclose(run(layers.Normalize(), a), a / a.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(run(layers.Normalize(), np.zeros((1, 3))), np.zeros((1, 3)))
    with pytest.raises(SpecError, match="cannot be combined element-wise"):
        layers.Add()([Input("p", (2,)), Input("q", (3,))])


def test_products():
    W = np.arange(6.0).reshape(2, 3)
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(run(layers.StaticDot(W), a), a @ W)
    np.testing.assert_array_equal(run(layers.Dot(), a, a), (a * a).sum(axis=1))
    matrices = np.arange(8.0).reshape(2, 2, 2)
    np.testing.assert_array_equal(run(layers.Dot(), matrices, a), np.einsum("nij,nj->ni", matrices, a))
    np.testing.assert_array_equal(
        run(layers.Dot(), matrices, matrices, a), np.einsum("nij,njk,nk->ni", matrices, matrices, a)
    )
    with pytest.raises(SpecError, match="last axis must have length 2"):
        layers.StaticDot(W)(Input("x", (3,)))


def test_scalers_learn_and_apply():
    data = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    white = run(layers.Whiten(), data)
    np.testing.assert_allclose(white[:, 0], (data[:, 0] - 3) / data[:, 0].std())
    np.testing.assert_array_equal(white[:, 1], 0)  # a constant feature is centred, not divided by 0
    np.testing.assert_allclose(run(layers.MinMaxScale((-1, 1)), data)[:, 0], [-1, 0, 1])


def test_missing_data_layers():
    data = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0], [5.0, 8.0]])
    np.testing.assert_array_equal(run(layers.SimpleImpute("mean"), data)[:, 1], [20 / 3, 4.0, 8.0, 8.0])
    np.testing.assert_array_equal(run(layers.SimpleImpute("median"), data)[2, 0], 3.0)
    np.testing.assert_array_equal(run(layers.SimpleImpute("most_frequent"), data)[0, 1], 8.0)
    np.testing.assert_array_equal(run(layers.SimpleImpute("constant", fill_value=-1.0), data)[2, 0], -1.0)
    np.testing.assert_array_equal(run(layers.MissingIndicator(), data), np.isnan(data))
    words = np.array(["a", "b", "", "b"])
    assert run(layers.SimpleImpute("most_frequent", missing_values=""), words).tolist() == [
        "a",
        "b",
        "b",
        "b",
    ]


def test_one_hot_layers():
    np.testing.assert_array_equal(run(layers.OneHotRange(), np.array([2, 4, 3])), np.eye(3)[[0, 2, 1]])
    np.testing.assert_array_equal(run(layers.OneHotRange(0, 1), np.array([1, 5])), [[0, 1], [0, 0]])
    with pytest.raises(LayerInputError, match=r"expected values in \[0, 1\]; got \[5\]"):
        run(layers.OneHotRange(0, 1, strict=True), np.array([1, 5]))
    colours = np.array(["red", "blue", "red", "green"])
    np.testing.assert_array_equal(run(layers.OneHotLabels(), colours), np.eye(3)[[2, 0, 2, 1]])


def test_casting_axes_and_joins():
    a = np.array([1.7, 2.2])
    assert run(layers.Cast("int32"), a).dtype == np.int32
    assert run(layers.AddDim(), a).shape == (2, 1)
    assert run(layers.AddDim(axis=0), np.zeros((2, 3))).shape == (2, 1, 3)
    joined = run(layers.Concatenate(), a, np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(joined, [[1.7, 1.0, 2.0], [2.2, 3.0, 4.0]])
    ages, cities = run(
        layers.SplitDict(["age", "city"]), np.array([{"age": 3, "city": "x"}, {"age": 5, "city": "y"}])
    )
    assert ages.tolist() == [3, 5] and cities.tolist() == ["x", "y"]


def test_filter_keeps_index_aligned_in_outputs_and_storage():
    x, y = Input("x", (2,)), Input("y")
    kept_x, kept_y = layers.Filter(lambda x, y: y > 0)([x, y], ["kept_x", "kept_y"])
    doubled = layers.ScalarMultiply(2)(kept_y, "doubled")
    pipeline = megatron.Pipeline([x, y], [kept_x, doubled], name="filtered", storage="memory://")
    out = pipeline.transform(
        {"x": np.arange(8.0).reshape(4, 2), "y": np.array([1.0, -1.0, 2.0, -2.0])}, index=[10, 11, 12, 13]
    )
    assert out.index.tolist() == [10, 12]
    np.testing.assert_array_equal(out["doubled"], [2.0, 4.0])
    np.testing.assert_array_equal(pipeline.storage.read(rows=[12])["kept_x"], [[4.0, 5.0]])
    with pytest.raises(megatron.errors.GraphError, match="rows differ"):
        megatron.Pipeline([x, y], [kept_x, y], name="mixed")
    with pytest.raises(SpecError, match="rows kept by"):
        layers.Add()([kept_y, y])


def test_text_layers():
    reviews = np.array(["This is a GREAT film", "the plot was not great"])
    assert run(layers.Lowercase(), reviews).tolist() == ["this is a great film", "the plot was not great"]
    assert run(layers.RemoveStopwords(), reviews).tolist() == ["GREAT film", "plot great"]
    tokens = run(layers.Tokenize(lowercase=True), reviews)
    assert tokens.dtype == object and tokens[0] == ["this", "is", "a", "great", "film"]
    assert run(layers.RemoveStopwords(), tokens)[1] == ["plot", "great"]
    counts_layer = layers.CountVectorize(max_features=2)
    counts = run(counts_layer, tokens)
    assert counts_layer.metadata["vocabulary"].tolist() == ["a", "great"]  # top 2 by count, ties by token
    np.testing.assert_array_equal(counts, [[1, 1], [0, 1]])
    with pytest.raises(ConfigError, match="no stopword list for 'klingon'"):
        layers.RemoveStopwords("klingon")


def test_map_layer_shares_or_copies_the_layer():
    a, b = Input("a")(np.array([0.0, 2.0])), Input("b")(np.array([10.0, 30.0]))
    shared = layers.map_layer(layers.Whiten(), [a, b])
    fresh = layers.map_layer(layers.Whiten(), {"a": a, "b": b}, fresh=True, suffix="_w")
    np.testing.assert_allclose(fresh["a"].output, [-1.0, 1.0])  # each learned on its own node
    assert fresh["b"].name == "b_w"
    assert shared[0].layer is shared[1].layer
    np.testing.assert_allclose(shared[1].output, [9.0, 29.0])  # eagerly, learned on the first call only
    x, y = Input("a"), Input("b")
    refit = layers.map_layer(layers.Whiten(), [x, y], suffix="_w")
    pipeline = megatron.Pipeline([x, y], refit, name="shared")
    pipeline.fit({"a": np.array([0.0, 2.0]), "b": np.array([10.0, 30.0])})
    assert refit[0].layer.metadata["mean"] == pytest.approx(10.5)  # one state learned from both nodes


def test_every_layer_has_a_docstring_with_an_example_and_is_listed():
    from megatron.plugins.builtin import LAYERS

    for names in LAYERS.values():
        for name in names:
            cls = getattr(layers, name)
            assert cls.__doc__ and "Example::" in cls.__doc__, name
            assert name in dir(layers)
