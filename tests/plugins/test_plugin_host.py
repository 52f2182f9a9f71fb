"""The plugin host keeps working next to broken plugins, installed as real distributions: each
broken one is dropped whole with one warning naming it, and `megatron plugins` lists it."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import megatron
from megatron.errors import PluginError, UnknownNameError
from megatron.plugins import PluginLoadWarning, get_plugin_manager, get_registry, hookimpl

GOOD = """
from megatron.plugins import hookimpl


@hookimpl
def register_layers(register):
    register("Triple", "good_layers:Triple")


@hookimpl
def register_metrics(register):
    register("Largest", "good_layers:Largest")
"""

GOOD_LAYERS = """
import numpy as np
from megatron.layers import StatelessLayer
from megatron.metrics import Metric


class Triple(StatelessLayer):
    def transform(self, x):
        return 3 * x


class Largest(Metric):
    def initial_state(self):
        return -np.inf

    def update(self, state, y, p):
        return max(state, float(np.max(p)))

    def result(self, state):
        return state
"""

BROKEN = {
    # a register hook that raises after registering a name: none of its names may stay
    "raising": """
        from megatron.plugins import hookimpl

        @hookimpl
        def register_layers(register):
            register("HalfDone", "raising_plugin:HalfDone")
            raise RuntimeError("the hook went wrong")
    """,
    # an argument pluggy cannot match to the hookspec
    "signature": """
        from megatron.plugins import hookimpl

        @hookimpl
        def register_layers(reg):
            reg("Misnamed", "signature_plugin:Misnamed")
    """,
    # a hook that does not exist
    "misspelt": """
        from megatron.plugins import hookimpl

        @hookimpl
        def register_layer(register):
            register("Misspelt", "misspelt_plugin:Misspelt")
    """,
    # a module that does not import
    "importing": "raise ImportError('a library this plugin needs is missing')",
}
ERRORS = {
    "raising": "RuntimeError: the hook went wrong (in register_layers)",
    "signature": "register_layers(reg) takes 'reg', which the hook does not pass: it passes 'register' by keyword",
    "misspelt": "register_layer() is not a megatron hook; did you mean 'register_layers'?",
    "importing": "ImportError: a library this plugin needs is missing",
}


@pytest.fixture
def neighbourhood(megatron_distribution):
    """A good plugin and four broken ones, installed next to each other."""
    site = megatron_distribution(
        "megatron-good", "good", {"good_plugin": GOOD, "good_layers": GOOD_LAYERS}, version="2.0"
    )
    for name, source in BROKEN.items():
        megatron_distribution(f"megatron-{name}", name, {f"{name}_plugin": source}, version="0.1")
    return site


def plugin_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, PluginLoadWarning)]


def test_broken_plugins_are_dropped_whole_with_one_warning_each(neighbourhood):
    manager = get_plugin_manager()
    with pytest.warns(PluginLoadWarning) as record:
        manager.load()
    messages = plugin_warnings(record)
    assert len(messages) == len(BROKEN), messages
    for name, error in ERRORS.items():
        (message,) = [m for m in messages if f"plugin {name!r} from megatron-{name} 0.1 failed" in m]
        assert error in message, message
    assert sorted(f.info.name for f in manager.failures) == sorted(BROKEN)
    assert {p.name for p in manager.plugins} >= {"core", "good"}
    assert not set(BROKEN) & {p.name for p in manager.plugins}
    layers = get_registry().names("layer")
    assert not {"HalfDone", "Misnamed", "Misspelt"} & set(layers)


def test_builtins_and_the_good_plugin_work_next_to_broken_ones(neighbourhood):
    with pytest.warns(PluginLoadWarning):
        get_plugin_manager().load()
    x = megatron.nodes.Input("x")
    tripled = megatron.layers.Triple()(x, "tripled")
    doubled = megatron.layers.ScalarMultiply(2)(tripled, "doubled")
    megatron.metrics.Largest()([x, doubled], "largest")
    pipeline = megatron.Pipeline(x, doubled, name="neighbours")
    data = {"x": np.array([1.0, 2.0])}
    assert pipeline.transform(data)["doubled"].tolist() == [6.0, 12.0]
    assert pipeline.evaluate(data)["largest"] == 12.0


def test_a_name_of_a_dropped_plugin_says_why_it_is_missing(neighbourhood):
    with pytest.warns(PluginLoadWarning):
        get_plugin_manager().load()
    with pytest.raises(
        UnknownNameError, match=r"'raising' \(megatron-raising 0.1\) registers it, but failed"
    ):
        megatron.layers.HalfDone


def run_megatron_plugins(site, **env):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path]), **env}
    return subprocess.run(
        [sys.executable, "-m", "megatron", "plugins"], capture_output=True, text=True, env=environment
    )


def test_megatron_plugins_exits_0_and_lists_the_broken_ones_as_failed(neighbourhood):
    result = run_megatron_plugins(neighbourhood)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert "good (megatron-good 2.0)" in lines
    assert "  layer: Triple" in lines
    for name, error in ERRORS.items():
        at = lines.index(f"{name} (megatron-{name} 0.1): FAILED, not loaded")
        assert error in lines[at + 1]
    assert any(line.startswith("core (megatron-core ") for line in lines)


UNDECORATED = """
from megatron.plugins import hookimpl


def register_layers(register):  # no @hookimpl
    register("Forgotten", "undecorated_plugin:Forgotten")


def register_metric(register):  # no @hookimpl, and misspelt
    pass


def register_all(register):  # a helper of another name: not a hook, and not mistaken for one
    pass


@hookimpl
def register_sources(register):
    register("Numbers", "undecorated_plugin:numbers")


def numbers(n):
    return {"x": list(range(n))}
"""


def test_functions_that_look_like_hooks_but_are_not_decorated_are_warned_about(megatron_distribution):
    megatron_distribution("megatron-undecorated", "undecorated", {"undecorated_plugin": UNDECORATED})
    with pytest.warns(PluginLoadWarning) as record:
        get_plugin_manager().load()
    messages = plugin_warnings(record)
    assert len(messages) == 2, messages
    assert "register_layers() is not decorated with @hookimpl" in messages[0]
    assert "'undecorated' from megatron-undecorated" in messages[0]
    assert "register_metric() is not a megatron hook" in messages[1]
    assert "did you mean 'register_metrics'" in messages[1]
    assert megatron.io.Numbers(2) == {"x": [0, 1]}  # the plugin itself is loaded


def test_every_hook_is_called_with_keyword_arguments(megatron_plugins):
    class KeywordOnly:
        @hookimpl
        def register_layers(self, register):
            register(name="KeywordLayer", target="megatron.layers.numeric:Add")

        @hookimpl
        def adapt_layer(self, obj):
            return megatron.layers.Add() if obj == "add" else None

    megatron_plugins(KeywordOnly(), "keywords")
    assert megatron.layers.KeywordLayer is megatron.layers.Add
    assert isinstance(megatron.layers.as_layer("add"), megatron.layers.Add)


@pytest.mark.parametrize(
    ("name", "target", "error"),
    [
        ("Bad Name", "m:X", "register() takes as name a Python identifier"),
        (3, "m:X", "register() takes as name a Python identifier"),
        ("Fine", "not a path", "a lazy 'module:attribute' path; got 'not a path'"),
        ("Fine", None, "the target is missing"),
    ],
)
def test_register_refuses_what_cannot_be_a_name_or_a_target(megatron_plugins, name, target, error):
    class Careless:
        @hookimpl
        def register_layers(self, register):
            register(name, target)

    with pytest.raises(
        PluginError, match=f"cannot be registered: .*{error.replace('(', '.').replace(')', '.')}"
    ):
        megatron_plugins(Careless(), "careless")
    assert "Fine" not in get_registry().names("layer")


def test_a_plugin_registered_at_run_time_that_fails_leaves_nothing_behind(megatron_plugins):
    class Raising:
        @hookimpl
        def register_metrics(self, register):
            register("Partly", "megatron.metrics.base:Metric")
            raise KeyError("oops")

    with pytest.raises(PluginError, match=r"KeyError: 'oops' \(in register_metrics\)"):
        megatron_plugins(Raising(), "raising")
    assert "Partly" not in get_registry().names("metric")
    assert "raising" not in {p.name for p in get_plugin_manager().plugins}
    megatron_plugins(type("Fine", (), {})(), "raising")  # the name is free again


class Foreign:
    pass


class ClaimsForeign:
    @hookimpl
    def adapt_layer(self, obj):
        return megatron.layers.Lambda(lambda x: x + 1) if isinstance(obj, Foreign) else None


class RaisesOnEverything:
    @hookimpl
    def adapt_layer(self, obj):
        raise ValueError(f"cannot look at {obj!r}")


def test_an_adapter_that_raises_is_passed_over_for_another_plugins_claim(megatron_plugins):
    megatron_plugins(ClaimsForeign(), "claims")
    megatron_plugins(RaisesOnEverything(), "raises")  # asked first: registered last
    with pytest.warns(PluginLoadWarning, match=r"'raises' .* raised in adapt_layer and was passed over"):
        layer = get_plugin_manager().adapt_layer(Foreign())
    assert isinstance(layer, megatron.layers.Lambda)


def test_an_adapter_that_raises_with_no_other_claim_is_a_plugin_error(megatron_plugins):
    megatron_plugins(RaisesOnEverything(), "raises")
    with pytest.raises(PluginError, match=r"'raises' .* raised in adapt_layer for a builtins.object") as info:
        megatron.layers.as_layer(object())
    assert isinstance(info.value.__cause__, ValueError)


def test_an_adapter_must_return_a_layer_or_storage(megatron_plugins):
    class Wrong:
        @hookimpl
        def adapt_layer(self, obj):
            return "a layer, honestly"

        @hookimpl
        def adapt_storage(self, obj, name, version):
            return {} if obj == "dict://" else None

    megatron_plugins(Wrong(), "wrong")
    with pytest.raises(
        PluginError, match=r"returned a builtins.str from adapt_layer; expected a megatron Layer"
    ):
        megatron.layers.as_layer(object())
    with pytest.raises(
        PluginError, match=r"returned a builtins.dict from adapt_storage; expected a megatron Storage"
    ):
        megatron.io.open_storage("dict://", "p", None)


def test_core_code_calls_the_typed_adapters_not_the_raw_hook_relay():
    source = Path(megatron.__file__).parent
    callers = [
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if ".hook." in path.read_text() and path.parent.name != "plugins"
    ]
    assert callers == []


def test_builtins_work_from_a_source_tree_that_is_not_installed(tmp_path):
    """With only the source folder on the path (no megatron-core distribution, so no entry
    point), the built-in plugin is still there."""
    import attr
    import attrs
    import numpy
    import pluggy

    libraries = tmp_path / "libraries"
    libraries.mkdir()
    for module in (numpy, pluggy, attr, attrs):
        folder = Path(module.__file__).parent
        for name in (folder.name, f"{folder.name}.libs"):  # numpy's wheel keeps its BLAS in numpy.libs
            if (folder.parent / name).exists():
                (libraries / name).symlink_to(folder.parent / name)
    source = Path(megatron.__file__).parents[1]
    code = (
        "import megatron, numpy as np, importlib.metadata as md;"
        "from megatron.plugins import get_plugin_manager;"
        "assert not [e for e in md.entry_points(group='megatron')];"
        "x = megatron.nodes.Input('x');"
        "p = megatron.Pipeline(x, megatron.layers.ScalarMultiply(2)(x, 'y'), name='p');"
        "print(p.transform({'x': np.ones(2)})['y'].tolist(), get_plugin_manager().plugins[0])"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{source}{os.pathsep}{libraries}", "PATH": os.environ.get("PATH", "")},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("[2.0, 2.0] plugin 'core' (megatron-core (not installed))")


def test_disabling_core_still_works_and_says_why_names_are_missing(monkeypatch, megatron_plugins):
    from megatron.plugins import reset_plugin_manager

    monkeypatch.setenv("MEGATRON_DISABLE_PLUGINS", "core")
    reset_plugin_manager()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # naming an installed plugin is no cause for a warning
        assert "core" not in {p.name for p in get_plugin_manager().plugins}
    with pytest.raises(
        UnknownNameError, match=r"plugin 'core' \(megatron-core .*\) is installed and mentions "
    ):
        megatron.layers.Whiten


TRIPLE = """
from megatron.plugins import hookimpl


@hookimpl
def register_layers(register):
    register("Triple", "megatron.layers.numeric:Add")
"""


@pytest.fixture
def triple(megatron_distribution):
    return megatron_distribution(
        "megatron-triple", "triple_plugin", {"triple_module": TRIPLE}, version="1.2.3"
    )


@pytest.mark.parametrize("selector", ["triple_plugin", "megatron-triple", "Megatron_Triple"])
def test_the_allow_list_takes_plugin_or_distribution_names(triple, monkeypatch, selector):
    from megatron.plugins import reset_plugin_manager

    monkeypatch.setenv("MEGATRON_PLUGINS", selector)
    reset_plugin_manager()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "Triple" in get_registry().names("layer")
    assert {p.name for p in get_plugin_manager().plugins} == {"core", "triple_plugin"}

    monkeypatch.delenv("MEGATRON_PLUGINS")
    monkeypatch.setenv("MEGATRON_DISABLE_PLUGINS", selector)
    reset_plugin_manager()
    assert "Triple" not in get_registry().names("layer")
    assert "Lambda" in get_registry().names("layer")


@pytest.mark.parametrize("variable", ["MEGATRON_PLUGINS", "MEGATRON_DISABLE_PLUGINS"])
def test_names_that_match_no_installed_plugin_are_warned_about(triple, monkeypatch, variable):
    from megatron.plugins import reset_plugin_manager

    monkeypatch.setenv(variable, "triple_plugn, ")
    reset_plugin_manager()
    with pytest.warns(
        PluginLoadWarning, match=rf"{variable} names 'triple_plugn'.*Did you mean 'triple_plugin'"
    ):
        get_registry()


def test_an_empty_allow_list_is_warned_about(triple, monkeypatch):
    from megatron.plugins import reset_plugin_manager

    monkeypatch.setenv("MEGATRON_PLUGINS", "")
    reset_plugin_manager()
    with pytest.warns(PluginLoadWarning, match="MEGATRON_PLUGINS is set but names no plugin"):
        names = get_registry().names("layer")
    assert "Triple" not in names and "Lambda" in names


def test_a_name_of_a_plugin_left_out_says_so(triple, monkeypatch):
    from megatron.plugins import reset_plugin_manager

    monkeypatch.setenv("MEGATRON_PLUGINS", "core")
    reset_plugin_manager()
    with pytest.raises(
        UnknownNameError,
        match=r"plugin 'triple_plugin' \(megatron-triple 1.2.3\) is installed and mentions 'Triple', but is "
        r"not loaded: MEGATRON_PLUGINS=core does not name it",
    ):
        megatron.layers.Triple
    with pytest.raises(
        UnknownNameError,
        match=r"Installed but not loaded: .*plugin 'triple_plugin' \(megatron-triple 1.2.3\) \(MEGATRON_PLUGINS=core",
    ):
        megatron.layers.Quadruple


def test_megatron_plugins_lists_the_plugins_left_out(triple, monkeypatch):
    result = run_megatron_plugins(triple, MEGATRON_DISABLE_PLUGINS="megatron-triple,nothing_like_it")
    assert result.returncode == 0, result.stderr
    assert "triple_plugin (megatron-triple 1.2.3): not loaded\n  MEGATRON_DISABLE_PLUGINS=" in result.stdout
    assert "warning: MEGATRON_DISABLE_PLUGINS names 'nothing_like_it'" in result.stderr


def test_a_second_plugin_of_the_same_name_is_refused_naming_both(megatron_distribution):
    megatron_distribution("megatron-first", "same", {"first_plugin": TRIPLE})
    megatron_distribution("megatron-second", "same", {"second_plugin": TRIPLE})
    with pytest.warns(
        PluginLoadWarning, match=r"the plugin name 'same' is taken by plugin 'same' \(megatron-"
    ):
        get_registry()
    assert "Triple" in get_registry().names("layer")  # from the first one found
