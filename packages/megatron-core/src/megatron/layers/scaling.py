"""Scaling layers: rows to shares (``Normalize``), and features to zero mean and unit variance
(``Whiten``) or to a range (``MinMaxScale``) learned in fit."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from megatron.errors import ConfigError, LayerInputError
from megatron.layers import checks
from megatron.layers.affine import Affine, fits, per_feature
from megatron.layers.base import StatefulLayer, StatelessLayer
from megatron.layers.naming import FeatureNames, passed_through
from megatron.layers.state import Exactness
from megatron.specs import Spec


class Normalize(StatelessLayer):
    """Scale each row (the last axis) to sum to 1; rows summing to 0 stay 0.

    Example::

        shares = Normalize()(counts, 'shares')
    """

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return Spec(X.shape, None if X.dtype is None else (X.dtype if X.dtype.kind == "f" else np.float64))

    def transform(self, X: np.ndarray) -> np.ndarray:
        checks.numeric(X)
        dtype = checks.floating(X)
        with np.errstate(over="ignore"):
            totals = X.sum(axis=-1, keepdims=True, dtype=dtype) if X.ndim > 1 else X.astype(dtype, copy=False)
        infinite = np.isinf(totals)
        if infinite.any():
            row = int(np.argwhere(infinite)[0][0])
            raise LayerInputError(
                f"row {row} sums to {totals.flat[np.flatnonzero(infinite)[0]]} (an infinite value, or "
                f"values whose sum overflows {dtype}), so it has no shares to normalize to"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.divide(X, totals, dtype=dtype)
        empty = totals == 0
        if empty.any():
            out[np.broadcast_to(empty, out.shape)] = 0
        return out

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each value keeps its feature."""
        return passed_through(input_features)


_IGNORE_NAN_HINT = f"{checks.MISSING_HINT}, or leave NaN out of the statistics with ignore_nan=True"


def combined_moments(a: Mapping[str, Any], b: Mapping[str, Any], ignore_nan: bool = False) -> dict[str, Any]:
    """The moments of the rows of ``a`` and then those of ``b``, each ``{'n', 'mean', 'm2'}``
    (per feature: the count, the mean and the sum of squared deviations; ``{}`` when nothing
    was learned), by the parallel formula of Chan, Golub and LeVeque. With
    ``ignore_nan`` the counts are per feature and may be 0."""
    if "n" not in a or "n" not in b:  # one part learned nothing
        learned = b if "n" not in a else a
        return {key: learned[key] for key in ("n", "mean", "m2") if key in learned}
    n_a, mean_a, n_b, mean_b = a["n"], a["mean"], b["n"], b["mean"]
    n = n_a + n_b
    delta = mean_b - mean_a
    if ignore_nan:
        share = np.divide(n_b, np.maximum(n, 1))
        mean = (mean_a + delta * share).astype(mean_a.dtype, copy=False)
        m2 = (a["m2"] + b["m2"] + delta**2 * (n_a * share)).astype(mean_a.dtype, copy=False)
    else:
        mean = mean_a + delta * (n_b / n)
        m2 = a["m2"] + b["m2"] + delta**2 * (n_a * n_b / n)
    return {"n": np.asarray(n), "mean": mean, "m2": m2}


class Whiten(StatefulLayer):
    """Standard scaling: zero mean and unit variance per feature, learned in fit.

    ``partial_fit`` merges running moments (Chan et al.'s parallel formula), so fitting batch
    by batch gives one fit on all the data, up to rounding; states fitted on separate parts
    merge the same way (``merge_states``). Constant features are centred and left unscaled. Fit
    data must be finite: a NaN or infinity is refused, naming the feature, since it would make
    the feature NaN for every row. With ``ignore_nan=True``, NaN values are left out of each
    feature's statistics (as scikit-learn's ``StandardScaler`` does) and stay NaN in the output.

    Example::

        scaled = Whiten()(features, 'scaled')
    """

    def __init__(self, ignore_nan: bool = False) -> None:
        self.ignore_nan = ignore_nan

    def partial_fit(self, X: np.ndarray) -> None:
        checks.nonempty(checks.numeric(X), "partial_fit")
        X = X.astype(checks.floating(X), copy=False)
        checks.finite(X, allow_nan=self.ignore_nan, hint=_IGNORE_NAN_HINT)
        if self.ignore_nan:
            present = ~np.isnan(X)
            n_b = present.sum(axis=0)
            mean_b = np.divide(np.where(present, X, 0).sum(axis=0), np.maximum(n_b, 1), dtype=X.dtype)
            centred = np.where(present, X - mean_b, 0)
        else:
            n_b = len(X)
            mean_b = X.mean(axis=0)
            centred = X - mean_b
        batch = {"n": np.asarray(n_b), "mean": mean_b, "m2": np.einsum("i...,i...->...", centred, centred)}
        self.metadata.update(_with_scale(combined_moments(self.metadata, batch, self.ignore_nan)))

    def merge_exactness(self) -> Exactness:
        return "rounding"

    def merge_states(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        """Chan et al.'s parallel moments, as ``partial_fit`` merges each batch."""
        return _with_scale(combined_moments(a, b, self.ignore_nan))

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return Spec(X.shape, None if X.dtype is None else (X.dtype if X.dtype.kind == "f" else np.float64))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self._whitened(checks.numeric(X), None)

    fresh_output = True

    def transform_into(self, out: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``transform(X)`` written into ``out`` where it fits (else a new array)."""
        self._check_fitted_shape((X,), "transform")
        fitting = fits(out, checks.numeric(X), checks.floating(X))
        return self._whitened(X, out if fitting else None)

    def _whitened(self, X: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        out = np.subtract(X, self.metadata["mean"], out=out, dtype=checks.floating(X))
        out /= self.metadata["scale"]
        return out

    def affine(self) -> Affine | None:
        """``x * (1 / scale) - mean / scale``, for statistics learned per feature."""
        mean, scale = self.metadata.get("mean"), self.metadata.get("scale")
        if mean is None or scale is None or not per_feature(mean, scale):
            return None
        return Affine.scaling(1 / scale, -mean / scale)

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        """Values in the original units: ``Y * scale + mean`` (NaN stays NaN)."""
        checks.numeric(Y)
        metadata = self.metadata
        out = np.multiply(Y, metadata["scale"], dtype=checks.floating(Y))
        out += metadata["mean"]
        return out


def _with_scale(moments: dict[str, Any]) -> dict[str, Any]:
    """``moments`` and the scale they give (the standard deviation, 1 for a constant feature)."""
    if moments:
        with np.errstate(invalid="ignore", divide="ignore"):  # a feature with no values at all
            std = np.sqrt(moments["m2"] / moments["n"])
        moments["scale"] = np.where(std == 0, 1, std).astype(moments["mean"].dtype)
    return moments


class MinMaxScale(StatefulLayer):
    """Scale each feature to ``feature_range`` (default [0, 1]) from minima and maxima learned
    in fit; ``partial_fit`` and merges of states fitted on separate parts are exact. Constant
    features map to the range's lower end. Fit data must be finite (an infinity would map the
    feature to a constant); with ``ignore_nan=True``, NaN values are left out of the minima
    and maxima and stay NaN in the output.

    Example::

        scaled = MinMaxScale()(features, 'scaled')
    """

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0), ignore_nan: bool = False) -> None:
        low, high = feature_range
        if not low < high:
            raise ConfigError(
                f"MinMaxScale needs feature_range (low, high) with low < high; got {feature_range}"
            )
        self.feature_range = (low, high)
        self.ignore_nan = ignore_nan

    def partial_fit(self, X: np.ndarray) -> None:
        checks.nonempty(checks.numeric(X), "partial_fit")
        checks.finite(X, allow_nan=self.ignore_nan, hint=_IGNORE_NAN_HINT)
        if self.ignore_nan and X.dtype.kind == "f":
            with warnings.catch_warnings():  # a feature with no values in this batch stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
        else:
            low, high = X.min(axis=0), X.max(axis=0)
        self.metadata.update(self._extremes(self.metadata, {"min": low, "max": high}))

    def merge_exactness(self) -> Exactness:
        return "exact"

    def merge_states(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        """The minima of both minima and the maxima of both maxima, as ``partial_fit`` keeps them."""
        return self._extremes(a, b)

    def _extremes(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        if "min" not in a or "min" not in b:  # one part learned nothing
            learned = b if "min" not in a else a
            return {key: learned[key] for key in ("min", "max") if key in learned}
        minimum, maximum = (np.fmin, np.fmax) if self.ignore_nan else (np.minimum, np.maximum)
        return {"min": minimum(a["min"], b["min"]), "max": maximum(a["max"], b["max"])}

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return Spec(X.shape, None if X.dtype is None else (X.dtype if X.dtype.kind == "f" else np.float64))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self._scaled(checks.numeric(X), None)

    fresh_output = True

    def transform_into(self, out: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``transform(X)`` written into ``out`` where it fits (else a new array)."""
        self._check_fitted_shape((X,), "transform")
        fitting = fits(out, checks.numeric(X), checks.floating(X))
        return self._scaled(X, out if fitting else None)

    def _scaled(self, X: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        low, high = self.feature_range
        span = self.metadata["max"] - self.metadata["min"]
        out = np.subtract(X, self.metadata["min"], out=out, dtype=checks.floating(X))
        out *= (high - low) / np.where(span == 0, 1, span)
        out += low
        return out

    def affine(self) -> Affine | None:
        """``x * scale + (low - min * scale)``, for extremes learned per feature."""
        minimum, maximum = self.metadata.get("min"), self.metadata.get("max")
        if minimum is None or maximum is None or not per_feature(minimum, maximum):
            return None
        low, high = self.feature_range
        span = np.asarray(maximum, dtype=np.float64) - minimum
        scale = (high - low) / np.where(span == 0, 1, span)
        return Affine.scaling(scale, low - minimum * scale)

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        """Values in the original units: ``(Y - low) / scale + min``; a constant feature comes
        back as its value."""
        checks.numeric(Y)
        low, high = self.feature_range
        span = self.metadata["max"] - self.metadata["min"]
        scale = (high - low) / np.where(span == 0, 1, span)
        out = np.subtract(Y, low, dtype=checks.floating(Y))
        out /= scale
        out += self.metadata["min"]
        return out
