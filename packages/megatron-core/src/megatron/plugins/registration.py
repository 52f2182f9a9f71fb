"""Running a plugin's ``register_*`` hooks: the ``register(name, target)`` callback each one
receives, which checks the name and target, and collects the entries."""

from __future__ import annotations

import re
from typing import Any

import pluggy

from megatron.errors import PluginError
from megatron.plugins.commands import Command
from megatron.plugins.hooks import HookFailed, call
from megatron.plugins.registry import KINDS, Entry, Kind, PluginInfo

HOOK_OF_KIND: dict[Kind, str] = {
    "layer": "register_layers",
    "metric": "register_metrics",
    "source": "register_sources",
    "storage": "register_storage",
    "serializer": "register_serializers",
    "executor": "register_executors",
    "command": "register_commands",
}
assert set(HOOK_OF_KIND) == set(KINDS)

_IDENTIFIER = (re.compile(r"[A-Za-z][A-Za-z0-9_]*"), "a Python identifier (it becomes an attribute)")
_PLAIN = (re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*"), "a name of letters and digits")
NAME_OF_KIND: dict[Kind, tuple[re.Pattern[str], str]] = {
    "layer": _IDENTIFIER,
    "metric": _IDENTIFIER,
    "source": _IDENTIFIER,
    "storage": (re.compile(r"[A-Za-z][A-Za-z0-9+.-]*"), "a URL scheme such as 'memory' or 'mydb+driver'"),
    "serializer": _PLAIN,
    "executor": _PLAIN,
    "command": (re.compile(r"[a-z][a-z0-9-]*"), "a command name of lower-case letters, digits and '-'"),
}
_TARGET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_.]*)?")


class Register:
    """The ``register(name, target)`` callback handed to one ``register_*`` hook call."""

    def __init__(self, kind: Kind, hook: str, info: PluginInfo, entries: list[Entry]) -> None:
        self.kind, self.hook, self.info, self.entries = kind, hook, info, entries
        self.open = True

    def __call__(self, name: str, target: Any) -> None:
        pattern, wanted = NAME_OF_KIND[self.kind]
        if not self.open:
            raise PluginError(f"{self.info}: register() was called after {self.hook} returned")
        if not isinstance(name, str) or not pattern.fullmatch(name):
            raise PluginError(f"{self.hook}: register() takes as name {wanted}; got {name!r}")
        self._check_target(name, target)
        self.entries.append(
            Entry(self.kind, name, target, self.info.name, self.info.distribution, self.info.version)
        )

    def _check_target(self, name: str, target: Any) -> None:
        if target is None:
            raise PluginError(f"{self.hook}: register({name!r}, None): the target is missing")
        if self.kind == "command":
            if not isinstance(target, Command):
                raise PluginError(
                    f"{self.hook}: register({name!r}, target) takes a megatron.plugins.Command; got "
                    f"{type(target).__module__}.{type(target).__qualname__}"
                )
            target = target.run
        if isinstance(target, str) and not _TARGET.fullmatch(target):
            raise PluginError(
                f"{self.hook}: register({name!r}, target) takes the object itself or a lazy "
                f"'module:attribute' path; got {target!r}"
            )


def collect(pm: pluggy.PluginManager, plugin: Any, info: PluginInfo) -> list[Entry]:
    """Run the plugin's ``register_*`` hooks: what they register. A hook that raises, or
    registers a bad name or target, raises :class:`HookFailed` with the entries so far."""
    entries: list[Entry] = []
    for kind, hook in HOOK_OF_KIND.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            if impl.plugin is not plugin:
                continue
            register = Register(kind, hook, info, entries)
            try:
                call(impl, register=register)
            except (Exception, SystemExit) as exc:
                raise RegistrationFailed(hook, exc, entries) from exc
            finally:
                register.open = False
    return entries


class RegistrationFailed(HookFailed):
    """A ``register_*`` hook failed; ``entries`` holds what the plugin registered before."""

    def __init__(self, hook: str, error: BaseException, entries: list[Entry]) -> None:
        super().__init__(hook, error)
        self.entries = entries
