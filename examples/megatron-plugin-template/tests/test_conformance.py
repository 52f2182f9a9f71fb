"""The template's layer and metric pass Megatron's conformance suites, through the plugin door."""

import numpy as np
import pytest

import megatron
from megatron.plugins import get_registry
from megatron.testing import LayerCase, MetricCase, layer_checks, metric_checks

rng = np.random.default_rng(0)
DATA = rng.normal(size=(50, 3))


def test_the_plugin_registers_through_the_entry_point(megatron_plugins):
    assert get_registry().entry("layer", "MaxAbsScale").distribution == "megatron-template"
    assert get_registry().entry("metric", "MaxError").plugin == "template"


@pytest.mark.parametrize("check", layer_checks(), ids=lambda c: c.__name__)
def test_layer_conformance(check):
    check(
        LayerCase(
            lambda: megatron.layers.MaxAbsScale(),
            (DATA,),
            bad_inputs=((np.array(["a"] * 50),),),
            name="MaxAbsScale",
        )
    )


@pytest.mark.parametrize("check", metric_checks(), ids=lambda c: c.__name__)
def test_metric_conformance(check):
    y, p = rng.normal(size=30), rng.normal(size=30)
    check(MetricCase(megatron.metrics.MaxError, (y, p), expected=float(np.abs(y - p).max()), name="MaxError"))
