"""The megatron-sql distribution installs its plugin through the ``megatron`` entry point."""

from megatron.plugins import get_plugin_manager


def test_plugin_is_loaded_from_its_distribution(megatron_plugins):
    plugins = {p.name: p for p in get_plugin_manager().plugins}
    assert plugins["sql"].distribution == "megatron-sql"
    assert plugins["sql"].version.startswith("2026.")
