"""Finding the installed plugins, and what loading made of each: loaded, dropped, left out.

The built-in plugin ``core`` comes first (it is registered directly, so that a source tree
that is not installed keeps it), then the entry points of the ``megatron`` group in order of
name, whatever order ``sys.path`` lists them in: the first plugin to register a name wins
when a pipeline file does not say which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from megatron.plugins.registry import Kind, PluginInfo

if TYPE_CHECKING:
    from importlib.metadata import Distribution

ENTRY_POINT_GROUP = "megatron"
BUILTIN = "core"
BUILTIN_DISTRIBUTION = "megatron-core"
BUILTIN_MODULE = "megatron.plugins.builtin"


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded, or failed, and megatron goes on without it; or the
    environment variables that select plugins name none that is installed."""


@attrs.frozen
class PluginFailure:
    """A plugin that was dropped whole: why, and the names it had registered before failing."""

    info: PluginInfo
    error: str
    attempted: tuple[tuple[Kind, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.info.name} ({self.info.distribution} {self.info.version}): {self.error}"


@attrs.frozen
class SkippedPlugin:
    """An installed plugin that the environment variables leave out."""

    info: PluginInfo
    reason: str
    module: str = attrs.field(default="", repr=False)
    dist: Distribution | None = attrs.field(default=None, repr=False, eq=False)


@attrs.frozen
class Candidate:
    """An installed plugin, not loaded yet: ``load()`` imports its module."""

    info: PluginInfo
    load: Callable[[], Any]
    module: str
    dist: Distribution | None = None

    def skipped(self, reason: str) -> SkippedPlugin:
        return SkippedPlugin(self.info, reason, self.module, self.dist)


def installed_candidates() -> list[Candidate]:
    """The built-in plugin, then every entry point of the ``megatron`` group, by name."""
    from importlib import metadata  # here, not at import: it pulls in email, zipfile, socket...

    candidates = [_builtin(metadata)]
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    for ep in sorted(found, key=lambda ep: (ep.name, ep.dist.name if ep.dist is not None else "")):
        if ep.name == BUILTIN and ep.value == BUILTIN_MODULE:
            continue  # the built-in plugin, registered directly
        dist = ep.dist
        info = PluginInfo(
            ep.name,
            dist.name if dist is not None else "unknown distribution",
            dist.version if dist is not None else "",
        )
        candidates.append(Candidate(info, ep.load, ep.module, dist))
    return candidates


def _builtin(metadata: Any) -> Candidate:
    try:
        dist = metadata.distribution(BUILTIN_DISTRIBUTION)
        version = dist.version
    except metadata.PackageNotFoundError:  # run from a source tree, not installed
        dist, version = None, "(not installed)"

    def load() -> Any:
        from megatron.plugins import builtin

        return builtin

    # the module whose source names what the built-ins register (read when core is left out)
    names = "megatron.plugins.core_names"
    return Candidate(PluginInfo(BUILTIN, BUILTIN_DISTRIBUTION, version), load, names, dist)
