"""Shared fixtures: fake installed distributions (``megatron_plugins`` comes from
megatron-core's own pytest plugin)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def install_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, megatron_plugins: Callable[..., None]
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
