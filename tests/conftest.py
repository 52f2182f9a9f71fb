"""Shared fixtures: a fresh plugin manager, and fake installed distributions."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from megatron.plugins import reset_plugin_manager


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Plugins are loaded anew inside the test and forgotten after it."""
    monkeypatch.delenv("MEGATRON_PLUGINS", raising=False)
    monkeypatch.delenv("MEGATRON_DISABLE_PLUGINS", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def install_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_plugins: None
) -> Callable[..., Path]:
    """Install a fake distribution: a module and a dist-info with a ``megatron`` entry point,
    on ``sys.path`` for the test only, as ``pip install`` would lay them out."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(dist: str, module: str, source: str, entry_point: str | None = None) -> Path:
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        name = entry_point or module
        (info / "entry_points.txt").write_text(f"[megatron]\n{name} = {module}\n")
        monkeypatch.delitem(sys.modules, module, raising=False)
        return site

    return install
