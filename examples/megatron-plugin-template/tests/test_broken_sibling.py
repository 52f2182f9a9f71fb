"""Installed next to a broken plugin, megatron and this plugin keep working: the broken one is
dropped with one warning naming it, and `megatron plugins` lists it as failed."""

import os
import subprocess
import sys

import numpy as np
import pytest

import megatron
from megatron.plugins import PluginLoadWarning, get_plugin_manager

BROKEN = """
from megatron.plugins import hookimpl


@hookimpl
def register_layers(register):
    register("Sibling", "broken_sibling:Sibling")
    raise RuntimeError("the sibling is broken")
"""


@pytest.fixture
def broken_sibling(megatron_distribution):
    return megatron_distribution("megatron-broken-sibling", "broken_sibling", {"broken_sibling": BROKEN})


def test_megatron_and_this_plugin_work_next_to_a_broken_plugin(broken_sibling):
    with pytest.warns(PluginLoadWarning) as record:
        get_plugin_manager().load()
    (warning,) = [w for w in record if issubclass(w.category, PluginLoadWarning)]
    assert "'broken_sibling' from megatron-broken-sibling 1.0.0 failed to load" in str(warning.message)
    assert "RuntimeError: the sibling is broken" in str(warning.message)

    x = megatron.nodes.Input("x", (2,))
    blend = megatron.layers.WeightedSum((1.0, 1.0))([megatron.layers.MaxAbsScale()(x), x], "blend")
    doubled = megatron.layers.ScalarMultiply(2)(blend, "doubled")  # a built-in
    pipeline = megatron.Pipeline(x, doubled, name="neighbours")
    pipeline.fit({"x": np.array([[2.0, -1.0]])})
    assert pipeline.transform({"x": np.array([[2.0, -1.0]])})["doubled"].tolist() == [[6.0, -4.0]]
    assert "Sibling" not in dir(megatron.layers)


def test_megatron_plugins_lists_the_broken_plugin_as_failed(broken_sibling):
    path = os.pathsep.join([str(broken_sibling), *sys.path])
    result = subprocess.run(
        [sys.executable, "-m", "megatron", "plugins"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert result.returncode == 0, result.stderr
    assert "template (megatron-template 0.1.0)" in result.stdout
    assert "broken_sibling (megatron-broken-sibling 1.0.0): FAILED, not loaded" in result.stdout
    assert "RuntimeError: the sibling is broken (in register_layers)" in result.stdout
