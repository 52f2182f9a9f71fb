"""Conformance suites for layers and metrics, shared by the built-ins and third-party plugins.

A plugin's own tests describe a few cases and run every check on them::

    import pytest
    from megatron.testing import LayerCase, layer_checks

    CASES = [LayerCase(MyLayer, (np.random.random((20, 3)),))]

    @pytest.mark.parametrize("check", layer_checks())
    @pytest.mark.parametrize("case", CASES, ids=str)
    def test_my_layers_conform(check, case):
        check(case)

Installing megatron-core also installs a pytest plugin (``megatron.testing.plugin``) with
fixtures for registering plugins in isolation.
"""

from megatron.testing.layers import LayerCase, layer_checks
from megatron.testing.metrics import MetricCase, metric_checks

__all__ = ["LayerCase", "MetricCase", "layer_checks", "metric_checks"]
