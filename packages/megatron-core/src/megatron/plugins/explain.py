"""Why a name no loaded plugin registers may be missing: an installed plugin that registers it
but failed to load, or one that the environment variables leave out."""

from __future__ import annotations

import re
import sys
from typing import Any

from megatron.plugins.loading import PluginFailure, SkippedPlugin
from megatron.plugins.registry import Kind


def explain_missing(
    kind: Kind, name: str, failures: list[PluginFailure], skipped: list[SkippedPlugin]
) -> str:
    """A sentence to append to the unknown-name error ("" when no plugin is to blame)."""
    for failure in failures:
        if (kind, name) in failure.attempted:
            return f" {failure.info} registers it, but failed to load and was dropped: {failure.error}."
    mentioning = [s for s in skipped if _mentions(s, name)]
    if mentioning:
        return "".join(
            f" {s.info} is installed and mentions {name!r}, but is not loaded: {s.reason}."
            for s in mentioning
        )
    by_reason: dict[str, list[str]] = {}
    for plugin in skipped:
        by_reason.setdefault(plugin.reason, []).append(str(plugin.info))
    parts = [f"{', '.join(infos)} ({reason})" for reason, infos in by_reason.items()]
    parts += [f"{f.info} (failed: {f.error})" for f in failures]
    return f" Installed but not loaded: {'; '.join(parts)}." if parts else ""


def _mentions(skipped: SkippedPlugin, name: str) -> bool:
    """Whether the source of a plugin that was not loaded mentions ``name``, read without
    importing anything."""
    text = _module_source(skipped.module, skipped.dist)
    return text is not None and re.search(rf"\b{re.escape(name)}\b", text) is not None


def _module_source(module: str, dist: Any) -> str | None:
    if not module:
        return None
    relative = module.replace(".", "/")
    paths: list[Any] = []
    if dist is not None:
        paths += [dist.locate_file(f"{relative}.py"), dist.locate_file(f"{relative}/__init__.py")]
    parent = module.rpartition(".")[0]
    if not parent or parent in sys.modules:  # finding a submodule would import its package
        import importlib.util

        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            paths.append(spec.origin)
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as file:
                return file.read()
        except OSError:
            continue
    return None
