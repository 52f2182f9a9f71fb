"""The sklearn plugin's hook implementations. Imports nothing heavy: scikit-learn loads on use."""

from __future__ import annotations

from typing import Any

from megatron.plugins import hookimpl


@hookimpl
def register_layers(register: Any) -> None:
    register("Sklearn", "megatron_sklearn.layer:Sklearn")


@hookimpl
def register_metrics(register: Any) -> None:
    for name in ("ROCAUC", "AveragePrecision", "LogLoss"):
        register(name, f"megatron_sklearn.metrics:{name}")
    register("Sklearn", "megatron_sklearn.metrics:Sklearn")


@hookimpl
def register_serializers(register: Any) -> None:
    register("skops", "megatron_sklearn.serializer:SkopsSerializer")


@hookimpl
def adapt_layer(obj: Any) -> Any:
    """Wrap a scikit-learn estimator where a layer is expected."""
    if not type(obj).__module__.startswith("sklearn"):
        return None
    from megatron_sklearn.layer import Sklearn, is_estimator

    return Sklearn(obj) if is_estimator(obj) else None
