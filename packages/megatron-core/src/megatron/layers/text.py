"""Text layers: lower-casing, tokenizing, stopword removal, and a learned vocabulary of counts."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from megatron.arguments import positive_int
from megatron.errors import ConfigError, LayerInputError
from megatron.layers import checks
from megatron.layers.base import StatefulLayer, StatelessLayer
from megatron.layers.naming import FeatureNames, passed_through
from megatron.layers.state import Exactness
from megatron.specs import Spec

TOKEN_PATTERN = r"(?u)\b\w[\w']*\b"


@cache
def stopwords(language: str) -> frozenset[str]:
    """The shipped stopword list of ``language`` (no download)."""
    folder = resources.files("megatron.layers") / "stopwords"
    available = sorted(p.name.removesuffix(".txt") for p in folder.iterdir() if p.name.endswith(".txt"))
    if language not in available:
        raise ConfigError(f"no stopword list for {language!r}; available: {available}")
    return frozenset((folder / f"{language}.txt").read_text(encoding="utf-8").split())


def _tokens(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list | tuple | np.ndarray) and all(isinstance(t, str) for t in value):
        return list(value)
    raise LayerInputError(f"expected a string or a list of tokens per observation; got {value!r}")


def _object_array(items: list[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


class Lowercase(StatelessLayer):
    """Lower-case strings.

    Example::

        lower = Lowercase()(reviews)
    """

    def output_spec(self, X: Spec) -> Spec:
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        checks.text(X)
        if X.dtype.kind == "U":
            return np.char.lower(X)
        return np.frompyfunc(str.lower, 1, 1)(X).astype(object)

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)


class Tokenize(StatelessLayer):
    """Split each string into a list of tokens (words, by default), as an object array.

    Example::

        tokens = Tokenize()(reviews)   # 'Good film!' -> ['Good', 'film']
    """

    def __init__(self, pattern: str = TOKEN_PATTERN, lowercase: bool = False) -> None:
        self.pattern = pattern
        self.lowercase = lowercase

    def output_spec(self, X: Spec) -> Spec:
        return Spec(X.shape, object)

    def transform(self, X: np.ndarray) -> np.ndarray:
        checks.text(X)
        if X.ndim != 1:
            raise LayerInputError(f"expected one string per observation; got shape {X.shape}")
        find = re.compile(self.pattern).findall
        return _object_array([find(s.lower() if self.lowercase else s) for s in X.tolist()])


class RemoveStopwords(StatelessLayer):
    """Remove common words (case-insensitively) using the shipped list for ``language``.

    Strings come back as strings (words joined by spaces); token lists as token lists.

    Example::

        content = RemoveStopwords()(reviews)   # 'this is a great film' -> 'great film'
    """

    def __init__(self, language: str = "english") -> None:
        stopwords(language)  # fail early on an unknown language
        self.language = language

    def output_spec(self, X: Spec) -> Spec:
        return Spec(X.shape, object if X.dtype is not None and X.dtype.kind == "O" else None)

    def transform(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 1:
            raise LayerInputError(f"expected one string or token list per observation; got shape {X.shape}")
        words = stopwords(self.language)
        values = X.tolist()
        if X.dtype.kind == "U" or all(isinstance(v, str) for v in values):
            joined = [" ".join([w for w in v.split() if w.lower() not in words]) for v in values]
            return np.array(joined, dtype=str) if X.dtype.kind == "U" else _object_array(joined)
        return _object_array([[t for t in _tokens(v) if t.lower() not in words] for v in values])


class CountVectorize(StatefulLayer):
    """Token counts over a vocabulary learned in fit: one column per token.

    Observations are strings (split on whitespace) or token lists. The vocabulary keeps the
    ``max_features`` most frequent tokens seen at least ``min_count`` times (ties by token),
    ordered by token. ``partial_fit`` is exact: counts are merged across batches, and so are
    the states of copies fitted on separate parts (``merge_states``). ``sparse=True`` gives a
    scipy.sparse CSR matrix (needs scipy), which never holds the zeros of a wide vocabulary:
    feed it to layers that take sparse input (``Sklearn`` estimators such as
    ``TfidfTransformer``, ``LogisticRegression``).

    Example::

        counts = CountVectorize(max_features=1000)(Tokenize(lowercase=True)(reviews))
    """

    def __init__(self, max_features: int | None = None, min_count: int = 1, sparse: bool = False) -> None:
        self.max_features = positive_int(max_features, "CountVectorize max_features", allow_none=True)
        self.min_count = min_count
        self.sparse = sparse

    fixed_shape = False  # one vocabulary, whatever the shape: transform checks its input itself

    def reset(self) -> None:
        super().reset()
        self.__dict__.pop("_counter", None)

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        self.__dict__.pop("_counter", None)  # counts go on from the new state

    def partial_fit(self, X: np.ndarray) -> None:
        checks.nonempty(X, "partial_fit")
        if X.ndim != 1:
            raise LayerInputError(f"expected one string or token list per observation; got shape {X.shape}")
        counter = self.__dict__.get("_counter")
        if counter is None:  # a fresh fit, or a reloaded layer: counts go on from its metadata
            counter = self.__dict__["_counter"] = _saved_counts(self.metadata)
        for value in X.tolist():
            counter.update(_tokens(value))
        self.metadata.update(self._vocabulary(counter))

    def merge_exactness(self) -> Exactness:
        return "exact"

    def merge_states(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        """The counts of both states added, and the vocabulary they give, as ``partial_fit``
        over both parts would keep (every count is kept, the tokens left out too)."""
        counter = _saved_counts(a)
        counter.update(_saved_counts(b))
        return self._vocabulary(counter) if counter else {}

    def _vocabulary(self, counter: Counter) -> dict[str, np.ndarray]:
        """The state ``counter`` gives: the vocabulary (the ``max_features`` most frequent of the
        tokens counted at least ``min_count`` times, ties by token), its counts, and the counts
        of the tokens left out, so that more counts (a further batch, after a reload as well, or
        a merge) can bring one in exactly."""
        kept = [(t, c) for t, c in counter.items() if c >= self.min_count]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        if self.max_features is not None:
            kept = kept[: self.max_features]
        vocabulary = sorted(t for t, _ in kept)
        others = sorted(set(counter) - set(vocabulary))
        return {
            "vocabulary": np.array(vocabulary, dtype=str),
            "counts": np.array([counter[t] for t in vocabulary], dtype=np.int64),
            "_other_tokens": np.array(others, dtype=str),
            "_other_counts": np.array([counter[t] for t in others], dtype=np.int64),
        }

    def output_spec(self, X: Spec) -> Spec:
        return Spec((None,), np.int64)

    def transform(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 1:
            raise LayerInputError(f"expected one string or token list per observation; got shape {X.shape}")
        column = {t: j for j, t in enumerate(self.metadata["vocabulary"].tolist())}
        if self.sparse:
            return _sparse_counts(X, column)
        out = np.zeros((len(X), len(column)), dtype=np.int64)
        for i, value in enumerate(X.tolist()):
            for token in _tokens(value):
                j = column.get(token)
                if j is not None:
                    out[i, j] += 1
        return out

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The vocabulary, one token per column (as scikit-learn's ``CountVectorizer`` names
        them); known once fitted."""
        vocabulary = self.metadata.get("vocabulary")
        return None if vocabulary is None else [str(token) for token in vocabulary.tolist()]


def _sparse_counts(X: np.ndarray, column: dict[str, int]) -> Any:
    """The counts as a CSR matrix, built row by row from the tokens found (no dense array)."""
    from megatron.dependencies import require

    sparse = require("scipy.sparse", "CountVectorize(sparse=True)")
    indptr, indices = [0], []
    for value in X.tolist():
        found = [j for j in map(column.get, _tokens(value)) if j is not None]
        indices.extend(found)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.int64)
    matrix = sparse.csr_matrix((data, np.asarray(indices, dtype=np.int64), indptr), (len(X), len(column)))
    matrix.sum_duplicates()  # a token seen twice in a row counts 2
    return matrix


def _saved_counts(state: Mapping[str, Any]) -> Counter:
    """Every token count a state holds: the vocabulary's and those of the tokens left out."""
    counter: Counter = Counter()
    for tokens, counts in (("vocabulary", "counts"), ("_other_tokens", "_other_counts")):
        if tokens in state:
            counter.update(dict(zip(state[tokens].tolist(), state[counts].tolist())))
    return counter
