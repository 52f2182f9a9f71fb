"""The megatron-sklearn distribution installs its plugin through the ``megatron`` entry point."""

from megatron.plugins import get_plugin_manager


def test_plugin_is_loaded_from_its_distribution(megatron_plugins):
    plugins = {p.name: p for p in get_plugin_manager().plugins}
    assert plugins["sklearn"].distribution == "megatron-sklearn"
    assert plugins["sklearn"].version.startswith("2026.")
