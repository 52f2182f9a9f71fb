"""Conformance suites for layers, metrics, storage backends and batch sources, shared by the
built-ins and third-party plugins.

A plugin's own tests describe a few cases and run every check on them::

    import pytest
    from megatron.testing import LayerCase, layer_checks

    CASES = [LayerCase(MyLayer, (np.random.random((20, 3)),))]

    @pytest.mark.parametrize("check", layer_checks())
    @pytest.mark.parametrize("case", CASES, ids=str)
    def test_my_layers_conform(check, case):
        check(case)

Installing megatron-core also installs a pytest plugin (``megatron.testing.plugin``) with the
``megatron_plugins`` fixture, which registers plugin objects for one test only.
"""

from megatron.testing.layers import LayerCase, layer_checks
from megatron.testing.metrics import MetricCase, metric_checks
from megatron.testing.sources import SourceCase, source_checks
from megatron.testing.storage import StorageCase, storage_checks

__all__ = [
    "LayerCase",
    "MetricCase",
    "SourceCase",
    "StorageCase",
    "layer_checks",
    "metric_checks",
    "source_checks",
    "storage_checks",
]
