"""The plugin catalogue: the one place hints for missing plugins come from. It agrees with
what the installed plugins register, and every name, hook and adapter it lists gives, when its
plugin is not loaded, an error naming the distribution and how to install it."""

from __future__ import annotations

import pytest

import megatron
from megatron.errors import MegatronError, MissingDependencyError, PersistenceError
from megatron.layers import as_layer
from megatron.plugins import get_plugin_manager, get_registry, hookimpl, reset_plugin_manager
from megatron.plugins.catalogue import KNOWN
from megatron.plugins.hints import missing_adapter, missing_hook, missing_name

NAMES = [(known, kind, name) for known in KNOWN for kind, names in known.provides.items() for name in names]


@pytest.fixture
def core_only(monkeypatch):
    monkeypatch.setenv("MEGATRON_PLUGINS", "core")
    monkeypatch.delenv("MEGATRON_DISABLE_PLUGINS", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.mark.parametrize("known", KNOWN, ids=lambda known: known.name)
def test_the_catalogue_lists_what_each_installed_plugin_registers(known, megatron_plugins):
    pytest.importorskip(
        known.module, reason=f"needs {known.module}: its plugin is compared with the catalogue"
    )
    manager = get_plugin_manager()
    (plugin,) = [info.name for info in manager.plugins if info.distribution == known.name]
    registered = {kind: names for kind, names in manager.registrations(plugin).items() if names}
    assert registered == {kind: sorted(names) for kind, names in known.provides.items()}
    implemented = {
        impl.plugin_name for hook in known.hooks for impl in getattr(manager.hook, hook).get_hookimpls()
    }
    assert plugin in implemented or not known.hooks


@pytest.mark.parametrize(("known", "kind", "name"), NAMES, ids=[f"{k}:{n}" for _, k, n in NAMES])
def test_each_catalogued_name_says_what_to_install_when_its_plugin_is_not_loaded(
    known, kind, name, core_only
):
    with pytest.raises(MissingDependencyError) as caught:
        get_registry().entry(kind, name)
    assert caught.value.name == known.module
    assert f"The {kind} {name!r} comes from {known.name}, which is" in str(caught.value)
    assert missing_name(kind, name, loaded=[known.name]) is None  # loaded: it is not missing
    assert missing_name(kind, name, loaded=[known.name.upper().replace("-", "_")]) is None  # as pip compares


def test_hooks_and_adapters_of_the_catalogue_name_their_distribution():
    for known in KNOWN:
        for hook in known.hooks:
            error = missing_hook(hook, "The feature")
            assert error is not None and error.name == known.module
            assert missing_hook(hook, "The feature", loaded=[known.name]) is None
        for hook, modules in known.adapts.items():
            for module in modules:
                foreign = type("Foreign", (), {"__module__": f"{module}.models"})()
                error = missing_adapter(hook, foreign, "Adapting it")
                assert error is not None and known.name in str(error)
    assert missing_adapter("adapt_layer", object(), "Adapting it") is None  # builtins: nobody's


def test_as_layer_of_a_catalogued_library_s_object_names_the_plugin(core_only):
    known, module = next((k, m) for k in KNOWN for m in k.adapts.get("adapt_layer", ()))
    foreign = type("Estimator", (), {"__module__": f"{module}.linear"})()
    with pytest.raises(
        MegatronError, match=rf"got {module}.linear.Estimator\. Wrapping .* comes from {known.name}"
    ):
        as_layer(foreign)
    with pytest.raises(MegatronError, match="Install the plugin for it or wrap it in a Layer"):
        as_layer(object())


class Token:
    def __init__(self, value):
        self.value = value


class TokenSerializer:
    def claims(self, obj):
        return isinstance(obj, Token)

    def save(self, obj, archive, prefix):
        return {"file": archive.add(f"{prefix}/token.txt", str(obj.value).encode())}

    def load(self, meta, archive, options):
        return Token(int(archive.read(meta["file"])))

    def audit(self, meta, archive):
        return []


class AddToken(megatron.layers.StatelessLayer):
    def __init__(self, token):
        self.token = token

    def transform(self, x):
        return x + self.token.value


def test_loading_an_artifact_of_a_catalogued_format_names_its_plugin(core_only, tmp_path):
    known, format_name = next((k, n) for k in KNOWN for n in k.provides.get("serializer", ()))
    serializer = type("StandIn", (TokenSerializer,), {"name": format_name})  # the catalogued format

    class Layers:
        @hookimpl
        def register_layers(self, register):
            register("AddToken", AddToken)

    class Serializers:
        @hookimpl
        def register_serializers(self, register):
            register(format_name, serializer)

    manager = get_plugin_manager()
    manager.register(Layers(), "layers")
    manager.register(Serializers(), "serializers")
    x = megatron.nodes.Input("x")
    path = megatron.Pipeline(x, AddToken(Token(3))(x, "y"), name="tokens").save(tmp_path)
    manager.unregister("serializers")
    with pytest.raises(PersistenceError, match=rf"{format_name!r} artifact, .* comes from {known.name}"):
        megatron.load_pipeline(path)
