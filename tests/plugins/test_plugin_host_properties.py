"""Property: whatever mix of good and broken plugins is installed, the built-ins and every good
plugin work, every broken one is dropped whole, and each broken one is named in one warning.

Plugins are generated as source and installed as distributions (a module and a ``.dist-info``
with its entry point). Budget: 40 examples, about 3 s.
"""

import sys
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megatron.plugins import PluginLoadWarning, get_plugin_manager, reset_plugin_manager

HOOKS = {"register_layers": "layer", "register_metrics": "metric", "register_sources": "source"}
FAULTS = ("raises", "bad_argument", "bad_name", "bad_target", "misspelt_hook", "import_error")
TARGET = {
    "layer": "megatron.layers.numeric:Add",
    "metric": "megatron.metrics.base:Metric",
    "source": "builtins:dict",
}


@st.composite
def plugins(draw):
    """Plugins as (hooks, fault): hooks maps a hook to how many names it registers; fault is
    None or the one thing that breaks the plugin."""
    count = draw(st.integers(1, 4))
    return [
        (
            draw(st.dictionaries(st.sampled_from(sorted(HOOKS)), st.integers(0, 3), min_size=1)),
            draw(st.none() | st.sampled_from(FAULTS)),
        )
        for _ in range(count)
    ]


def source(number, hooks, fault):
    lines = ["from megatron.plugins import hookimpl"]
    if fault == "import_error":
        lines.append("raise ImportError('missing library')")
    for position, (hook, count) in enumerate(sorted(hooks.items())):
        kind = HOOKS[hook]
        argument = "reg" if fault == "bad_argument" and position == 0 else "register"
        name = f"{hook[:-1]}" if fault == "misspelt_hook" and position == 0 else hook
        lines += ["", "@hookimpl", f"def {name}({argument}):"]
        lines += [f"    {argument}('P{number}{kind.title()}{i}', {TARGET[kind]!r})" for i in range(count)]
        if position == 0 and fault == "raises":
            lines.append("    raise RuntimeError('boom')")
        if position == 0 and fault == "bad_name":
            lines.append(f"    {argument}('not a name', {TARGET[kind]!r})")
        if position == 0 and fault == "bad_target":
            lines.append(f"    {argument}('P{number}Odd', 'no such path')")
        lines.append("    return None")
    return "\n".join(lines) + "\n"


def install(site, number, hooks, fault):
    (site / f"generated_plugin_{number}.py").write_text(source(number, hooks, fault))
    info = site / f"megatron_generated_{number}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: megatron-generated-{number}\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(f"[megatron]\ngenerated_{number} = generated_plugin_{number}\n")


@pytest.fixture
def clean_environment(monkeypatch):
    monkeypatch.delenv("MEGATRON_PLUGINS", raising=False)
    monkeypatch.delenv("MEGATRON_DISABLE_PLUGINS", raising=False)
    yield
    reset_plugin_manager()


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(installed=plugins())
def test_any_mix_of_plugins_leaves_the_good_ones_working(clean_environment, installed):
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder)
        for number, (hooks, fault) in enumerate(installed):
            install(site, number, hooks, fault)
        sys.path.insert(0, folder)
        try:
            reset_plugin_manager()
            manager = get_plugin_manager()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                manager.load()
            registry = manager.registry
        finally:
            sys.path.remove(folder)
            for number in range(len(installed)):
                sys.modules.pop(f"generated_plugin_{number}", None)

    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    loaded = {p.name for p in manager.plugins}
    assert "Lambda" in registry.names("layer") and "core" in loaded
    for number, (hooks, fault) in enumerate(installed):
        name = f"generated_{number}"
        mine = [m for m in messages if f"plugin {name!r} from megatron-generated-{number} 1.0" in m]
        names = {
            f"P{number}{HOOKS[hook].title()}{i}": HOOKS[hook]
            for hook, count in hooks.items()
            for i in range(count)
        }
        if fault is None:
            assert name in loaded and mine == []
            for registered, kind in names.items():
                assert registered in registry.names(kind)
        else:
            assert name not in loaded
            assert len(mine) == 1 and "failed to load" in mine[0], (fault, messages)
            for registered, kind in names.items():
                assert registered not in registry.names(kind)
    assert len(messages) == sum(fault is not None for _, fault in installed)
