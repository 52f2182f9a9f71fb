"""``megatron.suggest``: the "Did you mean ...?" of error messages suggests a name one typo
away or close by similarity, never an unrelated short name (any one-letter name is "one typo"
from any other, which suggested 'l' for a given key 'z')."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import MissingInputError
from megatron.nodes import Input
from megatron.suggest import closest, did_you_mean, one_typo_apart


def test_a_typo_is_suggested():
    assert closest("totl", ["total", "other"]) == "total"
    assert closest("sclaed", ["scaled"]) == "scaled"  # two neighbours swapped
    assert did_you_mean("X", ["x", "y"]) == " Did you mean 'x'?"  # case only, however short


@given(st.text("abcxyz", min_size=1, max_size=2), st.text("abcxyz", min_size=1, max_size=2))
def test_short_names_are_not_typos_of_each_other(word, other):
    if word != other:
        assert closest(word, [other]) in (None, other)
        if len(word) == len(other) == 1 and word.lower() != other.lower():
            assert closest(word, [other]) is None


@given(st.text("abcdefgh", min_size=3, max_size=8), st.integers(0, 7), st.sampled_from("xyz"))
def test_one_letter_changed_in_a_longer_name_is_suggested(word, position, letter):
    i = position % len(word)
    typo = word[:i] + letter + word[i + 1 :]
    assert one_typo_apart(word, typo) or typo == word
    if typo != word:
        assert closest(typo, [word]) == word


def test_a_missing_short_input_suggests_no_unrelated_key():
    x, label = Input("x"), Input("l")
    pipeline = megatron.Pipeline([x, label], layers.Add()([x, label], "s"), name="short")
    with pytest.raises(MissingInputError) as caught:
        pipeline.transform({"x": np.zeros(3), "z": np.zeros(3)})
    assert "Did you mean" not in str(caught.value)
    assert "needs input 'l'" in str(caught.value)
