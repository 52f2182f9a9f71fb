"""Metrics. Every installed metric is an attribute, resolved through the plugin registry."""

from megatron.metrics.base import Metric, MetricNode
from megatron.plugins.facade import registry_module

__all__ = ["Metric", "MetricNode"]

__getattr__, __dir__ = registry_module(__name__, "metric", globals())
