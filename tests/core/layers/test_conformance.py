"""Every built-in layer and metric passes the conformance suite of ``megatron.testing``."""

from functools import partial

import numpy as np
import pytest

from megatron import layers, metrics
from megatron.plugins import get_registry
from megatron.plugins.builtin import LAYERS, METRICS
from megatron.testing import LayerCase, MetricCase, layer_checks, metric_checks

rng = np.random.default_rng(7)
N = 40
FLOATS = rng.normal(5, 2, size=(N, 3))
POSITIVE = rng.uniform(0.5, 4, size=(N, 3))
IMAGES = rng.random((N, 6, 8, 3))
WITH_NAN = np.where(rng.random((N, 3)) < 0.2, np.nan, FLOATS)
LABELS = rng.integers(0, 4, size=N)
WORDS = np.array(
    [" ".join(rng.choice(["the", "cat", "sat", "on", "a", "mat", "Dog", "ran"], size=5)) for _ in range(N)]
)
STRINGS = np.array(["x", "y"] * (N // 2))


def case(make, *inputs, bad=(), **kwargs):
    return LayerCase(make, inputs, bad_inputs=bad, name=kwargs.pop("name", None) or _name(make), **kwargs)


def _name(make):
    return getattr(make, "__name__", None) or type(make()).__name__


STRINGS_FOR_NUMBERS = ((STRINGS,),)
CASES = {
    "Lambda": [case(lambda: layers.Lambda(np.sqrt), POSITIVE, name="Lambda")],
    "RGBtoGrey": [
        case(partial(layers.RGBtoGrey, method=m, keep_dim=k), IMAGES, bad=((FLOATS,),), name=f"RGBtoGrey-{m}-{k}")
        for m in ("luminosity", "lightness", "average")
        for k in (False, True)
    ],
    "RGBtoBinary": [case(layers.RGBtoBinary, IMAGES, bad=((IMAGES[..., :2],),))],
    "Downsample": [
        case(lambda: layers.Downsample((3, 4)), IMAGES, bad=((FLOATS,),), name="Downsample-blocks"),
        case(lambda: layers.Downsample((4, 5)), IMAGES, name="Downsample-area"),
    ],
    "Upsample": [
        case(lambda: layers.Upsample((12, 16)), IMAGES, bad=((FLOATS,),), name="Upsample-repeat"),
        case(lambda: layers.Upsample((7, 9)), IMAGES, name="Upsample-nearest"),
    ],
    "ScalePixels": [case(layers.ScalePixels, (IMAGES * 255).astype(np.uint8), bad=((IMAGES,),))],
    "Impute": [
        case(lambda: layers.Impute({np.nan: 0.0}), WITH_NAN, name="Impute-nan"),
        case(lambda: layers.Impute({"x": "a much longer value"}), STRINGS, name="Impute-str"),
    ],
    "SimpleImpute": [
        case(partial(layers.SimpleImpute, strategy=s), WITH_NAN, name=f"SimpleImpute-{s}", bad=STRINGS_FOR_NUMBERS)
        for s in ("mean", "median")
    ]
    + [
        case(lambda: layers.SimpleImpute("most_frequent"), np.round(WITH_NAN), name="SimpleImpute-most_frequent"),
        case(lambda: layers.SimpleImpute("constant", fill_value=-1.0), WITH_NAN, name="SimpleImpute-constant"),
    ],
    "MissingIndicator": [case(layers.MissingIndicator, WITH_NAN)],
    "Add": [case(layers.Add, FLOATS, POSITIVE, FLOATS, bad=((STRINGS, STRINGS, STRINGS),))],
    "Subtract": [case(layers.Subtract, FLOATS, POSITIVE[:, :1], bad=((STRINGS, STRINGS),))],
    "ScalarMultiply": [case(lambda: layers.ScalarMultiply(2.5), FLOATS, bad=STRINGS_FOR_NUMBERS, name="ScalarMultiply")],
    "ScalarAdd": [case(lambda: layers.ScalarAdd(-1.5), FLOATS, bad=STRINGS_FOR_NUMBERS, name="ScalarAdd")],
    "ElementWiseMultiply": [case(layers.ElementWiseMultiply, FLOATS, POSITIVE, bad=((STRINGS, STRINGS),))],
    "Divide": [case(layers.Divide, FLOATS, np.where(POSITIVE > 2, POSITIVE, 0), bad=((STRINGS, STRINGS),))],
    "StaticDot": [case(lambda: layers.StaticDot(np.arange(6.0).reshape(3, 2)), FLOATS, bad=STRINGS_FOR_NUMBERS, name="StaticDot")],
    "Dot": [case(layers.Dot, FLOATS, POSITIVE, bad=((STRINGS, STRINGS),))],
    "Normalize": [case(layers.Normalize, POSITIVE, bad=STRINGS_FOR_NUMBERS)],
    "Whiten": [case(layers.Whiten, FLOATS, bad=STRINGS_FOR_NUMBERS)],
    "MinMaxScale": [case(layers.MinMaxScale, FLOATS, bad=STRINGS_FOR_NUMBERS)],
    "Clip": [case(lambda: layers.Clip(4, 6), FLOATS, bad=STRINGS_FOR_NUMBERS, name="Clip")],
    "Log": [case(lambda: layers.Log(base=10), POSITIVE, bad=((-POSITIVE,),), name="Log")],
    "Cast": [case(lambda: layers.Cast("float32"), FLOATS, bad=((np.array(["a"] * N),),), name="Cast")],
    "AddDim": [case(layers.AddDim, FLOATS)],
    "OneHotRange": [
        case(layers.OneHotRange, LABELS, bad=((FLOATS[:, 0],),), name="OneHotRange-learned"),
        case(lambda: layers.OneHotRange(0, 3, strict=True), LABELS, bad=((LABELS + 9,),), name="OneHotRange-strict"),
    ],
    "OneHotLabels": [case(layers.OneHotLabels, np.array(["b", "a", "c", "a"] * (N // 4)))],
    "Reshape": [case(lambda: layers.Reshape((8, 3, 6)), IMAGES, bad=((FLOATS,),), name="Reshape")],
    "Flatten": [case(layers.Flatten, IMAGES)],
    "SplitDict": [
        case(lambda: layers.SplitDict(["a", "b"]), np.array([{"a": i, "b": -i} for i in range(N)]),
             bad=((np.array([{"a": 1}] * N),),), name="SplitDict")
    ],
    "TimeSeries": [case(lambda: layers.TimeSeries(4), FLOATS, name="TimeSeries")],
    "Concatenate": [case(layers.Concatenate, FLOATS, FLOATS[:, 0], POSITIVE)],
    "Slice": [case(lambda: layers.Slice(1, 3), FLOATS, bad=((FLOATS[:, 0],),), name="Slice")],
    "Filter": [
        case(lambda: layers.Filter(lambda x: x[:, 0] > 5), FLOATS, name="Filter-condition"),
        case(layers.Filter, FLOATS[:, 0] > 5, FLOATS, LABELS, bad=((FLOATS[:, 0], FLOATS, LABELS),), name="Filter-mask"),
    ],
    "Lowercase": [case(layers.Lowercase, WORDS, bad=((FLOATS,),))],
    "Tokenize": [case(layers.Tokenize, WORDS, bad=((FLOATS[:, 0],),))],
    "RemoveStopwords": [case(layers.RemoveStopwords, WORDS, bad=((FLOATS[:, 0],),))],
    "CountVectorize": [case(lambda: layers.CountVectorize(max_features=5), WORDS, bad=((FLOATS[:, 0],),), name="CountVectorize")],
}  # fmt: skip

ALL_CASES = [c for cases in CASES.values() for c in cases]


def test_every_built_in_layer_has_a_case():
    builtin = {name for names in LAYERS.values() for name in names}
    assert builtin == set(get_registry().names("layer")) & builtin
    assert set(CASES) == builtin


@pytest.mark.parametrize("check", layer_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("layer_case", ALL_CASES, ids=str)
def test_layer_conformance(check, layer_case):
    check(layer_case)


BINARY_TRUE = np.array([1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1])
BINARY_PRED = np.array([1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1])
Y = rng.normal(size=30)
Y_HAT = Y + rng.normal(scale=0.3, size=30)
METRIC_CASES = {
    "Metric": [MetricCase(lambda: metrics.Metric(lambda y, p: float(np.median(y - p))), (Y, Y_HAT),
                          expected=float(np.median(Y - Y_HAT)), name="Metric")],
    "Accuracy": [MetricCase(metrics.Accuracy, (BINARY_TRUE, BINARY_PRED), expected=8 / 12, name="Accuracy")],
    "Precision": [MetricCase(metrics.Precision, (BINARY_TRUE, BINARY_PRED), expected=5 / 7, name="Precision")],
    "Recall": [MetricCase(metrics.Recall, (BINARY_TRUE, BINARY_PRED), expected=5 / 7, name="Recall")],
    "F1": [MetricCase(metrics.F1, (BINARY_TRUE, BINARY_PRED), expected=5 / 7, name="F1")],
    "MeanSquaredError": [MetricCase(metrics.MeanSquaredError, (Y, Y_HAT), expected=float(np.mean((Y - Y_HAT) ** 2)), name="MSE")],
    "MeanAbsoluteError": [MetricCase(metrics.MeanAbsoluteError, (Y, Y_HAT), expected=float(np.mean(np.abs(Y - Y_HAT))), name="MAE")],
    "R2": [MetricCase(metrics.R2, (Y, Y_HAT), expected=1 - np.sum((Y - Y_HAT) ** 2) / np.sum((Y - Y.mean()) ** 2), name="R2")],
}  # fmt: skip


def test_every_built_in_metric_has_a_case():
    assert set(METRIC_CASES) == {name for names in METRICS.values() for name in names}


@pytest.mark.parametrize("check", metric_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("metric_case", [c for cs in METRIC_CASES.values() for c in cs], ids=str)
def test_metric_conformance(check, metric_case):
    check(metric_case)
