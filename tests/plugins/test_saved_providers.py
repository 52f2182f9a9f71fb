"""Saved files record, per class, artifact reader and function, the plugin and distribution
(with its version) that provided it; loading resolves a name two plugins register by them, and
warns when the version differs. Files of the earlier format still load."""

import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megatron
from megatron.errors import PersistenceError, PluginConflictError
from megatron.nodes import Input
from megatron.persistence.providers import ProviderChangedWarning
from megatron.plugins import get_plugin_manager, hookimpl, reset_plugin_manager

DATA = Path(__file__).parent / "data"

PLUGIN = """
from megatron.plugins import hookimpl


@hookimpl
def register_layers(register):
    register("Scale", "{name}_layers:Scale")


@hookimpl
def register_serializers(register):
    register("token", "{name}_layers:TokenSerializer")
"""

LAYERS = """
import numpy as np
from megatron.layers import StatelessLayer


class Scale(StatelessLayer):
    def transform(self, x):
        return {factor} * x


class Token:
    def __init__(self, value):
        self.value = value


class TokenSerializer:
    name = "token"

    def claims(self, obj):
        return type(obj).__name__ == "Token"

    def save(self, obj, archive, prefix):
        return {{"file": archive.add(f"{{prefix}}/token.txt", str(obj.value).encode())}}

    def load(self, meta, archive, options):
        return Token(int(archive.read(meta["file"])) * {factor})

    def audit(self, meta, archive):
        return [f"token read by {name}"]


class Holder(StatelessLayer):
    def __init__(self, token):
        self.token = token

    def transform(self, x):
        return x + self.token.value
"""


@pytest.fixture
def conflict(megatron_distribution):
    """Two distributions that both register the layer 'Scale' (doubling or tripling) and the
    serializer 'token'."""
    for name, factor in (("one", 2), ("two", 3)):
        megatron_distribution(
            f"megatron-{name}",
            name,
            {
                f"{name}_plugin": PLUGIN.format(name=name),
                f"{name}_layers": LAYERS.format(name=name, factor=factor),
            },
            version="1.0",
        )
    import one_layers
    import two_layers

    return one_layers, two_layers


def description(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("pipeline.json"))


def rewrite(path, change):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    value = json.loads(members["pipeline.json"])
    change(value)
    members["pipeline.json"] = json.dumps(value).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_name_two_plugins_register_loads_by_the_recorded_plugin(conflict, tmp_path):
    one, two = conflict
    x = Input("x")
    pipeline = megatron.Pipeline(x, [one.Scale()(x, "doubled"), two.Scale()(x, "tripled")], name="conflict")
    with pytest.raises(PluginConflictError):
        megatron.layers.Scale  # the name alone is ambiguous
    path = pipeline.save(tmp_path)
    recorded = [(layer["class"], layer["plugin"]) for layer in description(path)["layers"]]
    assert recorded == [
        ("Scale", {"name": "one", "distribution": "megatron-one", "version": "1.0"}),
        ("Scale", {"name": "two", "distribution": "megatron-two", "version": "1.0"}),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = megatron.load_pipeline(path)
        lines = megatron.audit(path)
    assert [type(layer) for layer in loaded.layers] == [one.Scale, two.Scale]
    assert loaded.transform({"x": np.array([1.0, 2.0])})["tripled"].tolist() == [3.0, 6.0]
    assert "layer Scale (registered by megatron-one; also registered by megatron-two)" in lines
    assert "layer Scale (registered by megatron-two; also registered by megatron-one)" in lines
    assert not [line for line in lines if "REFUSED" in line or "refused" in line]


def test_another_version_of_the_recorded_plugin_loads_with_a_warning(conflict, tmp_path):
    one, _ = conflict
    x = Input("x")
    path = megatron.Pipeline(x, one.Scale()(x, "y"), name="versions").save(tmp_path)
    rewrite(path, lambda d: d["layers"][0]["plugin"].update(version="0.9"))
    with pytest.warns(
        ProviderChangedWarning,
        match=r"layers\[0\]: the layer 'Scale' was saved with plugin 'one' from megatron-one 0.9; "
        r"megatron-one 1.0 is installed",
    ):
        loaded = megatron.load_pipeline(path)
    assert type(loaded.layers[0]) is one.Scale
    assert (
        "layer Scale (registered by megatron-one; installed 1.0; saved with plugin 'one' from megatron-one 0.9; also registered by megatron-two)"
        in megatron.audit(path)
    )


def test_a_recorded_plugin_that_is_gone_is_refused_when_the_name_is_ambiguous(conflict, tmp_path):
    one, _ = conflict
    x = Input("x")
    path = megatron.Pipeline(x, one.Scale()(x, "y"), name="gone").save(tmp_path)
    rewrite(path, lambda d: d["layers"][0]["plugin"].update(name="old", distribution="megatron-old"))
    with pytest.raises(
        PersistenceError,
        match=r"saved with plugin 'old' from megatron-old 1.0, which is not installed; megatron-one 1.0 \(plugin 'one'\) and megatron-two",
    ):
        megatron.load_pipeline(path)
    assert any("layer Scale: REFUSED" in line for line in megatron.audit(path))


def test_a_recorded_plugin_that_is_gone_gives_way_to_the_only_one_registering_the_name(
    megatron_plugins, tmp_path
):
    x = Input("x")
    path = megatron.Pipeline(x, megatron.layers.ScalarMultiply(2)(x, "y"), name="moved").save(tmp_path)
    rewrite(path, lambda d: d["layers"][0]["plugin"].update(name="legacy", distribution="megatron-legacy"))
    with pytest.warns(
        ProviderChangedWarning,
        match=r"saved with plugin 'legacy' from megatron-legacy .* not installed; the one megatron-core",
    ):
        loaded = megatron.load_pipeline(path)
    assert loaded.transform({"x": np.ones(1)})["y"].tolist() == [2.0]


def test_an_artifact_is_read_by_the_plugin_that_wrote_it(conflict, tmp_path):
    one, _ = conflict
    x = Input("x")
    path = megatron.Pipeline(x, one.Holder(one.Token(5))(x, "y"), name="artifact").save(tmp_path)
    (config,) = [layer["config"] for layer in description(path)["layers"]]
    artifact = config["__dict__"][0][1]
    assert artifact["plugin"] == {"name": "one", "distribution": "megatron-one", "version": "1.0"}
    rewrite(
        path,
        lambda d: d["layers"][0]["config"]["__dict__"][0][1]["plugin"].update(
            name="two", distribution="megatron-two"
        ),
    )
    loaded = megatron.load_pipeline(path, custom_objects={"Holder": one.Holder})
    assert loaded.layers[0].token.value == 15  # two's reader: three times what was saved
    assert "token read by two" in megatron.audit(path)


def test_functions_record_the_distribution_that_ships_them(megatron_plugins, tmp_path):
    x = Input("x")
    path = megatron.Pipeline(x, megatron.layers.Lambda(np.sqrt)(x, "y"), name="functions").save(tmp_path)
    function = description(path)["layers"][0]["config"]["__dict__"][0][1]
    assert function["distribution"] == {"name": "numpy", "version": np.__version__}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        megatron.load_pipeline(path)
    rewrite(path, lambda d: d["layers"][0]["config"]["__dict__"][0][1]["distribution"].update(version="0.1"))
    with pytest.warns(
        ProviderChangedWarning,
        match=rf"the function 'sqrt' was saved with numpy 0.1; numpy {np.__version__} is installed",
    ):
        megatron.load_pipeline(path)
    assert any(
        line.endswith("(from custom_objects, or numpy; saved with numpy 0.1)")
        for line in megatron.audit(path)
    )


def test_a_file_of_the_earlier_format_still_loads(megatron_plugins):
    """Saved by the previous release (format 1: bare registered names)."""
    path = DATA / "format1-1.megatron"
    assert description(path)["format"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = megatron.load_pipeline(path)
    out = loaded.transform({"x": np.array([[-4.0, 1.0, 9.0]])})
    assert out["root"].tolist() == [[2.0, 1.0, 3.0]] and out["scaled"].tolist() == [[1.0, 0.5, 1.0]]
    assert loaded.evaluate({"x": np.array([[-4.0, 1.0, 9.0]])})["mae"] == pytest.approx(7 / 6)
    assert "layer Clip (registered by megatron-core)" in megatron.audit(path)


def as_format_1(value):
    value["format"] = 1
    for entry in value["layers"] + value["metrics"]:
        entry.pop("plugin")


def test_an_ambiguous_name_in_a_file_of_the_earlier_format_needs_custom_objects(conflict, tmp_path):
    one, _ = conflict
    x = Input("x")
    path = megatron.Pipeline(x, one.Scale()(x, "y"), name="earlier").save(tmp_path)
    rewrite(path, as_format_1)
    with pytest.raises(
        PersistenceError,
        match=r"'Scale', which megatron-one 1.0 \(plugin 'one'\) and megatron-two 1.0 \(plugin 'two'\) all register.*custom_objects=\{'Scale': ...\}",
    ):
        megatron.load_pipeline(path)
    loaded = megatron.load_pipeline(path, custom_objects={"Scale": one.Scale})
    assert loaded.transform({"x": np.ones(1)})["y"].tolist() == [2.0]


def test_a_file_of_a_newer_format_is_refused_with_a_reason(megatron_plugins, tmp_path):
    x = Input("x")
    path = megatron.Pipeline(x, megatron.layers.ScalarMultiply(2)(x, "y"), name="newer").save(tmp_path)
    rewrite(path, lambda d: d.update(format=3))
    with pytest.raises(PersistenceError, match="file format 3, newer than this megatron reads"):
        megatron.load_pipeline(path)


NAMES = ("Alpha", "Beta", "Gamma")


def make_plugin(number, names):
    classes = {
        name: type(name, (megatron.layers.StatelessLayer,), {"transform": lambda self, x, k=number: x + k})
        for name in names
    }

    class Plugin:
        @hookimpl
        def register_layers(self, register):
            for name, cls in classes.items():
                register(name, cls)

    return Plugin(), classes


@settings(
    max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    registered=st.lists(st.sets(st.sampled_from(NAMES), min_size=1), min_size=1, max_size=3),
    used=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(NAMES)), min_size=1, max_size=4),
)
def test_any_layer_of_any_plugin_loads_back_as_its_own_class(
    megatron_plugins, tmp_path_factory, registered, used
):
    reset_plugin_manager()
    manager = get_plugin_manager()
    plugins = []
    for number, names in enumerate(registered):
        plugin, classes = make_plugin(number, sorted(names))
        manager.register(plugin, f"p{number}", distribution=f"megatron-p{number}", version="1.0")
        plugins.append(classes)
    chosen = [plugins[i % len(plugins)].get(name) for i, name in used]
    chosen = [cls for cls in chosen if cls is not None] or [next(iter(plugins[0].values()))]
    x = Input("x")
    node, outputs = x, []
    for i, cls in enumerate(chosen):
        node = cls()(node, f"out{i}")
        outputs.append(node)
    pipeline = megatron.Pipeline(x, outputs, name="mixed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = megatron.load_pipeline(pipeline.save(tmp_path_factory.mktemp("saved")))
    assert [type(layer) for layer in loaded.layers] == chosen
    data = {"x": np.zeros(2)}
    assert loaded.transform(data)[-1].tolist() == pipeline.transform(data)[-1].tolist()


def test_summary_of_a_file_with_an_ambiguous_name_reads_it(conflict, tmp_path):
    from megatron.persistence.describe import outline_file
    from megatron.summary import render

    one, two = conflict
    x = Input("x")
    path = megatron.Pipeline(x, [one.Scale()(x, "a"), two.Scale()(x, "b")], name="outlined").save(tmp_path)
    text = render(outline_file(path))
    assert "Scale" in text and "outlined" in text
