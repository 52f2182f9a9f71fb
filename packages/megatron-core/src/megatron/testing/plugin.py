"""The pytest plugin installed with megatron-core: fixtures for testing megatron plugins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from megatron.plugins import get_plugin_manager, reset_plugin_manager


@pytest.fixture
def megatron_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Register plugin objects for one test only: ``megatron_plugins(plugin, name='mine')``.

    Installed plugins are loaded afresh for the test (ignoring ``MEGATRON_PLUGINS`` and
    ``MEGATRON_DISABLE_PLUGINS``) and forgotten after it.
    """
    monkeypatch.delenv("MEGATRON_PLUGINS", raising=False)
    monkeypatch.delenv("MEGATRON_DISABLE_PLUGINS", raising=False)
    reset_plugin_manager()

    def register(plugin: Any, name: str) -> None:
        get_plugin_manager().register(plugin, name)

    yield register
    reset_plugin_manager()
