"""Merges of what two copies of a scikit-learn estimator learned, by estimator class.

A merge takes two fitted copies, ``a`` and ``b`` (or unfitted ones: a copy that learned
nothing merges as the identity), and returns a new estimator: the one ``partial_fit`` over
``a``'s rows and then ``b``'s would give, bit for bit (``"exact"``) or up to floating-point
rounding (``"rounding"``). It changes neither. The built-in ones cover ``StandardScaler``,
``MinMaxScaler``, ``MaxAbsScaler``, ``GaussianNB``, ``MultinomialNB``, ``BernoulliNB`` and
``ComplementNB``; :func:`register_merge` adds one for another class. An estimator's class must
be registered itself: a subclass may learn otherwise, so it does not inherit a merge.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.naive_bayes import BernoulliNB, ComplementNB, GaussianNB, MultinomialNB
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

from megatron.errors import ConfigError, LayerInputError
from megatron.layers.state import Exactness

__all__ = ["EstimatorMerge", "merge_for", "register_merge"]

Merge = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class EstimatorMerge:
    """How fitted copies of one estimator class merge (``function``), and how exactly."""

    exactness: Exactness
    function: Merge

    def merged(self, a: Any, b: Any) -> Any:
        """The estimator of ``a``'s rows and then ``b``'s: a copy of the one that learned
        anything when the other learned nothing, else ``function(a, b)``, for copies of one
        estimator (one class, the same parameters, as many features)."""
        if type(a) is not type(b) or _params(a) != _params(b):
            raise LayerInputError(f"cannot merge {a!r} with {b!r}: merges are of copies of one estimator")
        if not _fitted(b):
            return copy.deepcopy(a)
        if not _fitted(a):
            return copy.deepcopy(b)
        if a.n_features_in_ != b.n_features_in_:
            raise LayerInputError(
                f"cannot merge a {type(a).__name__} fitted on {a.n_features_in_} features with one "
                f"fitted on {b.n_features_in_}"
            )
        with warnings.catch_warnings():  # a feature with no value: warned of when it was fitted
            warnings.simplefilter("ignore", RuntimeWarning)
            return self.function(a, b)


_MERGES: dict[type, EstimatorMerge] = {}


def register_merge(estimator_class: type, exactness: Exactness, merge: Merge) -> None:
    """Merge fitted copies of ``estimator_class`` with ``merge(a, b)``, which returns a new
    estimator and changes neither (both are fitted, of that class, with the same parameters
    and number of features: :meth:`EstimatorMerge.merged` checks). ``exactness`` says how it
    compares with ``partial_fit`` over both parts: ``"exact"`` or ``"rounding"``."""
    if exactness not in ("exact", "rounding"):
        raise ConfigError(f"register_merge needs exactness 'exact' or 'rounding'; got {exactness!r}")
    _MERGES[estimator_class] = EstimatorMerge(exactness, merge)


def merge_for(estimator: Any) -> EstimatorMerge | None:
    """The merge registered for ``estimator``'s own class, or ``None``."""
    return _MERGES.get(type(estimator))


def _fitted(estimator: Any) -> bool:
    """Whether it learned anything: scikit-learn's test, an attribute ending in ``_``."""
    return any(name.endswith("_") and not name.startswith("__") for name in vars(estimator))


def _params(estimator: Any) -> str:
    return repr(sorted(estimator.get_params(deep=False).items()))


# -- scalers -------------------------------------------------------------------------------------
def _extremes_merge(rows: Callable[[Any], np.ndarray]) -> Merge:
    """A scaler of minima and maxima: ``a``'s copy given ``rows(b)``, a batch of a row or two
    with ``b``'s extremes, which sets each extreme and every parameter derived from them as
    ``partial_fit`` of ``b``'s rows would, exactly; then the count of rows seen is made right."""

    def merge(a: Any, b: Any) -> Any:
        merged = copy.deepcopy(a)
        merged.partial_fit(rows(b))
        merged.n_samples_seen_ = a.n_samples_seen_ + b.n_samples_seen_
        return merged

    return merge


def _merge_standard_scaler(a: Any, b: Any) -> Any:
    """Chan et al.'s parallel moments, in the terms of scikit-learn's own update
    (``_incremental_mean_and_var``), with the scale derived as ``partial_fit`` derives it."""
    from sklearn.preprocessing._data import _handle_zeros_in_scale, _is_constant_feature

    merged = copy.deepcopy(a)
    n_features = a.n_features_in_
    moments = a.mean_ is not None or a.var_ is not None
    dtype = np.float64 if moments else np.int64
    n_a = np.broadcast_to(np.asarray(a.n_samples_seen_), (n_features,)).astype(dtype)
    n_b = np.broadcast_to(np.asarray(b.n_samples_seen_), (n_features,)).astype(dtype)
    n = n_a + n_b
    if moments:
        last_sum = a.mean_ * n_a
        new_sum = np.where(n_b == 0, 0.0, b.mean_ * n_b)  # a part with no value of a feature adds none
        merged.mean_ = (last_sum + new_sum) / n
        if a.var_ is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                last_over_new = n_a / n_b
                unnormalized = (
                    a.var_ * n_a
                    + b.var_ * n_b
                    + last_over_new / n * (last_sum / last_over_new - new_sum) ** 2
                )
            unnormalized[n_a == 0] = (b.var_ * n_b)[n_a == 0]
            merged.var_ = unnormalized / n
    merged.n_samples_seen_ = n[0] if n.max() == n.min() else n
    if a.with_std:
        constant = _is_constant_feature(merged.var_, merged.mean_, merged.n_samples_seen_)
        merged.scale_ = _handle_zeros_in_scale(np.sqrt(merged.var_), copy=False, constant_mask=constant)
    return merged


# -- naive Bayes ---------------------------------------------------------------------------------
def _aligned(a: Any, b: Any) -> np.ndarray:
    """The positions of ``b``'s classes among ``a``'s, which must hold them all (as
    ``partial_fit`` of ``b``'s rows refuses a class the first batch did not declare)."""
    positions = np.searchsorted(a.classes_, b.classes_)
    inside = positions < len(a.classes_)
    if not inside.all() or not np.array_equal(
        a.classes_[np.minimum(positions, len(a.classes_) - 1)], b.classes_
    ):
        raise LayerInputError(
            f"cannot merge a {type(a).__name__} of classes {a.classes_.tolist()} with one that learned "
            f"classes {b.classes_.tolist()}: give the layer classes= so that every copy knows them all"
        )
    return positions


def _merge_gaussian_nb(a: Any, b: Any) -> Any:
    """Per class, the moments of both parts by the update ``partial_fit`` applies to a batch
    (``GaussianNB._update_mean_variance``), with its variance smoothing: the last part's
    epsilon, taken off the first part's variances before the update and added after."""
    merged = copy.deepcopy(a)
    at = _aligned(a, b)
    n_a = a.class_count_[at][:, None]
    n_b = b.class_count_[:, None]
    mu_a, var_a = a.theta_[at], a.var_[at] - b.epsilon_
    mu_b, var_b = b.theta_, b.var_ - b.epsilon_
    n = n_a + n_b
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = (n_b * mu_b + n_a * mu_a) / n
        var = (n_a * var_a + n_b * var_b + (n_b * n_a / n) * (mu_a - mu_b) ** 2) / n
    # a class without rows in b keeps a's moments; one without rows in a takes b's
    mu = np.where(n_b == 0, mu_a, np.where(n_a == 0, mu_b, mu))
    var = np.where(n_b == 0, var_a, np.where(n_a == 0, var_b, var))
    merged.var_ = a.var_ - b.epsilon_
    merged.theta_[at], merged.var_[at] = mu, var
    merged.var_ += b.epsilon_
    merged.epsilon_ = b.epsilon_
    merged.class_count_[at] += b.class_count_
    if a.priors is None:
        merged.class_prior_ = merged.class_count_ / merged.class_count_.sum()
    return merged


def _merge_discrete_nb(a: Any, b: Any) -> Any:
    """The counts of both parts added, and the smoothed parameters recomputed from them by
    the estimator's own methods, as ``partial_fit`` recomputes them after every batch."""
    merged = copy.deepcopy(a)
    at = _aligned(a, b)
    merged.class_count_[at] += b.class_count_
    merged.feature_count_[at] += b.feature_count_
    if isinstance(merged, ComplementNB):
        merged.feature_all_ = merged.feature_count_.sum(axis=0)
    merged._update_feature_log_prob(merged._check_alpha())
    merged._update_class_log_prior(class_prior=merged.class_prior)
    return merged


register_merge(StandardScaler, "rounding", _merge_standard_scaler)
register_merge(MinMaxScaler, "exact", _extremes_merge(lambda b: np.stack([b.data_min_, b.data_max_])))
register_merge(MaxAbsScaler, "exact", _extremes_merge(lambda b: b.max_abs_[None, :]))
register_merge(GaussianNB, "rounding", _merge_gaussian_nb)
for _class in (MultinomialNB, BernoulliNB, ComplementNB):
    register_merge(_class, "exact", _merge_discrete_nb)
