"""Bad input is refused with a megatron error that says what was expected: data that is not a
mapping, sources that would spin forever or read a wrong number of rows, replacements that
are not one value, sparse matrices, and pixels of no known range."""

import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.errors import ConfigError, DataError, LayerInputError, MegatronError, SourceError
from megatron.io import ArrayGenerator, Batch, BatchSource, CSVData, CSVGenerator, PandasData, PandasGenerator
from megatron.nodes import Input


@pytest.fixture
def pipeline():
    x, y = Input("x", (3,)), Input("y")
    white = layers.Whiten()(x, "white")
    total = layers.Lambda(lambda v: v.sum(axis=1))(white, "total")
    megatron.metrics.MeanSquaredError()([y, total], "mse")
    return megatron.Pipeline([x, y], [white, total], name="mapped")


# -- data that is not a mapping ---------------------------------------------------------------------
NOT_MAPPINGS = [np.ones((4, 3)), [np.ones((4, 3))], (np.ones(3),), "x", 3.0, None]


@pytest.mark.parametrize("data", NOT_MAPPINGS, ids=lambda d: type(d).__name__)
def test_fit_transform_and_evaluate_refuse_data_that_is_not_a_mapping(pipeline, data):
    for operation in (pipeline.fit, pipeline.partial_fit):
        with pytest.raises(DataError, match=r"takes a mapping of input name to array.*pass \{'x': data\}"):
            operation(data)
    pipeline.fit({"x": np.ones((4, 3))})
    with pytest.raises(DataError, match=r"transform\(\) takes a mapping of input name to array"):
        pipeline.transform(data)


@pytest.mark.parametrize("data", NOT_MAPPINGS[:3], ids=lambda d: type(d).__name__)
def test_fit_generator_refuses_batches_that_are_not_mappings(pipeline, data):
    with pytest.raises(DataError, match=r"Batch 0: .*takes a mapping of input name to array"):
        pipeline.fit_generator([data])


def test_a_single_dataset_given_as_a_stream_is_refused_saying_what_to_pass(pipeline):
    data = {"x": np.ones((4, 3))}
    pipeline.fit(data)
    for operation in (pipeline.fit_generator, pipeline.transform_generator, pipeline.evaluate_generator):
        with pytest.raises(DataError, match=r"takes an iterable of batches.*pass \[data\]"):
            operation(data)
    with pytest.raises(DataError, match="takes an iterable of batches.*numpy array"):
        pipeline.fit_generator(np.ones((4, 3)))


def test_a_scipy_sparse_matrix_is_refused_clearly(pipeline):
    sparse = pytest.importorskip("scipy.sparse", reason="needs scipy: scikit-learn's dependency")
    matrix = sparse.random(5, 3, density=0.5, format="csr", random_state=0)
    with pytest.raises(DataError, match=r"scipy.sparse csr_matrix of shape \(5, 3\).*data.toarray\(\)"):
        pipeline.fit({"x": matrix})
    with pytest.raises(DataError, match="got a scipy.sparse"):
        pipeline.fit(matrix)


# -- sources --------------------------------------------------------------------------------------
def needs_pandas():
    return pytest.importorskip(
        "pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'"
    )


class EmptyQuery(BatchSource):
    """A source whose every pass is empty, as a query that matches no rows; stops a test that
    would otherwise spin forever."""

    passes = 0

    def one_pass(self):
        type(self).passes += 1
        if self.passes > 50:
            raise RuntimeError("spun through 50 empty passes")
        return iter(())


def test_repeat_over_no_rows_raises_instead_of_spinning():
    with pytest.raises(SourceError, match=r"EmptyQuery\(repeat=True\) has no rows to repeat"):
        next(iter(EmptyQuery(4, repeat=True)))
    assert EmptyQuery.passes == 1
    with pytest.raises(SourceError, match="ArrayGenerator.* has no rows to repeat"):
        next(iter(ArrayGenerator({"x": np.zeros((0, 3))}, 2, repeat=True)))
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="spin")
    with pytest.raises(SourceError, match="has no rows to repeat"):
        pipeline.fit_generator(EmptyQuery(4, repeat=True), steps_per_epoch=3)


def test_an_empty_frame_repeated_raises_and_a_full_one_still_cycles():
    pd = needs_pandas()
    with pytest.raises(SourceError, match=r"PandasGenerator\(repeat=True\) has no rows to repeat"):
        next(iter(PandasGenerator(pd.DataFrame({"x": np.array([], dtype=float)}), 2, repeat=True)))
    source = PandasGenerator(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), batch_size=2, repeat=True)
    drawn = [batch["x"].tolist() for _, batch in zip(range(4), source)]
    assert drawn == [[1.0, 2.0], [3.0], [1.0, 2.0], [3.0]]


@pytest.mark.parametrize("nrows", [-1, 0, 1.5, True])
def test_nrows_must_be_a_positive_count(nrows, tmp_path):
    pd = needs_pandas()
    frame = pd.DataFrame({"a": range(100)})
    with pytest.raises(DataError, match="nrows must be a positive integer"):
        PandasData(frame, nrows=nrows)
    frame.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match="nrows must be a positive integer"):
        CSVData(tmp_path / "a.csv", nrows=nrows)
    assert len(PandasData(frame, nrows=7)["a"]) == 7


def test_a_missing_file_is_also_a_file_not_found_error(tmp_path):
    needs_pandas()
    for make in (lambda p: CSVData(p), lambda p: CSVGenerator(p, 10), lambda p: ArrayGenerator({"x": p}, 10)):
        with pytest.raises(FileNotFoundError, match="No such file") as caught:
            make(tmp_path / "nope.csv")
        assert isinstance(caught.value, SourceError) and isinstance(caught.value, MegatronError)
    with pytest.raises(FileNotFoundError, match="A folder, not a file"):
        CSVData(tmp_path)


# -- layers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("replacement", [[7, 8], (7, 8), np.array([7, 8]), {"a": 1}, {7}])
def test_impute_refuses_a_replacement_that_is_not_one_value(replacement):
    with pytest.raises(ConfigError, match="replaces each value with one value"):
        layers.Impute({0: replacement})


def test_impute_takes_one_value_of_any_kind():
    values = np.array([0, 1, 0])
    assert layers.Impute({0: 7}).transform(values).tolist() == [7, 1, 7]
    assert layers.Impute({0: "none"}).transform(values).tolist() == ["none", 1, "none"]
    assert layers.Impute({0: np.float64(0.5)}).transform(values).tolist() == [0.5, 1.0, 0.5]


def test_count_vectorize_refuses_at_fit_the_two_dimensional_text_its_transform_refuses():
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.CountVectorize()(x, "counts"), name="text")
    with pytest.raises(LayerInputError, match=r"at node 'counts'.*one string or token list per observation"):
        pipeline.fit({"x": np.array([["a b", "c"], ["d", "e"]])})


@pytest.mark.parametrize("make", [layers.ScalePixels, layers.RGBtoBinary])
def test_pixels_of_no_known_range_are_refused(make):
    images = np.array([[[[255, 0, 128]]], [[[3, 200, 9]]]])  # an int64 array from a Python list
    assert images.dtype == np.int64
    with pytest.raises(LayerInputError, match="pixel range of dtype int64 is not known.*dtype='uint8'"):
        make().transform(images)
    x = Input("x", (1, 1, 3))
    out = megatron.Pipeline(x, make()(x, "out"), name="pixels").transform({"x": images.astype(np.uint8)})[
        "out"
    ]
    if make is layers.ScalePixels:
        np.testing.assert_allclose(out[0, 0, 0], [1.0, 0.0, 128 / 255], rtol=1e-6)
    else:
        assert out[:, 0, 0, 0].tolist() == [0, 1]


def test_a_batch_keeps_working_as_data():
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Lambda(lambda v: v * 2)(x, "out"), name="batch")
    assert pipeline.transform(Batch({"x": np.arange(3.0)}, index=[5, 6, 7])).index.tolist() == [5, 6, 7]


@pytest.mark.parametrize(
    "make", [layers.Add, layers.Subtract, layers.ElementWiseMultiply, layers.Divide, layers.Dot]
)
def test_observations_of_shapes_that_do_not_combine_are_a_layer_input_error(make):
    x, y = Input("x", None), Input("y", None)  # shapes not declared: only the data can tell
    pipeline = megatron.Pipeline([x, y], make()([x, y], "out"), name="combine")
    with pytest.raises(LayerInputError, match=r"at node 'out'.*\(2,\).*\(3,\)"):
        pipeline.transform({"x": np.ones((1, 2)), "y": np.ones((1, 3))})
