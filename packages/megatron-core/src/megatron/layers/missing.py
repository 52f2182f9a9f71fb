"""Missing-data layers: fixed replacements, learned fill values, and missing indicators."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from megatron.errors import ConfigError, LayerInputError
from megatron.layers import checks
from megatron.layers.base import StatefulLayer, StatelessLayer
from megatron.layers.naming import FeatureNames, passed_through
from megatron.layers.state import Exactness
from megatron.specs import Spec

STRATEGIES = ("mean", "median", "most_frequent", "constant")
_EXACTNESS: dict[str, Exactness] = {"mean": "rounding", "most_frequent": "exact", "constant": "exact"}


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | np.floating) and np.isnan(value)


def missing_mask(X: np.ndarray, missing: Any = np.nan) -> np.ndarray:
    """Where ``X`` holds ``missing`` (NaN and None both count as NaN in object arrays)."""
    if _is_nan(missing) or missing is None:
        if X.dtype.kind == "f" or X.dtype.kind == "c":
            return np.isnan(X)
        if X.dtype.kind == "O":
            return np.frompyfunc(lambda v: v is None or _is_nan(v), 1, 1)(X).astype(bool)
        return np.zeros(X.shape, dtype=bool)  # ints, bools and str cannot hold NaN
    if X.dtype.kind in "biuf" and not isinstance(missing, int | float | np.number):
        return np.zeros(X.shape, dtype=bool)
    return np.asarray(missing == X, dtype=bool)


def _scalar(value: Any) -> bool:
    """One value (a number, a string, None...), not a sequence or a mapping."""
    return isinstance(value, str | bytes) or (np.ndim(value) == 0 and not isinstance(value, dict | set))


def _fill(X: np.ndarray, mask: np.ndarray, value: Any) -> np.ndarray:
    """A copy of ``X`` with ``value`` where ``mask``; str arrays widen so nothing is cut off."""
    dtype = X.dtype
    if dtype.kind in "US" or (dtype.kind in "biuf" and isinstance(value, str)):
        dtype = np.result_type(X.dtype, np.asarray(value).dtype) if dtype.kind in "US" else np.dtype(object)
    elif dtype.kind in "biu" and isinstance(value, float) and not float(value).is_integer():
        dtype = np.dtype(np.float64)
    if dtype.kind in "biufc" and np.ndim(value) == 0:  # one vectorised pass for numbers
        return np.where(mask, np.asarray(value, dtype=dtype), X).astype(dtype, copy=False)
    out = X.astype(dtype, copy=True)
    out[mask] = value
    return out


class Impute(StatelessLayer):
    """Replace given values: ``mapping`` maps a value to find (``np.nan`` for NaN and None, or
    any string or number) to its replacement. The input is never modified; string arrays
    widen to fit longer replacements.

    Example::

        filled = Impute({np.nan: 0.0, 'unknown': 'other'})(column, 'filled')
    """

    def __init__(self, mapping: dict[Any, Any]) -> None:
        if not isinstance(mapping, dict) or not mapping:
            raise ConfigError(f"Impute needs a non-empty dict of value -> replacement; got {mapping!r}")
        for missing, replacement in mapping.items():
            if not _scalar(replacement):
                raise ConfigError(
                    f"Impute replaces each value with one value; the replacement for {missing!r} is "
                    f"{replacement!r} ({type(replacement).__name__}). Per-feature fills are SimpleImpute's "
                    "job; to fill with a sequence, wrap it in a Lambda."
                )
        self.mapping = mapping

    def output_spec(self, X: Spec) -> Spec:
        return Spec(X.shape, None)

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = X
        for missing, replacement in self.mapping.items():
            mask = missing_mask(X, missing)
            if mask.any():
                out = _fill(out, mask, replacement)
        return out.copy() if out is X else out

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)


class SimpleImpute(StatefulLayer):
    """Fill missing values (``missing_values``, NaN by default) per feature with a value learned
    in fit: the ``'mean'``, ``'median'``, ``'most_frequent'`` value, or ``fill_value`` for
    ``'constant'``. ``partial_fit`` is exact for every strategy but the median, and states
    fitted on separate parts merge (``merge_states``) for every strategy but the median: the
    most frequent value exactly, the mean up to rounding.

    Example::

        filled = SimpleImpute(strategy='median')(features, 'filled')
    """

    def __init__(self, strategy: str = "mean", fill_value: Any = None, missing_values: Any = np.nan) -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(f"SimpleImpute strategy must be one of {STRATEGIES}; got {strategy!r}")
        if strategy == "constant" and fill_value is None:
            raise ConfigError("SimpleImpute(strategy='constant') needs a fill_value")
        self.strategy = strategy
        self.fill_value = fill_value
        self.missing_values = missing_values
        if strategy == "constant":
            self.metadata["fill"] = np.asarray(fill_value)
            self.fitted = True

    def supports_partial_fit(self) -> bool:
        return self.strategy != "median"

    def reset(self) -> None:
        super().reset()
        if self.strategy == "constant":  # the fill given is the state: a new one is seen at the next fit
            self.metadata["fill"] = np.asarray(self.fill_value)
            self.fitted = True

    def fit(self, X: np.ndarray) -> None:
        if self.strategy == "median":
            checks.nonempty(checks.numeric(X))
            mask = missing_mask(X, self.missing_values)
            _finite_where_present(X, mask)
            data = np.where(mask, np.nan, X.astype(float))
            self.metadata["fill"] = _nan_or(np.nanmedian, data)
            return
        super().fit(X)

    def partial_fit(self, X: np.ndarray) -> None:
        if self.strategy == "median":
            raise LayerInputError("the median cannot be learned batch by batch; use fit()")
        checks.nonempty(X, "partial_fit")
        if self.strategy == "constant":
            return
        mask = missing_mask(X, self.missing_values)
        m = self.metadata
        if self.strategy == "mean":
            checks.numeric(X)
            _finite_where_present(X, mask)
            batch = {"sum": np.where(mask, 0, X).astype(float).sum(axis=0), "count": (~mask).sum(axis=0)}
            m.update(_summed(m, batch))
            return
        # most_frequent: exact counts per feature position, merged across batches
        flat_values = X.reshape(len(X), -1)
        flat_mask = mask.reshape(len(X), -1)
        counts = [
            Counter(v.item() if isinstance(v, np.generic) else v for v in flat_values[~flat_mask[:, j], j])
            for j in range(flat_values.shape[1])
        ]
        m.update(self._counted(m.get("_counts", [{}] * len(counts)), counts, X.dtype, X.shape[1:]))

    def merge_exactness(self) -> Exactness | None:
        """Sums and counts merge (the mean, up to rounding), counts of values merge exactly (the
        most frequent value); the median does not merge."""
        return _EXACTNESS.get(self.strategy)

    def merge_states(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        """The sums and counts (mean) or the counts of values (most frequent) of both states
        added, and the fill value they give, as ``partial_fit`` over both parts keeps them."""
        if self.strategy == "constant":  # nothing is learned
            return {"fill": a["fill"]} if "fill" in a else {}
        if self.strategy == "mean":
            return _summed(a, b)
        if "_counts" not in b:  # nothing learned after a: a as it is
            a, b = {}, a
        if "_counts" not in b:
            return {}
        # the dtype of the last part's values (a state saved before it was kept: its fill's)
        dtype = b.get("_dtype", np.asarray(b["fill"]).dtype)
        return self._counted(
            a.get("_counts", [{}] * len(b["_counts"])), b["_counts"], dtype, np.shape(b["fill"])
        )

    def _counted(
        self,
        counts: Sequence[Mapping[Any, int]],
        more: Sequence[Mapping[Any, int]],
        dtype: np.dtype,
        shape: tuple[int, ...],
    ) -> dict[str, Any]:
        """The state of ``counts`` of values per feature position and ``more``: the counts added
        (a reloaded state's come back as plain dicts) and the most frequent values, of
        ``dtype`` where every feature has one (one with no value keeps its missing value)."""
        added = [Counter(c) for c in counts]
        for counter, new in zip(added, more):
            counter.update(new)
        fills = [_most_frequent(c) if c else self.missing_values for c in added]
        fill = np.array(fills, dtype=dtype) if all(added) else np.array(fills)
        return {"_counts": added, "_dtype": dtype, "fill": fill.reshape(shape)}

    def output_spec(self, X: Spec) -> Spec:
        return Spec(X.shape, None)

    def transform(self, X: np.ndarray) -> np.ndarray:
        mask = missing_mask(X, self.missing_values)
        fill = np.broadcast_to(self.metadata["fill"], X.shape)
        if X.dtype.kind in "biuf" and fill.dtype.kind in "biuf":
            return np.where(mask, fill, X)
        if X.dtype.kind in "US":
            out = X.astype(np.result_type(X.dtype, fill.dtype) if fill.dtype.kind in "US" else object)
        elif X.dtype.kind in "biu" and fill.dtype.kind == "f":
            out = X.astype(np.float64)
        else:
            out = X.copy()
        out[mask] = fill[mask]
        return out

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)


def _summed(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The sums and counts of present values per feature of both states, and their means
    (NaN for a feature with no value at all)."""
    if "sum" not in a and "sum" not in b:
        return {}
    total, count = a.get("sum", 0) + b.get("sum", 0), a.get("count", 0) + b.get("count", 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fill = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return {"sum": total, "count": count, "fill": fill}


def _finite_where_present(X: np.ndarray, mask: np.ndarray) -> None:
    """Refuse a NaN or infinity that is not a missing value: it would become the fill value."""
    if X.dtype.kind in "fc":
        checks.finite(
            np.where(mask, 0, X),
            "learn a fill value from",
            hint="mark it missing with missing_values=, or clip it first",
        )


def _most_frequent(counter: Counter) -> Any:
    """The most frequent value; the smallest of those tied, as scikit-learn's ``SimpleImputer``
    (by their text where the values cannot be compared)."""
    top = max(counter.values())
    tied = [value for value, count in counter.items() if count == top]
    try:
        return min(tied)
    except TypeError:
        return min(tied, key=str)


def _nan_or(function: Any, data: np.ndarray) -> np.ndarray:
    """``function(data, axis=0)``, NaN (without a warning) for features that are all missing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(data, axis=0)


class MissingIndicator(StatelessLayer):
    """A boolean array, True where the input holds ``missing_values`` (NaN/None by default).

    Example::

        was_missing = MissingIndicator()(column, 'was_missing')
    """

    def __init__(self, missing_values: Any = np.nan) -> None:
        self.missing_values = missing_values

    def output_spec(self, X: Spec) -> Spec:
        return Spec(X.shape, np.bool_)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return missing_mask(X, self.missing_values)

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)
