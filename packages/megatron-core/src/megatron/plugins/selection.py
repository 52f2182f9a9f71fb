"""Which installed plugins to load, by two environment variables; each takes comma-separated
plugin names (the entry point's name, as ``megatron plugins`` lists it) or distribution names:

``MEGATRON_DISABLE_PLUGINS``
    Plugins never to load (``core`` blocks the built-ins too).
``MEGATRON_PLUGINS``
    Plugins to load, none other; the built-in ``core`` is always loaded unless disabled.

A name that matches no installed plugin is warned about.
"""

from __future__ import annotations

import os

import attrs

from megatron.plugins.loading import BUILTIN, Candidate, SkippedPlugin
from megatron.plugins.registry import PluginInfo, canonical_name
from megatron.suggest import did_you_mean

DISABLE = "MEGATRON_DISABLE_PLUGINS"
ALLOW = "MEGATRON_PLUGINS"


@attrs.frozen
class Selection:
    """The plugins an environment variable names (``None``: it is not set)."""

    variable: str
    names: tuple[str, ...] | None

    @classmethod
    def from_env(cls, variable: str) -> Selection:
        value = os.environ.get(variable)
        if value is None:
            return cls(variable, None)
        return cls(variable, tuple(part.strip() for part in value.split(",") if part.strip()))

    def matches(self, info: PluginInfo) -> bool:
        if self.names is None:
            return False
        wanted = {canonical_name(name) for name in self.names}
        return canonical_name(info.name) in wanted or canonical_name(info.distribution) in wanted

    def shown(self) -> str:
        return f"{self.variable}={','.join(self.names or ())}"

    def problems(self, installed: list[PluginInfo]) -> list[str]:
        """Warnings for names that match no installed plugin (and for an empty allow-list)."""
        if self.names is None:
            return []
        if not self.names and self.variable == ALLOW:
            return [
                f"{ALLOW} is set but names no plugin, so only the built-in plugin '{BUILTIN}' "
                f"loads. Unset it to load every installed plugin, or set {ALLOW}={BUILTIN} to "
                "load only the built-ins without this warning."
            ]
        known = {canonical_name(i.name) for i in installed} | {
            canonical_name(i.distribution) for i in installed
        }
        choices = sorted({i.name for i in installed} | {i.distribution for i in installed})
        listed = ", ".join(sorted(f"{i.name} ({i.distribution})" for i in installed)) or "none"
        return [
            f"{self.variable} names {name!r}, which is neither an installed megatron plugin nor "
            f"the distribution of one.{did_you_mean(name, choices)} Installed plugins (distribution): "
            f"{listed}."
            for name in self.names
            if canonical_name(name) not in known
        ]


def select(candidates: list[Candidate]) -> tuple[list[Candidate], list[SkippedPlugin], list[str]]:
    """The candidates to load, those the environment leaves out, and warnings about the
    environment variables (names that match nothing)."""
    disabled, allowed = Selection.from_env(DISABLE), Selection.from_env(ALLOW)
    installed = [candidate.info for candidate in candidates]
    notes = disabled.problems(installed) + allowed.problems(installed)
    chosen: list[Candidate] = []
    skipped: list[SkippedPlugin] = []
    for candidate in candidates:
        if disabled.matches(candidate.info):
            skipped.append(candidate.skipped(f"{disabled.shown()} names it"))
        elif (
            allowed.names is not None
            and candidate.info.name != BUILTIN
            and not allowed.matches(candidate.info)
        ):
            skipped.append(candidate.skipped(f"{allowed.shown()} does not name it"))
        else:
            chosen.append(candidate)
    return chosen, skipped, notes
