"""Encoding layers: categorical values as one-hot columns, one per value or label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from megatron.errors import ConfigError, LayerInputError
from megatron.layers import checks
from megatron.layers.base import StatefulLayer
from megatron.layers.naming import FeatureNames, prefixed
from megatron.layers.state import Exactness
from megatron.specs import Spec


class OneHotRange(StatefulLayer):
    """One-hot encode integers in ``[min_val, max_val]``: one column per value.

    A bound that is not given is learned in fit (``partial_fit`` and merges are exact). Values
    outside the range give all-zero rows, or an error with ``strict=True``.

    Example::

        ohe_labels = OneHotRange(max_val=1)(labels)   # labels 0/1 -> (n, 2)
    """

    def __init__(
        self,
        min_val: int | None = None,
        max_val: int | None = None,
        strict: bool = False,
        dtype: str = "float32",
    ) -> None:
        if min_val is not None and max_val is not None and min_val > max_val:
            raise ConfigError(f"OneHotRange needs min_val <= max_val; got {min_val} and {max_val}")
        self.min_val = min_val
        self.max_val = max_val
        self.strict = strict
        self.dtype = np.dtype(dtype).name
        if self._known():
            self.fitted = True

    fixed_shape = False  # one range of values, whatever the shape

    def _known(self) -> bool:
        return self.min_val is not None and self.max_val is not None

    def reset(self) -> None:
        super().reset()
        self.fitted = self._known()

    def partial_fit(self, X: np.ndarray) -> None:
        X = self._integers(checks.nonempty(X, "partial_fit"))
        self.metadata.update(self._extremes(self.metadata, {"min": X.min(), "max": X.max()}))

    def merge_exactness(self) -> Exactness:
        return "exact"

    def merge_states(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        """The lowest and the highest value of both states, as ``partial_fit`` keeps them."""
        return self._extremes(a, b)

    @staticmethod
    def _extremes(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        if "min" not in a or "min" not in b:  # one part learned nothing
            learned = b if "min" not in a else a
            return {key: np.asarray(learned[key]) for key in ("min", "max") if key in learned}
        return {"min": np.asarray(min(a["min"], b["min"])), "max": np.asarray(max(a["max"], b["max"]))}

    def _range(self) -> tuple[int, int]:
        low = self.min_val if self.min_val is not None else int(self.metadata["min"])
        high = self.max_val if self.max_val is not None else int(self.metadata["max"])
        return low, high

    @staticmethod
    def _integers(X: np.ndarray) -> np.ndarray:
        checks.numeric(X)
        if X.dtype.kind == "f":
            if not np.all(np.isfinite(X)) or not np.all(np.round(X) == X):
                raise LayerInputError("expected whole numbers to one-hot encode; got fractions or NaN")
            X = X.astype(np.int64)
        return X

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        width = self.max_val - self.min_val + 1 if self._known() else None  # type: ignore[operator]
        return Spec(None if X.shape is None else (*X.shape, width), self.dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = self._integers(X)
        low, high = self._range()
        offset = X.astype(np.int64) - low
        inside = (offset >= 0) & (offset <= high - low)
        if self.strict and not inside.all():
            bad = X[~inside]
            raise LayerInputError(f"expected values in [{low}, {high}]; got {bad[:5].tolist()}")
        out = np.zeros((*X.shape, high - low + 1), dtype=self.dtype)
        np.put_along_axis(out, np.where(inside, offset, 0)[..., None], 1, axis=-1)
        out[~inside] = 0
        return out

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """``<layer>__<feature>_<value>`` per value of the range (``<layer>__<value>`` for an input
        that is not one named feature); not known before a range to learn is learned."""
        if not self._known() and "min" not in self.metadata:
            return None
        low, high = self._range()
        return prefixed(self.name, range(low, high + 1), input_features[0] if input_features else None)

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        """The value of each row's largest column (its 1, or a model's most probable value); a
        row holding NaN or only zeros is refused."""
        return _decoded(Y, np.arange(self._range()[0], self._range()[1] + 1))


class OneHotLabels(StatefulLayer):
    """One-hot encode categorical labels of any type: one column per known label, in sorted
    order. ``labels`` fixes them; otherwise they are learned in fit (``partial_fit`` and merges
    are exact). Unknown labels give all-zero rows, or an error with ``strict=True``.

    Example::

        colours = OneHotLabels()(colour_names)   # 'red'/'green'/'blue' -> (n, 3)
    """

    def __init__(
        self, labels: Sequence[Any] | None = None, strict: bool = False, dtype: str = "float32"
    ) -> None:
        self.labels = None if labels is None else list(labels)
        self.strict = strict
        self.dtype = np.dtype(dtype).name
        if self.labels is not None:
            self.metadata["labels"] = np.unique(np.asarray(self.labels))
            self.fitted = True

    fixed_shape = False  # one set of labels, whatever the shape

    def reset(self) -> None:
        super().reset()
        if self.labels is not None:  # the labels given are the state: a new list is seen at the next fit
            self.metadata["labels"] = np.unique(np.asarray(self.labels))
            self.fitted = True

    def partial_fit(self, X: np.ndarray) -> None:
        if self.labels is not None:
            return
        checks.nonempty(X, "partial_fit")
        if X.dtype.kind in "fc" and np.isnan(X).any():
            raise LayerInputError(
                f"cannot learn NaN as a label ({int(np.isnan(X).sum())} in the batch): it equals no "
                "value, so it would never be encoded; fill missing labels first (Impute)"
            )
        self.metadata.update(self._union(self.metadata, {"labels": np.unique(X)}))

    def merge_exactness(self) -> Exactness:
        return "exact"

    def merge_states(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        """The labels of both states, sorted as ``partial_fit`` keeps them (those of ``labels``,
        when given: nothing is learned then)."""
        if self.labels is not None:
            return {"labels": a["labels"]} if "labels" in a else {}
        return self._union(a, b)

    @staticmethod
    def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        if "labels" not in a or "labels" not in b:  # one part learned nothing
            learned = b if "labels" not in a else a
            return {"labels": learned["labels"]} if "labels" in learned else {}
        return {"labels": np.union1d(a["labels"], b["labels"])}

    def output_spec(self, X: Spec) -> Spec:
        width = len(set(self.labels)) if self.labels is not None else None
        return Spec(None if X.shape is None else (*X.shape, width), self.dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        labels = self.metadata["labels"]
        position = np.searchsorted(labels, X)
        inside = (position < len(labels)) & (labels[np.minimum(position, len(labels) - 1)] == X)
        if self.strict and not inside.all():
            raise LayerInputError(
                f"unknown labels {np.unique(X[~inside])[:5].tolist()}; known: {labels.tolist()}"
            )
        out = np.zeros((*X.shape, len(labels)), dtype=self.dtype)
        np.put_along_axis(out, np.where(inside, position, 0)[..., None], 1, axis=-1)
        out[~inside] = 0
        return out

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """``<layer>__<feature>_<label>`` per label (``<layer>__<label>`` for an input that is not
        one named feature); not known before labels to learn are learned."""
        if "labels" not in self.metadata:
            return None
        return prefixed(self.name, self.metadata["labels"], input_features[0] if input_features else None)

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        """The label of each row's largest column (its 1, or a model's most probable label); a
        row holding NaN or only zeros is refused."""
        return _decoded(Y, self.metadata["labels"])


def _decoded(Y: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` at the largest column of each row of ``Y``'s last axis. A row holding NaN (a
    model that gave no answer) is refused rather than decoded, as numpy's argmax would pick the
    NaN's column; so is a row of zeros (a value that was outside what the layer knows)."""
    checks.numeric(Y)
    if Y.ndim < 2 or Y.shape[-1] != len(values):
        raise LayerInputError(f"expected a last axis of {len(values)} columns to decode; got shape {Y.shape}")
    if Y.dtype.kind in "fc":
        missing = np.isnan(Y).any(axis=-1)
        if missing.any():
            rows = np.flatnonzero(missing.reshape(len(Y), -1).any(axis=-1))
            more = f" ({len(rows)} rows in all)" if len(rows) > 5 else ""
            raise LayerInputError(
                f"rows {rows[:5].tolist()}{more} hold NaN: a NaN score is neither larger nor smaller than "
                "another, so a row holding one cannot be decoded (the model that gave it failed on it)"
            )
    unset = ~(Y != 0).any(axis=-1)
    if unset.any():
        rows = np.flatnonzero(unset.reshape(len(Y), -1).any(axis=-1))
        raise LayerInputError(
            f"rows {rows[:5].tolist()} have no non-zero column: they encoded a value outside the known "
            "ones, which cannot be decoded"
        )
    return values[np.argmax(Y, axis=-1)]
