"""The pytest plugin installed with megatron-core: fixtures for testing megatron plugins.

``megatron_plugins`` registers plugin objects for one test; ``megatron_distribution``
installs a whole plugin distribution (modules and a ``.dist-info`` with its entry point, as
pip lays them out) for one test, so that a plugin's tests can show how megatron behaves next
to another plugin, a broken one included.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
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


@pytest.fixture
def megatron_distribution(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, megatron_plugins: Any
) -> Iterator[Callable[..., Path]]:
    """Install a plugin distribution for one test only, and return the folder it is installed in
    (put it on ``PYTHONPATH`` to show the plugin to a subprocess, such as ``megatron plugins``)::

        site = megatron_distribution(
            "megatron-broken", "broken", {"broken_plugin": "raise ImportError('no such thing')"}
        )

    ``modules`` maps module names (dotted names make packages) to their source; the entry point
    ``plugin`` points at ``module`` (by default the first one). The plugin manager is reset, so
    the next use of megatron loads the distribution.
    """
    site = tmp_path_factory.mktemp("site-packages")
    monkeypatch.syspath_prepend(str(site))
    installed: list[str] = []

    def install(
        distribution: str,
        plugin: str,
        modules: Mapping[str, str],
        *,
        version: str = "1.0.0",
        module: str | None = None,
    ) -> Path:
        for name, source in modules.items():
            parts = name.split(".")
            folder = site.joinpath(*parts[:-1])
            for depth in range(1, len(parts)):
                package = site.joinpath(*parts[:depth])
                package.mkdir(exist_ok=True)
                (package / "__init__.py").touch()
            (folder / f"{parts[-1]}.py").write_text(textwrap.dedent(source))
            for depth in range(1, len(parts) + 1):
                installed.append(".".join(parts[:depth]))
                monkeypatch.delitem(sys.modules, installed[-1], raising=False)
        info = site / f"{re.sub(r'[-_.]+', '_', distribution)}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
        target = module or next(iter(modules))
        (info / "entry_points.txt").write_text(f"[megatron]\n{plugin} = {target}\n")
        reset_plugin_manager()
        return site

    yield install
    for name in installed:  # what the test imported from the distribution goes with it
        sys.modules.pop(name, None)
