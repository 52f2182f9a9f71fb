"""Bad input: each case has its own megatron exception and says what was expected and got."""

import numpy as np
import pytest

import megatron
from megatron import errors
from megatron.layers import Lambda
from megatron.nodes import Input


@pytest.fixture
def pipeline():
    image = Input("image", (48, 48, 3))
    label = Input("label")
    grey = Lambda(lambda im: im.mean(axis=-1))(image, "grey")
    same = Lambda(lambda v: v)(label, "same")
    return megatron.Pipeline([image, label], [grey, same], name="tutorial")


def test_misspelt_input_key_suggests_the_closest_name(pipeline):
    data = {"images": np.zeros((2, 48, 48, 3)), "label": np.zeros(2)}
    with pytest.raises(errors.MissingInputError) as caught:
        pipeline.transform(data)
    message = str(caught.value)
    assert "needs input 'image'" in message
    assert "Did you mean 'image' for the given key 'images'?" in message
    assert "Expected keys ['image', 'label']" in message
    assert isinstance(caught.value, KeyError)


def test_wrong_shape_names_input_declared_and_received(pipeline):
    data = {"image": np.zeros((10, 48, 48, 1)), "label": np.zeros(10)}
    with pytest.raises(errors.InputShapeError) as caught:
        pipeline.transform(data)
    message = str(caught.value)
    assert "'image'" in message and "(48, 48, 3)" in message and "(10, 48, 48, 1)" in message


def test_unequal_lengths(pipeline):
    data = {"image": np.zeros((3, 48, 48, 3)), "label": np.zeros(4)}
    with pytest.raises(errors.LengthMismatchError, match="'image': 3, 'label': 4"):
        pipeline.transform(data)


def test_dtype_that_cannot_be_cast_safely():
    x = Input("x", dtype="float32")
    p = megatron.Pipeline(x, Lambda(lambda v: v)(x, "y"), name="p")
    assert p.transform({"x": np.array([1, 2], dtype=np.int64)})["y"].dtype == np.float32
    with pytest.raises(errors.InputDtypeError, match="'x' declares dtype float32; got <U1"):
        p.transform({"x": np.array(["a", "b"])})


def test_data_that_is_not_a_mapping(pipeline):
    with pytest.raises(errors.DataError, match="takes a mapping of input name to array"):
        pipeline.transform([1, 2, 3])


def test_index_of_wrong_length(pipeline):
    data = {"image": np.zeros((2, 48, 48, 3)), "label": np.zeros(2)}
    with pytest.raises(errors.LengthMismatchError, match="index has 3 keys for 2 observations"):
        pipeline.transform(data, index=["a", "b", "c"])


def test_bad_counts_for_generators(pipeline):
    with pytest.raises(errors.DataError, match="epochs must be a positive integer; got 0"):
        pipeline.fit_generator([], epochs=0)


def test_every_megatron_error_is_a_megatron_error():
    for cls in (
        errors.MissingInputError,
        errors.InputShapeError,
        errors.LengthMismatchError,
        errors.UnknownOutputError,
        errors.LayerError,
        errors.NotFittedError,
        errors.PluginConflictError,
        errors.MissingKeyError,
    ):
        assert issubclass(cls, errors.MegatronError)
