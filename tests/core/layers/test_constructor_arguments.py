"""Bad constructor arguments of built-in layers and metrics are ConfigErrors, raised at once;
SpecError is kept for the shapes and dtypes of the nodes a layer is called on."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers, metrics
from megatron.errors import ConfigError, SpecError
from megatron.nodes import Input

EXAMPLES = settings(max_examples=40, deadline=None)


def refused(make, *args, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        make(*args, **kwargs)
    assert type(caught.value) is ConfigError  # not a SpecError, DataError or another subclass
    return caught.value


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: layers.TimeSeries(window_size=0),
            "TimeSeries window_size must be a positive integer; got 0",
        ),
        (lambda: layers.CountVectorize(max_features=0), "CountVectorize max_features must be a positive"),
        (lambda: layers.Lambda(np.negative, n_outputs=0), "Lambda n_outputs must be a positive integer"),
        (lambda: layers.OneHotRange(min_val=3, max_val=1), "OneHotRange needs min_val <= max_val"),
        (lambda: layers.SplitDict("age"), "SplitDict needs a list of field names"),
        (lambda: layers.SplitDict([]), "SplitDict needs a list of field names"),
        (lambda: layers.StaticDot(np.ones((2, 2, 2))), "StaticDot needs a numeric vector or matrix"),
        (lambda: layers.StaticDot(np.array(["a"])), "StaticDot needs a numeric vector or matrix"),
        (lambda: layers.Clip(), "Clip needs min_val, max_val or both"),
        (lambda: layers.MinMaxScale(feature_range=(1.0, 1.0)), "MinMaxScale needs feature_range"),
        (lambda: layers.RGBtoGrey(method="hue"), "RGBtoGrey method must be one of"),
        (lambda: layers.Downsample((0, 2)), "each size of new_shape \\(0, 2\\) must be a positive integer"),
        (lambda: layers.Upsample((4, 2.5)), "each size of new_shape .* must be a positive integer; got 2.5"),
        (lambda: layers.Upsample((2, 2, 2)), "new_shape must be \\(height, width\\)"),
        (lambda: layers.Impute({}), "Impute needs a non-empty dict"),
        (lambda: layers.Impute({0: [1, 2]}), "Impute replaces each value with one value"),
        (lambda: layers.SimpleImpute(strategy="mode"), "SimpleImpute strategy must be one of"),
        (lambda: layers.SimpleImpute(strategy="constant"), "needs a fill_value"),
        (lambda: layers.RemoveStopwords("klingon"), "no stopword list for 'klingon'"),
        (lambda: metrics.Precision(average="weighted"), "average must be 'binary', 'macro' or 'micro'"),
        (lambda: metrics.F1(average="samples"), "average must be 'binary', 'macro' or 'micro'"),
    ],
)
def test_each_bad_constructor_argument_is_a_config_error(make, message):
    assert re.search(message, str(refused(make)))


def test_shapes_of_the_nodes_called_on_stay_spec_errors():
    with pytest.raises(SpecError) as caught:
        layers.StaticDot(np.ones((3, 2)))(Input("x", (4,)), "y")
    assert not isinstance(caught.value, ConfigError)
    with pytest.raises(SpecError):
        layers.TimeSeries(2, time_axis=5)(Input("x", (3,)), "w")


not_positive_ints = st.one_of(
    st.integers(max_value=0),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.just(np.int64(0)),
)
POSITIVE_INT_ARGUMENTS = [  # (make a layer with the count, the argument's name, read it back)
    (lambda v: layers.TimeSeries(window_size=v), "window_size", lambda layer: layer.window_size),
    (lambda v: layers.CountVectorize(max_features=v), "max_features", lambda layer: layer.max_features),
    (lambda v: layers.Lambda(np.negative, n_outputs=v), "n_outputs", lambda layer: layer.n_outputs),
    (lambda v: layers.Downsample((v, 3)), "new_shape", lambda layer: layer.new_shape[0]),
]


@EXAMPLES
@given(value=not_positive_ints, which=st.sampled_from(POSITIVE_INT_ARGUMENTS))
def test_a_positive_integer_argument_refuses_anything_else(value, which):
    make, name, _ = which
    assert name in str(refused(make, value))


@EXAMPLES
@given(value=st.integers(min_value=1, max_value=10**6), which=st.sampled_from(POSITIVE_INT_ARGUMENTS))
def test_a_positive_integer_argument_takes_any_positive_integer(value, which):
    make, _, read = which
    assert read(make(value)) == value


def test_an_optional_count_takes_none():
    assert layers.CountVectorize(max_features=None).max_features is None


CHOICES = [
    (lambda v: layers.RGBtoGrey(method=v), ("luminosity", "lightness", "average")),
    (
        lambda v: layers.SimpleImpute(strategy=v, fill_value=0),
        ("mean", "median", "most_frequent", "constant"),
    ),
    (lambda v: layers.RemoveStopwords(v), ("english",)),
    (lambda v: metrics.Precision(average=v), ("binary", "macro", "micro")),
    (lambda v: metrics.Recall(average=v), ("binary", "macro", "micro")),
]


@EXAMPLES
@given(data=st.data(), which=st.sampled_from(CHOICES))
def test_an_option_outside_its_choices_is_refused_and_each_choice_taken(data, which):
    make, choices = which
    word = data.draw(st.text(max_size=12).filter(lambda w: w not in choices))
    refused(make, word)
    make(data.draw(st.sampled_from(choices)))


@EXAMPLES
@given(low=st.integers(-50, 50), high=st.integers(-50, 50))
def test_a_range_is_refused_when_empty_and_taken_otherwise(low, high):
    if low <= high:
        assert layers.OneHotRange(min_val=low, max_val=high).max_val == high
    else:
        refused(layers.OneHotRange, min_val=low, max_val=high)
    if low < high:
        assert layers.MinMaxScale(feature_range=(low, high)).feature_range == (low, high)
    else:
        refused(layers.MinMaxScale, feature_range=(low, high))


def _raised_in_init(path: Path) -> list[str]:
    """``Class.__init__ raises Name`` for each raise of a class other than ConfigError (or a
    built-in) written inside a constructor of ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef):
            for method in node.body:
                if isinstance(method, ast.FunctionDef) and method.name == "__init__":
                    for raised in ast.walk(method):
                        if isinstance(raised, ast.Raise) and isinstance(raised.exc, ast.Call):
                            name = getattr(raised.exc.func, "id", "")
                            if name.endswith("Error") and name not in ("ConfigError", "TypeError"):
                                found.append(f"{path.name}: {node.name}.__init__ raises {name}")
    return found


def test_no_built_in_constructor_raises_another_megatron_error():
    package = Path(megatron.__file__).parent
    sources = sorted((package / "layers").glob("*.py")) + sorted((package / "metrics").glob("*.py"))
    assert [line for path in sources for line in _raised_in_init(path)] == []
