"""The template's layers, metric and source pass Megatron's conformance suites, through the
plugin door: the same checks the built-ins pass, a save and reload round trip included."""

import numpy as np
import pytest

import megatron
from megatron.plugins import get_registry
from megatron.testing import (
    LayerCase,
    MetricCase,
    layer_checks,
    layer_properties,
    metric_checks,
    source_case,
    source_checks,
)

rng = np.random.default_rng(0)
DATA = rng.normal(size=(50, 3))
OTHER = rng.normal(size=(50, 3))
WORDS = np.array(["a"] * 50)

LAYER_CASES = [
    LayerCase(lambda: megatron.layers.MaxAbsScale(), (DATA,), bad_inputs=((WORDS,),), name="MaxAbsScale"),
    LayerCase(
        lambda: megatron.layers.WeightedSum((0.7, 0.3)),
        (DATA, OTHER),
        bad_inputs=((WORDS, WORDS), (DATA, OTHER[:, :2])),
        name="WeightedSum",
    ),
]


def test_the_plugin_registers_through_the_entry_point(megatron_plugins):
    registry = get_registry()
    assert registry.entry("layer", "MaxAbsScale").distribution == "megatron-template"
    assert registry.entry("layer", "WeightedSum").plugin == "template"
    assert registry.entry("metric", "MaxError").plugin == "template"
    assert registry.entry("source", "NpzSource").plugin == "template"


@pytest.mark.parametrize("check", layer_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", LAYER_CASES, ids=str)
def test_layer_conformance(check, case):
    check(case)


@pytest.mark.parametrize("check", layer_properties(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", LAYER_CASES, ids=str)
def test_layer_properties(check, case):
    check(case)


@pytest.mark.parametrize("check", metric_checks(), ids=lambda c: c.__name__)
def test_metric_conformance(check):
    y, p = rng.normal(size=30), rng.normal(size=30)
    check(MetricCase(megatron.metrics.MaxError, (y, p), expected=float(np.abs(y - p).max()), name="MaxError"))


@pytest.fixture
def npz(tmp_path):
    columns = {"x": rng.normal(size=(23, 2)), "label": np.arange(23) % 3}
    np.savez(tmp_path / "data.npz", **columns)
    return tmp_path / "data.npz", columns


@pytest.mark.parametrize("check", source_checks(), ids=lambda c: c.__name__)
def test_source_conformance(check, npz):
    path, columns = npz
    check(source_case(megatron.io.NpzSource, path, expected=columns, batch_size=5))
