"""Built-in names resolve without reading the installed plugins: the same objects the registry
gives, a conflict with a plugin found at the first scan (and raised on use from then on, as
any conflict), and ``MEGATRON_DISABLE_PLUGINS=core`` still leaving them out."""

import warnings

import pytest

import megatron
from megatron.errors import PluginConflictError, UnknownNameError
from megatron.plugins import PluginLoadWarning, get_plugin_manager, get_registry, reset_plugin_manager
from megatron.plugins.core_names import LAYERS, METRICS, SOURCES
from megatron.plugins.manager import loaded_plugin_manager

DOORS = {"layer": megatron.layers, "metric": megatron.metrics, "source": megatron.io}
TABLES = {"layer": LAYERS, "metric": METRICS, "source": SOURCES}
BUILTINS = [(kind, name) for kind, table in TABLES.items() for names in table.values() for name in names]

WHITEN_TOO = """
from megatron.plugins import hookimpl
from megatron.layers import StatelessLayer

class Whiten(StatelessLayer):
    def transform(self, x):
        return x

@hookimpl
def register_layers(register):
    register("Whiten", Whiten)
"""


@pytest.mark.parametrize(("kind", "name"), BUILTINS)
def test_a_builtin_name_is_what_the_registry_registers(kind, name, megatron_plugins):
    found = getattr(DOORS[kind], name)
    assert loaded_plugin_manager() is None  # resolved without reading the installed plugins
    assert found is get_registry().get(kind, name)
    assert getattr(DOORS[kind], name) is found  # and the same once they are read


def test_the_builtin_plugin_registers_exactly_the_names_the_door_knows(megatron_plugins):
    registrations = get_plugin_manager().registrations("core")
    assert {(kind, name) for kind in TABLES for name in registrations[kind]} == set(BUILTINS)


def test_a_plugin_with_a_builtin_name_is_a_conflict_from_the_first_scan(install_distribution):
    install_distribution("megatron-whiten", "whiten_plugin", WHITEN_TOO)
    early = megatron.layers.Whiten  # before the scan: the built-in, no plugin read
    assert early.__module__ == "megatron.layers.scaling" and loaded_plugin_manager() is None
    with pytest.warns(PluginLoadWarning, match=r"built-in layer 'Whiten' was used before .*megatron-whiten"):
        get_registry()
    with pytest.raises(PluginConflictError, match=r"megatron-core .*and megatron-whiten"):
        megatron.layers.Whiten
    assert megatron.layers.Clip.__module__ == "megatron.layers.numeric"  # the others keep working


def test_a_conflict_found_before_any_use_is_raised_on_use(install_distribution):
    install_distribution("megatron-whiten", "whiten_plugin", WHITEN_TOO)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)  # Whiten may have been used by an earlier test
        get_registry()
    with pytest.raises(PluginConflictError, match=r"megatron-core .*and megatron-whiten"):
        megatron.layers.Whiten


def test_disabling_core_leaves_the_builtins_out_before_any_scan(monkeypatch, megatron_plugins):
    monkeypatch.setenv("MEGATRON_DISABLE_PLUGINS", "megatron-core")
    reset_plugin_manager()
    with pytest.raises(UnknownNameError, match="'Whiten'"):
        megatron.layers.Whiten


def test_submodule_names_never_reach_the_registry(megatron_plugins):
    # what `from megatron.layers import checks` asks before it imports the submodule
    with pytest.raises(AttributeError, match="has no attribute 'checks'") as raised:
        megatron.layers.__getattr__("checks")
    assert not isinstance(raised.value, UnknownNameError)
    assert loaded_plugin_manager() is None
