"""Fitted scikit-learn estimators as affine maps, so that a pipeline folds them with the
affine layers around them (``Sklearn.affine``, see ``megatron.layers.affine``).

- ``StandardScaler.transform``: ``x / scale_ - mean_ / scale_`` (element-wise);
- ``PCA.transform`` (``whiten`` included) and ``TruncatedSVD.transform``: a projection;
- a linear model's ``decision_function`` (linear classifiers: logistic regression, linear
  SVMs, ridge, SGD, perceptron) and a linear regressor's ``predict``: ``x @ coef_.T + intercept_``.

Everything else (another class, a subclass that overrides the method, an unfitted or sparse
fit) is not affine here, and runs as it is. These estimators refuse non-finite input, so their
maps say ``finite_only``: a folded chain that meets one runs the estimators, which raise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from megatron.layers.affine import Affine


def affine_of(estimator: Any, method: str) -> Affine | None:
    """The fitted ``estimator``'s ``method`` as an affine map of its input, or None."""
    try:
        if method == "transform":
            return _transform_map(estimator)
        if method == "decision_function" or (method == "predict" and _linear_regressor(estimator)):
            return _linear_map(estimator, method)
    except (AttributeError, TypeError, ValueError):  # not fitted, or fitted on something else
        return None
    return None


def _own(estimator: Any, cls: type, method: str) -> bool:
    """``estimator`` is a ``cls`` whose ``method`` is ``cls``'s own (not overridden below it)."""
    if not isinstance(estimator, cls):
        return False
    owner = next((c for c in type(estimator).__mro__ if method in c.__dict__), None)
    return owner is not None and (owner is cls or not issubclass(owner, cls))


def _transform_map(estimator: Any) -> Affine | None:
    from sklearn.decomposition import PCA, TruncatedSVD
    from sklearn.preprocessing import StandardScaler

    if _own(estimator, StandardScaler, "transform"):
        mean = estimator.mean_ if estimator.with_mean else 0.0
        scale = estimator.scale_ if estimator.with_std else 1.0
        if mean is None or scale is None:
            return None
        return Affine.scaling(1 / np.asarray(scale), -np.asarray(mean) / scale, finite_only=True)
    if _own(estimator, PCA, "transform"):
        components = np.asarray(estimator.components_, dtype=np.float64).T
        shift = -np.asarray(estimator.mean_, dtype=np.float64) @ components
        if estimator.whiten:
            scale = np.sqrt(np.asarray(estimator.explained_variance_, dtype=np.float64))
            scale[scale < np.finfo(estimator.explained_variance_.dtype).eps] = np.finfo(
                estimator.explained_variance_.dtype
            ).eps
            components, shift = components / scale, shift / scale
        return Affine.linear(components, shift, finite_only=True)
    if _own(estimator, TruncatedSVD, "transform"):
        return Affine.linear(np.asarray(estimator.components_).T, finite_only=True)
    return None


_LINEAR_PREDICT = {"LinearModel", "MultiOutputLinearModel", "Ridge", "RidgeCV", "BaseSGDRegressor"}
"""The scikit-learn classes whose ``predict`` is ``_decision_function`` (some only restate the
docstring), and those whose ``_decision_function`` is ``X @ coef_.T + intercept_`` on dense X."""
_LINEAR_DECISION = {"LinearModel", "ElasticNet", "BaseSGDRegressor"}


def _owner(estimator: Any, method: str) -> str:
    """The name of the scikit-learn linear-model class in ``estimator``'s MRO that defines ``method``."""
    owner = next((c for c in type(estimator).__mro__ if method in c.__dict__), None)
    return (
        "" if owner is None else owner.__name__ if owner.__module__.startswith("sklearn.linear_model") else ""
    )


def _linear_regressor(estimator: Any) -> bool:
    from sklearn.base import is_regressor

    return (
        is_regressor(estimator)
        and _owner(estimator, "predict") in _LINEAR_PREDICT
        and _owner(estimator, "_decision_function") in _LINEAR_DECISION
    )


def _linear_map(estimator: Any, method: str) -> Affine | None:
    from sklearn.linear_model._base import LinearClassifierMixin

    if method == "decision_function" and not _own(estimator, LinearClassifierMixin, "decision_function"):
        return None
    coef = estimator.coef_
    if not isinstance(coef, np.ndarray):  # a sparse coef_ (after sparsify())
        return None
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(estimator.intercept_, dtype=np.float64)
    if method == "decision_function" and coef.ndim == 2 and coef.shape[0] == 1:
        return Affine.linear(coef[0], intercept.reshape(()), finite_only=True)  # one score per row
    return Affine.linear(coef.T, intercept, finite_only=True)
