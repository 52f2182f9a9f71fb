"""``storage='default'`` comes from a plugin (``default_storage_url``): ``MEGATRON_STORAGE``
overrides it, plugins that disagree are a conflict, a broken answer names its plugin, and with
no plugin answering the error says what to install or pass."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron.errors import MissingDependencyError, PluginConflictError, PluginError, StorageError
from megatron.plugins import get_plugin_manager, hookimpl, reset_plugin_manager
from megatron.plugins import hints as hints_module
from megatron.storage import MemoryStorage, default_url, open_storage


class Scratch(MemoryStorage):
    """In-memory storage under the scheme scratch://."""


class ScratchDefault:
    def __init__(self, url="scratch://"):
        self.url = url

    @hookimpl
    def register_storage(self, register):
        register("scratch", Scratch)

    @hookimpl
    def default_storage_url(self):
        return self.url


@pytest.fixture
def core_only(monkeypatch):
    """Only the built-in plugin loads: no installed plugin gives a default storage."""
    monkeypatch.setenv("MEGATRON_PLUGINS", "core")
    monkeypatch.delenv("MEGATRON_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("MEGATRON_STORAGE", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def pipeline(storage):
    x = megatron.nodes.Input("x")
    return megatron.Pipeline(x, megatron.layers.ScalarMultiply(2)(x, "y"), name="defaults", storage=storage)


def test_a_third_party_plugin_provides_the_default_storage(core_only):
    get_plugin_manager().register(ScratchDefault(), "scratch")
    assert default_url() == "scratch://"
    assert isinstance(pipeline("default").storage, Scratch)


def test_megatron_storage_overrides_every_plugin(core_only, monkeypatch):
    get_plugin_manager().register(ScratchDefault(), "scratch")
    monkeypatch.setenv("MEGATRON_STORAGE", "memory://")
    storage = pipeline("default").storage
    assert type(storage) is MemoryStorage


def test_two_plugins_that_disagree_are_a_conflict(core_only, monkeypatch):
    manager = get_plugin_manager()
    manager.register(ScratchDefault("scratch://"), "first")
    manager.register(ScratchDefault("memory://"), "second")
    with pytest.raises(PluginConflictError, match=r"'first'.*'scratch://' and .*'second'.*'memory://'"):
        pipeline("default")
    monkeypatch.setenv("MEGATRON_STORAGE", "memory://")  # settles it
    assert type(pipeline("default").storage) is MemoryStorage


def test_a_broken_answer_names_its_plugin(core_only):
    get_plugin_manager().register(ScratchDefault(url=42), "broken")
    with pytest.raises(
        PluginError, match=r"plugin 'broken' .* returned a builtins.int from default_storage_url"
    ):
        default_url()


def test_without_a_default_the_catalogue_says_what_to_install(core_only):
    with pytest.raises(MissingDependencyError, match=r"storage='default' comes from .*Or pass a storage URL"):
        pipeline("default")


def test_without_a_default_or_a_catalogued_one_a_storage_error_says_what_to_pass(core_only, monkeypatch):
    monkeypatch.setattr(hints_module, "KNOWN", ())  # a catalogue that knows no default storage
    with pytest.raises(
        StorageError, match=r"no installed plugin provides one.*'memory://'.*MEGATRON_STORAGE"
    ):
        open_storage("default", "p", None)


_names = itertools.count()
URLS = st.sampled_from(["scratch://", "memory://", "scratch:///a"])


@settings(max_examples=40, deadline=None)
@given(answers=st.lists(st.one_of(st.none(), URLS), max_size=3), override=st.one_of(st.none(), URLS))
def test_the_default_is_the_one_url_the_plugins_agree_on(answers, override):
    """Whatever the installed and registered plugins answer: MEGATRON_STORAGE wins; else one
    URL opens, several are a conflict, none is an error saying what to install."""
    manager = get_plugin_manager()
    before = os.environ.pop("MEGATRON_STORAGE", None)
    installed = manager.default_storage_url()  # megatron-sql's, where it is installed
    names = [f"default_{next(_names)}" for _ in answers]
    try:
        if override is not None:
            os.environ["MEGATRON_STORAGE"] = override
        for name, answer in zip(names, answers):
            manager.register(ScratchDefault(answer), name)
        agreed = {url for url in [installed, *answers] if url is not None}
        if override is not None:
            assert default_url() == override
        elif len(agreed) > 1:
            with pytest.raises(PluginConflictError, match="disagree on the default storage"):
                default_url()
        elif agreed:
            assert default_url() == agreed.pop()
        else:
            with pytest.raises((MissingDependencyError, StorageError), match="storage='default'"):
                default_url()
    finally:
        for name in names:
            manager.unregister(name)
        os.environ.pop("MEGATRON_STORAGE", None)
        if before is not None:
            os.environ["MEGATRON_STORAGE"] = before
