"""The plugin door: entry points, lazy registration, conflicts, broken plugins, env vars."""

import subprocess
import sys

import numpy as np
import pytest

import megatron
from megatron.errors import PluginConflictError, UnknownNameError
from megatron.plugins import PluginLoadWarning, get_plugin_manager, get_registry, hookimpl

THIRD_PARTY = """
import numpy as np
from megatron.plugins import hookimpl
from megatron.layers import StatelessLayer

class Triple(StatelessLayer):
    def transform(self, x):
        return 3 * x

@hookimpl
def register_layers(register):
    register("Triple", Triple)
    register("Lazy", "{module}_heavy:Lazy")
"""

HEAVY = """
from megatron.layers import StatelessLayer
IMPORTED = True

class Lazy(StatelessLayer):
    def transform(self, x):
        return x
"""


def test_third_party_layer_is_used_as_megatron_layers_name(install_distribution):
    site = install_distribution("megatron-triple", "triple_plugin", THIRD_PARTY.format(module="triple"))
    (site / "triple_heavy.py").write_text(HEAVY)
    x = megatron.nodes.Input("x")
    out = megatron.layers.Triple()(x, "out")
    result = megatron.Pipeline(x, out, name="p").transform({"x": np.array([1.0, 2.0])})
    np.testing.assert_array_equal(result["out"], [3.0, 6.0])
    assert "Triple" in dir(megatron.layers) and "Lazy" in dir(megatron.layers)
    assert "triple_heavy" not in sys.modules  # registered, not imported until used
    assert megatron.layers.Lazy.__module__ == "triple_heavy"
    info = {p.name: p for p in get_plugin_manager().plugins}["triple_plugin"]
    assert (info.distribution, info.version) == ("megatron-triple", "1.2.3")


def test_same_name_from_two_plugins_names_both_distributions(install_distribution):
    source = THIRD_PARTY.format(module="x")
    install_distribution("megatron-one", "plugin_one", source)
    install_distribution("megatron-two", "plugin_two", source)
    with pytest.raises(
        PluginConflictError, match=r"megatron-one.*and megatron-two|megatron-two.*and megatron-one"
    ):
        megatron.layers.Triple
    assert megatron.layers.Lambda is not None  # the rest keeps working


def test_broken_plugin_warns_with_its_name_and_the_rest_works(install_distribution):
    install_distribution("megatron-broken", "broken_plugin", "raise ImportError('no such thing')")
    with pytest.warns(PluginLoadWarning, match="'broken_plugin' from megatron-broken 1.2.3 failed to load"):
        names = get_registry().names("layer")
    assert "Lambda" in names


def test_disable_and_allow_lists(install_distribution, monkeypatch):
    install_distribution("megatron-triple", "triple_plugin", THIRD_PARTY.format(module="t"))
    monkeypatch.setenv("MEGATRON_DISABLE_PLUGINS", "triple_plugin")
    assert "Triple" not in get_registry().names("layer")

    from megatron.plugins import reset_plugin_manager

    monkeypatch.delenv("MEGATRON_DISABLE_PLUGINS")
    monkeypatch.setenv("MEGATRON_PLUGINS", "someone_else")
    reset_plugin_manager()
    with pytest.warns(PluginLoadWarning, match="names 'someone_else', which is neither an installed"):
        names = get_registry().names("layer")
    assert "Triple" not in names and "Lambda" in names  # the built-ins stay

    monkeypatch.setenv("MEGATRON_PLUGINS", "triple_plugin")
    reset_plugin_manager()
    assert "Triple" in get_registry().names("layer")


def test_unknown_name_suggests_a_close_one(megatron_plugins):
    with pytest.raises(UnknownNameError, match=r"named 'Lamda'.*Did you mean 'Lambda'"):
        megatron.layers.Lamda
    with pytest.raises(AttributeError):  # hasattr() and getattr(..., default) keep working
        megatron.metrics.NoSuchMetric


def test_builtins_are_registered_as_the_core_distribution(megatron_plugins):
    core = {p.name: p for p in get_plugin_manager().plugins}["core"]
    assert core.distribution == "megatron-core"
    entry = get_registry().entry("metric", "Accuracy")
    assert (entry.plugin, entry.distribution) == ("core", "megatron-core")


def test_adapt_layer_hook_claims_foreign_objects(megatron_plugins):
    from megatron.layers import Lambda, as_layer

    class Foreign:
        pass

    class Adapter:
        @hookimpl
        def adapt_layer(self, obj):
            return Lambda(lambda x: x + 1) if isinstance(obj, Foreign) else None

    megatron_plugins(Adapter(), "adapter")
    assert isinstance(as_layer(Foreign()), Lambda)
    with pytest.raises(megatron.errors.ConfigError, match="Expected a megatron Layer"):
        as_layer(object())


def test_megatron_plugins_command_lists_plugins_and_registrations():
    result = subprocess.run(
        [sys.executable, "-m", "megatron", "plugins"], capture_output=True, text=True, check=True
    )
    assert "core (megatron-core 2026.11" in result.stdout
    layer_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("layer:"))
    assert "Lambda" in layer_line and "RGBtoGrey" in layer_line
    assert "storage: memory" in result.stdout


class Token:
    """A foreign object that only a plugin's serializer knows how to save."""

    def __init__(self, value):
        self.value = value


class TokenSerializer:
    name = "token"

    def claims(self, obj):
        return isinstance(obj, Token)

    def save(self, obj, archive, prefix):
        return {"file": archive.add(f"{prefix}/token.txt", str(obj.value).encode())}

    def load(self, meta, archive, options):
        return Token(int(archive.read(meta["file"])))

    def audit(self, meta, archive):
        return [f"token in {meta['file']}"]


class TokenLayer(megatron.layers.StatelessLayer):
    def __init__(self, token):
        self.token = token

    def transform(self, x):
        return x + self.token.value


class CountingExecutor:
    runs = 0

    def run(self, plan, feeds):
        from megatron.execution import LocalExecutor

        CountingExecutor.runs += 1
        return LocalExecutor().run(plan, feeds)


class EverythingPlugin:
    """A plugin implementing every registration hook, through the same door as any other."""

    @hookimpl
    def register_layers(self, register):
        register("TokenLayer", TokenLayer)

    @hookimpl
    def register_metrics(self, register):
        register("Constant", "megatron.metrics.base:Metric")

    @hookimpl
    def register_sources(self, register):
        register("Numbers", lambda n: {"x": np.arange(float(n))})

    @hookimpl
    def register_storage(self, register):
        register("mine", "megatron.storage.memory:MemoryStorage")

    @hookimpl
    def register_serializers(self, register):
        register("token", TokenSerializer)

    @hookimpl
    def register_executors(self, register):
        register("counting", CountingExecutor)

    @hookimpl
    def adapt_storage(self, obj, name, version):
        from megatron.storage import MemoryStorage

        return MemoryStorage(name, version) if isinstance(obj, Token) else None


def test_every_registration_hook_works_end_to_end(megatron_plugins, tmp_path):
    megatron_plugins(EverythingPlugin(), "everything")
    x = megatron.nodes.Input("x")
    layer = megatron.layers.TokenLayer(Token(5))
    pipeline = megatron.Pipeline(x, layer(x, "y"), name="hooks", storage="mine://", executor="counting")
    out = pipeline.transform(megatron.io.Numbers(3))
    assert out["y"].tolist() == [5.0, 6.0, 7.0] and CountingExecutor.runs == 1
    assert pipeline.storage.read(rows=[2])["y"].tolist() == [7.0]
    assert megatron.metrics.Constant is megatron.metrics.Metric
    path = pipeline.save(tmp_path)
    assert "token in artifacts/1/token.txt" in megatron.audit(path)
    loaded = megatron.load_pipeline(path, storage=Token(0))  # a foreign object a plugin claims as storage
    assert loaded.transform({"x": np.zeros(1)})["y"].tolist() == [5.0]
    assert loaded.storage.read(rows=[0])["y"].tolist() == [5.0]
