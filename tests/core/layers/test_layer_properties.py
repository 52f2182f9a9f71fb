"""Every built-in layer on generated data: the property suites of ``megatron.testing`` (the
generated-batch checks of ``megatron.testing.batches`` and the answer checks of
``megatron.testing.layer_answers``) over every conformance case, and a numpy reference for
each layer that has one.

Budget: derandomized; per case 8 draws of its own rows, 8 generated batches, 5 splits, 5
splits with epochs, 5 fits with a non-finite value, 5 inputs outside their spec, the 7
values that are not a mapping and 2 save-and-reload round trips, and for the 9 cases whose
layer merges states 10 merges of 2 or 3 generated parts: about 2,000 examples over the 49
cases, about 8 s (``pytest --durations`` shows it; the merges take about 1 s).
"""

import re
import warnings
from collections import Counter

import attrs
import numpy as np
import pytest

from megatron.layers.text import TOKEN_PATTERN
from megatron.testing import layer_properties
from megatron.testing.layer_answers import (
    answer_properties,
    check_accepts_its_own_rows,
    check_declared_spec_guards_inputs,
    check_generated_round_trip,
    check_merges_on_generated_parts,
    check_nonfinite_fit_data,
    check_one_pass_over_epochs,
    check_refuses_non_mappings,
)

from .test_conformance import ALL_CASES

pytest.importorskip("hypothesis", reason="needs hypothesis: pip install -e 'packages/megatron-core[testing]'")

LUMINOSITY = np.array([0.21, 0.72, 0.07])


def one_hot(positions, inside, width):
    out = np.zeros((len(positions), width), dtype=np.float32)
    out[np.flatnonzero(inside), positions[inside]] = 1
    return out


def scaled(fit, X):
    (F,), (X,) = fit, X
    span = F.max(axis=0) - F.min(axis=0)
    return ((X - F.min(axis=0)) / np.where(span == 0, 1, span),)


def whitened(fit, X):
    (F,), (X,) = fit, X
    std = F.std(axis=0)
    return ((X - F.mean(axis=0)) / np.where(std == 0, 1, std),)


def filled(function):
    def reference(fit, X):
        (F,), (X,) = fit, X
        with warnings.catch_warnings():  # a feature with no value at all: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            fill = function(F, axis=0)
        return (np.where(np.isnan(X), fill, X),)

    return reference


def one_hot_range(fit, X):
    (F,), (X,) = fit, X
    low, high = int(F.min()), int(F.max())
    return (one_hot(X - low, (low <= X) & (high >= X), high - low + 1),)


def one_hot_labels(fit, X):
    (F,), (X,) = fit, X
    labels = np.unique(F)
    inside = np.isin(X, labels)
    return (one_hot(np.searchsorted(labels, X), inside, len(labels)),)


def windows(X, size=4):
    n = max(len(X) - size + 1, 0)
    return (np.stack([X[i : i + size] for i in range(n)]) if n else np.empty((0, size, *X.shape[1:])),)


def count_vectorize(fit, X):
    (F,), (X,) = fit, X
    counts = Counter(token for text in F.tolist() for token in text.split())
    kept = sorted(sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))[:5])
    vocabulary = [token for token, _ in kept]
    return (
        np.array(
            [[text.split().count(t) for t in vocabulary] for text in X.tolist()], dtype=np.int64
        ).reshape(len(X), len(vocabulary)),
    )


def tokens(X):
    out = np.empty(len(X), dtype=object)
    out[:] = [re.findall(TOKEN_PATTERN, text) for text in X.tolist()]
    return out


W = np.arange(6.0).reshape(3, 2)
REFERENCES = {
    "Lambda": lambda fit, X: (np.sqrt(X[0]),),
    "RGBtoGrey-luminosity-False": lambda fit, X: (X[0] @ LUMINOSITY,),
    "RGBtoGrey-luminosity-True": lambda fit, X: ((X[0] @ LUMINOSITY)[..., None],),
    "RGBtoGrey-lightness-False": lambda fit, X: ((X[0].max(-1) + X[0].min(-1)) / 2,),
    "RGBtoGrey-lightness-True": lambda fit, X: (((X[0].max(-1) + X[0].min(-1)) / 2)[..., None],),
    "RGBtoGrey-average-False": lambda fit, X: (X[0].mean(-1),),
    "RGBtoGrey-average-True": lambda fit, X: (X[0].mean(-1)[..., None],),
    "RGBtoBinary": lambda fit, X: ((X[0] @ LUMINOSITY >= 0.5).astype(np.uint8)[..., None],),
    "Downsample-blocks": lambda fit, X: (X[0].reshape(len(X[0]), 3, 2, 4, 2, 3).mean(axis=(2, 4)),),
    "Upsample-repeat": lambda fit, X: (X[0].repeat(2, axis=1).repeat(2, axis=2),),
    "ScalePixels": lambda fit, X: (X[0] / np.float32(255),),
    "Impute-nan": lambda fit, X: (np.where(np.isnan(X[0]), 0.0, X[0]),),
    "Impute-str": lambda fit, X: (np.where(X[0] == "x", "a much longer value", X[0]),),
    "SimpleImpute-mean": filled(np.nanmean),
    "SimpleImpute-median": filled(np.nanmedian),
    "SimpleImpute-constant": lambda fit, X: (np.where(np.isnan(X[0]), -1.0, X[0]),),
    "MissingIndicator": lambda fit, X: (np.isnan(X[0]),),
    "Add": lambda fit, X: (X[0] + X[1] + X[2],),
    "Subtract": lambda fit, X: (X[0] - X[1],),
    "ScalarMultiply": lambda fit, X: (X[0] * 2.5,),
    "ScalarAdd": lambda fit, X: (X[0] - 1.5,),
    "ElementWiseMultiply": lambda fit, X: (X[0] * X[1],),
    "Divide": lambda fit, X: (np.divide(X[0], X[1], out=np.zeros_like(X[0]), where=X[1] != 0),),
    "StaticDot": lambda fit, X: (X[0] @ W,),
    "Dot": lambda fit, X: (np.einsum("ni,ni->n", X[0], X[1]),),
    "Normalize": lambda fit, X: (X[0] / X[0].sum(axis=1, keepdims=True),),
    "Whiten": whitened,
    "MinMaxScale": scaled,
    "Clip": lambda fit, X: (np.clip(X[0], 4, 6),),
    "Log": lambda fit, X: (np.log10(X[0]),),
    "Cast": lambda fit, X: (X[0].astype(np.float32),),
    "AddDim": lambda fit, X: (X[0][..., None],),
    "OneHotRange-learned": one_hot_range,
    "OneHotRange-strict": lambda fit, X: (one_hot(X[0], np.ones(len(X[0]), bool), 4),),
    "OneHotLabels": one_hot_labels,
    "Reshape": lambda fit, X: (X[0].reshape(len(X[0]), 8, 3, 6),),
    "Flatten": lambda fit, X: (X[0].reshape(len(X[0]), int(np.prod(X[0].shape[1:]))),),
    "SplitDict": lambda fit, X: (np.array([r["a"] for r in X[0]]), np.array([r["b"] for r in X[0]])),
    "TimeSeries": lambda fit, X: windows(X[0]),
    "Concatenate": lambda fit, X: (np.concatenate([X[0], X[1][:, None], X[2]], axis=1),),
    "Slice": lambda fit, X: (X[0][:, 1:3],),
    "Filter-condition": lambda fit, X: (X[0][X[0][:, 0] > 5],),
    "Filter-mask": lambda fit, X: (X[1][X[0]], X[2][X[0]]),
    "Lowercase": lambda fit, X: (np.char.lower(X[0]),),
    "Tokenize": lambda fit, X: (tokens(X[0]),),
    "CountVectorize": count_vectorize,
}
USER_CODE = {"Lambda", "Filter-condition"}  # run a user's function, whose own errors pass through
CASES = {str(case): attrs.evolve(case, user_code=str(case) in USER_CODE) for case in ALL_CASES}
WITHOUT_REFERENCE = {"Downsample-area", "Upsample-nearest", "SimpleImpute-most_frequent", "RemoveStopwords"}


def test_every_case_has_a_reference_or_says_why_not():
    assert set(REFERENCES) | WITHOUT_REFERENCE == set(CASES)
    assert not set(REFERENCES) & WITHOUT_REFERENCE


@pytest.mark.parametrize("name", sorted(CASES))
def test_own_rows_are_accepted_and_match_the_reference(name):
    check_accepts_its_own_rows(CASES[name], examples=8, reference=REFERENCES.get(name))


FITTING = {
    "check_one_pass_over_epochs": 5,
    "check_nonfinite_fit_data": 5,
    "check_generated_round_trip": 2,
    "check_merges_on_generated_parts": 10,
}
GUARDS = {"check_refuses_non_mappings": 7, "check_declared_spec_guards_inputs": 5}


@pytest.mark.parametrize(
    "check",
    [
        check_one_pass_over_epochs,
        check_nonfinite_fit_data,
        check_generated_round_trip,
        check_merges_on_generated_parts,
        check_refuses_non_mappings,
        check_declared_spec_guards_inputs,
    ],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("name", sorted(CASES))
def test_answer_properties(check, name):
    check(CASES[name], examples={**FITTING, **GUARDS}[check.__name__])


def test_the_answer_suite_lists_every_check():
    assert len(answer_properties()) == 1 + len(FITTING) + len(GUARDS)


@pytest.mark.parametrize("check", layer_properties(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_batches(check, name):
    check(CASES[name], examples=8 if check.__name__ == "check_generated_batches" else 5)
