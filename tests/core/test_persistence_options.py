"""Serializer options: ``serializer_options`` by format name, each serializer given its own
entry; ``trusted=`` and ``custom_objects=`` filling the entries serializers declare as
shortcuts; an option a serializer does not read refused, naming the option and the
serializer. And the public door through which loading puts back what a layer learned."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megatron
from megatron.errors import PersistenceError
from megatron.layers import StatefulLayer, StatelessLayer
from megatron.nodes import Input
from megatron.persistence import Serializer, audit_report
from megatron.persistence.options import combine_options
from megatron.plugins import hookimpl


class Offset:
    """A foreign object that only a plugin's serializer saves."""

    def __init__(self, value):
        self.value = value


class OffsetSerializer(Serializer):
    """Reads its ``scale`` option; ``trusted=`` fills its ``allowed`` option."""

    name = "offset"
    options = ("scale", "allowed")
    shortcuts = {"trusted": "allowed"}  # noqa: RUF012
    given: list = []  # noqa: RUF012

    def claims(self, obj):
        return isinstance(obj, Offset)

    def save(self, obj, archive, prefix):
        return {"file": archive.add(f"{prefix}/offset.txt", str(obj.value).encode())}

    def load(self, meta, archive, options):
        options = self.check_options(options)
        OffsetSerializer.given.append(options)
        return Offset(float(archive.read(meta["file"])) * options.get("scale", 1))

    def audit(self, meta, archive, options):
        return [f"offset in {meta['file']}, allowed {options.get('allowed')}"]


class Tag:
    def __init__(self, text):
        self.text = text


class TagSerializer:
    """A serializer that does not derive from Serializer: given its entry as it is."""

    name = "tag"
    given: list = []  # noqa: RUF012

    def claims(self, obj):
        return isinstance(obj, Tag)

    def save(self, obj, archive, prefix):
        return {"file": archive.add(f"{prefix}/tag.txt", obj.text.encode())}

    def load(self, meta, archive, options):
        TagSerializer.given.append(dict(options))
        return Tag(archive.read(meta["file"]).decode())

    def audit(self, meta, archive):
        return [f"tag in {meta['file']}"]


class AddOffset(StatelessLayer):
    def __init__(self, offset, tag=None):
        self.offset = offset
        self.tag = tag

    def transform(self, x):
        return x + self.offset.value


class ClassySerializer(Serializer):
    """Takes ``custom_objects=`` as its ``custom_objects`` option."""

    name = "classy"
    options = ("custom_objects",)
    shortcuts = {"custom_objects": "custom_objects"}  # noqa: RUF012

    def claims(self, obj):
        return False


class SerializersPlugin:
    @hookimpl
    def register_layers(self, register):
        register("AddOffset", AddOffset)

    @hookimpl
    def register_serializers(self, register):
        register("offset", OffsetSerializer)
        register("tag", TagSerializer)
        register("classy", ClassySerializer)


@pytest.fixture
def registered(megatron_plugins):
    megatron_plugins(SerializersPlugin(), "serializers")


@pytest.fixture
def saved(registered, tmp_path):
    OffsetSerializer.given.clear()
    TagSerializer.given.clear()
    x = Input("x")
    pipeline = megatron.Pipeline(x, AddOffset(Offset(2.0), Tag("a"))(x, "y"), name="offsets")
    return pipeline.save(tmp_path)


def output(pipeline):
    return pipeline.transform({"x": np.zeros(1)})["y"].tolist()


def test_each_serializer_is_given_its_own_entry(saved):
    loaded = megatron.load_pipeline(
        saved, serializer_options={"offset": {"scale": 10}, "tag": {"colour": "red"}}
    )
    assert output(loaded) == [20.0]
    assert OffsetSerializer.given == [{"scale": 10}]
    assert TagSerializer.given == [{"colour": "red"}]  # not a Serializer: its entry as given
    assert output(megatron.load_pipeline(saved)) == [2.0]
    assert OffsetSerializer.given[-1] == {} and TagSerializer.given[-1] == {}


def test_an_option_a_serializer_does_not_read_is_refused_naming_it_and_the_serializer(saved):
    with pytest.raises(PersistenceError) as refused:
        megatron.load_pipeline(saved, serializer_options={"offset": {"scael": 10}})
    message = str(refused.value)
    assert "option 'scael'" in message and "'offset' serializer" in message
    assert "OffsetSerializer" in message and "Did you mean 'scale'?" in message
    assert "Its options: 'allowed', 'scale'" in message
    with pytest.raises(PersistenceError, match="option 'scael'"):  # before anything is read
        megatron.load_pipeline(saved.parent / "missing.megatron", serializer_options={"offset": {"scael": 1}})
    with pytest.raises(PersistenceError, match="option 'scael'"):  # audit checks them too
        audit_report(saved, serializer_options={"offset": {"scael": 1}})


def test_options_for_a_serializer_no_plugin_registers_are_refused(saved):
    with pytest.raises(
        PersistenceError,
        match=r"names the serializer 'ofset', which no installed plugin.*Did you mean 'offset'\?",
    ):
        megatron.load_pipeline(saved, serializer_options={"ofset": {"scale": 10}})


@pytest.mark.parametrize(
    ("options", "refused"),
    [
        (["offset"], "takes a mapping of serializer format names.*got a list"),
        ({"offset": ["scale"]}, r"got 'offset': a list"),
        ({"offset": {1: 2}}, r"serializer_options\['offset'\] has an option name that is not a string"),
    ],
)
def test_malformed_serializer_options_are_refused(saved, options, refused):
    with pytest.raises(PersistenceError, match=refused):
        megatron.load_pipeline(saved, serializer_options=options)


def test_a_shortcut_and_the_mapping_give_the_same_result(saved):
    by_shortcut = megatron.load_pipeline(saved, trusted=["a", "b"])
    by_mapping = megatron.load_pipeline(saved, serializer_options={"offset": {"allowed": ["a", "b"]}})
    assert OffsetSerializer.given == [{"allowed": ["a", "b"]}] * 2
    assert output(by_shortcut) == output(by_mapping)
    assert by_shortcut.fingerprint == by_mapping.fingerprint
    both = megatron.load_pipeline(
        saved, trusted=["b", "c"], serializer_options={"offset": {"allowed": ["a", "b"]}}
    )
    assert OffsetSerializer.given[-1] == {"allowed": ["a", "b", "c"]} and output(both) == [2.0]
    lines = audit_report(saved, serializer_options={"offset": {"allowed": ["a"]}}).lines
    assert (
        "offset in artifacts/1/offset.txt, allowed ['a']" in lines and "tag in artifacts/2/tag.txt" in lines
    )


def test_custom_objects_fills_the_serializers_that_take_it_and_a_clash_is_refused(saved):
    class Other:
        pass

    combined = combine_options({"offset": {"scale": 2}}, custom_objects={"Other": Other})
    assert combined["offset"] == {"scale": 2} and combined["classy"] == {"custom_objects": {"Other": Other}}
    given = combine_options({"classy": {"custom_objects": {"Mine": int}}}, custom_objects={"Other": Other})
    assert given["classy"] == {"custom_objects": {"Mine": int, "Other": Other}}
    with pytest.raises(PersistenceError, match=r"give 'Other' two different values: give it once"):
        combine_options({"classy": {"custom_objects": {"Other": object}}}, custom_objects={"Other": Other})
    with pytest.raises(
        PersistenceError, match=r"trusted= and serializer_options\['offset'\]\['allowed'\] are both given"
    ):
        combine_options({"offset": {"allowed": "a"}}, trusted=["b"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    given_list=st.lists(st.text(max_size=5), max_size=4),
    shortcut=st.lists(st.text(max_size=5), max_size=4),
    option=st.text(min_size=1, max_size=8).filter(lambda name: name not in ("scale", "allowed")),
)
def test_shortcuts_join_the_mapping_and_every_unknown_option_is_refused(
    registered, given_list, shortcut, option
):
    combined = combine_options({"offset": {"allowed": given_list}}, trusted=shortcut)["offset"]["allowed"]
    assert combined == given_list + [value for value in shortcut if value not in given_list]
    assert combine_options(None, trusted=shortcut)["offset"] == {"allowed": shortcut}
    assert combine_options({"offset": {"allowed": shortcut}}) == {"offset": {"allowed": shortcut}}
    with pytest.raises(PersistenceError) as refused:
        combine_options({"offset": {option: 1}}, trusted=shortcut)
    assert f"option {option!r}" in str(refused.value) and "'offset' serializer" in str(refused.value)


# The public door: putting back what a layer learned ----------------------------------------------


class Count(StatefulLayer):
    def partial_fit(self, x):
        self.metadata["n"] = self.metadata.get("n", 0) + len(x)

    def transform(self, x):
        return x * 0 + self.metadata["n"]


def test_restore_puts_back_what_a_layer_learned_with_the_token_given():
    layer = Count()
    layer.restore({"n": 3}, fitted=True, state_token="abc", recorded_token="file-token")
    assert layer.metadata == {"n": 3} and layer.fitted
    assert layer.state_token == "abc" and layer.recorded_token == "file-token"
    layer.partial_fit(np.zeros(2))  # learning renews the token: the file's token no longer names it
    assert layer.metadata["n"] == 5 and layer.state_token != "abc" and layer.recorded_token is None
    fresh = Count()
    fresh.restore({"n": 1}, fitted=False)
    assert not fresh.fitted and fresh.recorded_token is None and len(fresh.state_token) == 32


def test_a_loaded_layer_is_restored_through_the_public_door(tmp_path, monkeypatch):
    x = Input("x")
    pipeline = megatron.Pipeline(x, Count()(x, "n"), name="counting")
    pipeline.fit({"x": np.zeros(4)})
    path = pipeline.save(tmp_path)
    calls = []
    real = StatefulLayer.restore
    monkeypatch.setattr(
        StatefulLayer, "restore", lambda self, *a, **k: calls.append(k) or real(self, *a, **k)
    )
    loaded = megatron.load_pipeline(path, custom_objects={"Count": Count})
    assert output_n(loaded) == [4.0] and loaded.layers[0].fitted
    assert calls == [
        {"state_token": loaded.layers[0].state_token, "recorded_token": calls[0]["recorded_token"]}
    ]
    assert loaded.layers[0].state_token == pipeline.layers[0].state_token  # saving gave it the same token


def output_n(pipeline):
    return pipeline.transform({"x": np.zeros(1)})["n"].tolist()


def test_a_file_giving_fitted_state_to_a_layer_that_learns_nothing_is_refused(tmp_path):
    import json
    import zipfile

    x = Input("x")
    path = megatron.Pipeline(x, megatron.layers.Lambda(np.negative)(x, "y"), name="lambda").save(tmp_path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    description = json.loads(members["pipeline.json"])
    description["layers"][0]["state"] = {"metadata": {"__dict__": []}, "fitted": True, "token": "t"}
    members["pipeline.json"] = json.dumps(description).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(
        PersistenceError,
        match=r"layers\[0\] \(Lambda\): the file gives it fitted state, but it is not a StatefulLayer",
    ):
        megatron.load_pipeline(path)
