"""The registry: what each plugin registered, by kind and name, resolved lazily."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any, Literal

import attrs

from megatron.errors import MegatronError, PluginConflictError, PluginError, UnknownNameError
from megatron.suggest import did_you_mean

Kind = Literal["layer", "metric", "source", "storage", "serializer", "executor", "command"]
KINDS: tuple[Kind, ...] = ("layer", "metric", "source", "storage", "serializer", "executor", "command")

WhyMissing = Callable[[Kind, str], "MegatronError | str"]
"""Why a name is not registered: an error to raise instead of the registry's own (a plugin that
provides it is not installed), or a sentence to append to it ("" when nothing is known)."""


def import_path(path: str) -> Any:
    """The object at a lazy ``"module:attribute"`` path (``attribute`` may be dotted, or absent
    for the module itself), imported now. Raises what the import or lookup raises."""
    module, _, attribute = path.partition(":")
    obj = importlib.import_module(module)
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj


def canonical_name(name: str) -> str:
    """A distribution or plugin name as packaging compares them: lower case, runs of ``-_.``
    as one ``-`` (``Megatron_Triple`` and ``megatron-triple`` are one distribution)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@attrs.frozen
class PluginInfo:
    """An installed plugin: its name, the distribution that ships it, and that version."""

    name: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"plugin {self.name!r} ({self.distribution} {self.version or 'of unknown version'})"

    def same_distribution(self, other: PluginInfo) -> bool:
        return canonical_name(self.distribution) == canonical_name(other.distribution)


@attrs.define
class Entry:
    """One registered name: its target (an object or a ``"module:attribute"`` path) and origin."""

    kind: Kind
    name: str
    target: Any
    plugin: str
    distribution: str
    version: str = ""

    @property
    def provider(self) -> PluginInfo:
        """The plugin that registered the name, with its distribution and version."""
        return PluginInfo(self.plugin, self.distribution, self.version)

    def resolve(self) -> Any:
        if not isinstance(self.target, str):
            return self.target
        try:
            obj = import_path(self.target)
        except Exception as exc:
            raise PluginError(
                f"Plugin {self.plugin!r} (distribution {self.distribution}) registers {self.kind} "
                f"{self.name!r} at {self.target!r}, which cannot be imported: {exc}"
            ) from exc
        self.target = obj
        return obj

    def is_target(self, obj: Any) -> bool:
        """Whether ``obj`` is what this entry registers, without importing a lazy target."""
        if self.target is obj:
            return True
        path = f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"
        return isinstance(self.target, str) and self.target == path


class Registry:
    """Names registered by plugins, per kind. A name registered twice is a conflict, raised
    when that name is used (other names keep working)."""

    def __init__(self, why_missing: WhyMissing | None = None) -> None:
        self._entries: dict[Kind, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self._conflicts: dict[tuple[Kind, str], list[Entry]] = {}
        self._why_missing = why_missing

    def add(self, entry: Entry) -> None:
        existing = self._entries[entry.kind].get(entry.name)
        if existing is not None:
            if existing.target is entry.target or existing.target == entry.target:
                return
            self._conflicts.setdefault((entry.kind, entry.name), [existing]).append(entry)
            return
        self._entries[entry.kind][entry.name] = entry

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: Kind) -> list[Entry]:
        return [self._entries[kind][name] for name in self.names(kind)]

    @property
    def conflicts(self) -> dict[tuple[Kind, str], list[Entry]]:
        return dict(self._conflicts)

    def candidates(self, kind: Kind, name: str) -> list[Entry]:
        """Every entry registering ``name``: one, several under a conflict, or none."""
        clash = self._conflicts.get((kind, name))
        if clash:
            return list(clash)
        entry = self._entries[kind].get(name)
        return [] if entry is None else [entry]

    def entry(self, kind: Kind, name: str) -> Entry:
        clash = self._conflicts.get((kind, name))
        if clash:
            owners = " and ".join(f"{e.distribution} (plugin {e.plugin!r})" for e in clash)
            raise PluginConflictError(
                f"The {kind} {name!r} is registered by both {owners}. Uninstall one, or block "
                f"one with MEGATRON_DISABLE_PLUGINS={clash[-1].plugin}."
            )
        try:
            return self._entries[kind][name]
        except KeyError:
            why = self._why_missing(kind, name) if self._why_missing is not None else ""
            if isinstance(why, MegatronError):
                raise why from None
            hint = did_you_mean(name, self._entries[kind])
            known = ", ".join(self.names(kind)) or "none"
            raise UnknownNameError(
                f"No installed plugin registers a {kind} named {name!r}.{hint} Installed: {known}.{why}"
            ) from None

    def get(self, kind: Kind, name: str) -> Any:
        """The object registered as ``name``, imported on first use."""
        return self.entry(kind, name).resolve()

    def find(self, kind: Kind, obj: Any) -> Entry | None:
        """The entry registered for ``obj`` (e.g. a layer class), without importing others;
        under a conflict, the entry of the plugin that registers ``obj`` itself."""
        for entry in self._entries[kind].values():
            if entry.is_target(obj):
                return entry
        for (clash_kind, _), clash in self._conflicts.items():
            if clash_kind == kind:
                for entry in clash:
                    if entry.is_target(obj):
                        return entry
        return None
