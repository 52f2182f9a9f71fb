"""Megatron's scikit-learn plugin: estimators as layers (``megatron.layers.Sklearn``), sklearn
metrics (``megatron.metrics.Sklearn``, ``ROCAUC``, ``LogLoss``...), and
:class:`PipelineEstimator`, a pipeline as an estimator."""

from __future__ import annotations

from typing import Any

_LAZY = {
    "Sklearn": "megatron_sklearn.layer",
    "PipelineEstimator": "megatron_sklearn.estimator",
}


def __getattr__(name: str) -> Any:
    # scikit-learn loads when something is used, not when the plugin loads
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'megatron_sklearn' has no attribute {name!r}")


__all__ = ["PipelineEstimator", "Sklearn"]
