"""The plugin host: loading plugins through pluggy, each in isolation, into the registry.

Plugins are loaded on first need, not when ``megatron`` is imported: the built-in plugin
``core``, then every entry point of the ``megatron`` group (:mod:`~megatron.plugins.loading`)
that the environment allows (:mod:`~megatron.plugins.selection`). A plugin that fails (it
does not import, a hook does not match its specification, it implements an unknown hook, a
``register_*`` hook raises) is dropped whole, none of its names registered, with one
:class:`PluginLoadWarning` naming it, its distribution and the error; the others keep working.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from megatron.errors import MegatronError, PluginError
from megatron.plugins import adapters, hookspecs
from megatron.plugins.core_names import early_conflicts
from megatron.plugins.explain import explain_missing
from megatron.plugins.hints import missing_name
from megatron.plugins.hooks import (
    HookFailed,
    Invalid,
    check_hooks,
    describe,
    loose_functions,
    signature_problems,
)
from megatron.plugins.loading import (
    Candidate,
    PluginFailure,
    PluginLoadWarning,
    SkippedPlugin,
    installed_candidates,
)
from megatron.plugins.registration import RegistrationFailed, collect
from megatron.plugins.registry import KINDS, Entry, Kind, PluginInfo, Registry
from megatron.plugins.selection import select

if TYPE_CHECKING:
    from megatron.layers.base import Layer
    from megatron.pipeline import Pipeline
    from megatron.storage.base import Storage


class PluginManager:
    """The plugin host: a pluggy manager, the plugins it loaded (each in isolation), those it
    dropped or left out, and their registry."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._info: dict[str, PluginInfo] = {}
        self._entries: dict[str, list[Entry]] = {}
        self._failures: list[PluginFailure] = []
        self._skipped: list[SkippedPlugin] = []
        self._notes: list[str] = []
        self._registry: Registry | None = None
        self._lock = threading.RLock()
        self._loaded = False

    # -- what was loaded ---------------------------------------------------------------------
    @property
    def hook(self) -> Any:
        """pluggy's raw hook relay, with the plugins loaded. Megatron itself calls the typed
        methods (:meth:`adapt_layer`, :meth:`adapt_storage`, :meth:`default_storage_url`) and
        the registry instead."""
        self.load()
        return self._pm.hook

    @property
    def plugins(self) -> list[PluginInfo]:
        """The loaded plugins, by name."""
        self.load()
        return [self._info[name] for name in sorted(self._info)]

    @property
    def distributions(self) -> list[str]:
        """The distributions of the loaded plugins."""
        return sorted({info.distribution for info in self.plugins})

    @property
    def failures(self) -> list[PluginFailure]:
        """The plugins that were dropped whole, and why."""
        self.load()
        return list(self._failures)

    @property
    def skipped(self) -> list[SkippedPlugin]:
        """The installed plugins that ``MEGATRON_PLUGINS`` or ``MEGATRON_DISABLE_PLUGINS`` leave out."""
        self.load()
        return list(self._skipped)

    @property
    def notes(self) -> list[str]:
        """Warnings about loaded plugins and the environment that did not stop any plugin
        (a hook function without ``@hookimpl``, a name that matches no plugin)."""
        self.load()
        return list(self._notes)

    @property
    def registry(self) -> Registry:
        """Everything the loaded plugins registered."""
        self.load()
        with self._lock:
            if self._registry is None:
                self._registry = Registry(self._why_missing)
                for name in self._info:  # in load order: the built-ins first
                    for entry in self._entries[name]:
                        self._registry.add(entry)
            return self._registry

    def registrations(self, plugin: str) -> dict[Kind, list[str]]:
        """What ``plugin`` registered, by kind."""
        self.load()
        entries = self._entries.get(plugin, [])
        return {kind: sorted({e.name for e in entries if e.kind == kind}) for kind in KINDS}

    # -- loading -----------------------------------------------------------------------------
    def load(self) -> None:
        """Load the built-in plugin and every allowed entry-point plugin, once, each in isolation.

        Warnings (:class:`PluginLoadWarning`) are given after everything is loaded, so that
        turning them into errors (``-W error``) still leaves a working manager behind.
        """
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            chosen, skipped, notes = select(installed_candidates())
            self._skipped += skipped
            self._notes += notes
            failed = [self._load_one(candidate) for candidate in chosen]
            self._pm.check_pending()  # every plugin with an unknown hook was dropped above
            self._loaded = True
        messages = [
            f"megatron plugin {f.info.name!r} from {f.info.distribution} {f.info.version} failed to "
            f"load and is skipped, none of its names registered: {f.error}"
            for f in failed
            if f is not None
        ]
        for message in messages + self._notes + early_conflicts(lambda: self.registry):
            warnings.warn(message, PluginLoadWarning, stacklevel=3)

    def _load_one(self, candidate: Candidate) -> PluginFailure | None:
        """Load one candidate; the failure, also recorded, if it was dropped."""
        info = candidate.info
        loaded = self._info.get(info.name)
        if loaded is not None and loaded.same_distribution(info):
            return None  # one distribution seen twice on sys.path
        failure: PluginFailure | None
        if loaded is not None:
            failure = PluginFailure(
                info, f"the plugin name {info.name!r} is taken by {loaded}: rename the entry point"
            )
        else:
            try:
                plugin = candidate.load()
            except (Exception, SystemExit) as exc:
                failure = PluginFailure(info, describe(exc))
            else:
                failure = self._admit(plugin, info)
        if failure is not None:
            self._failures.append(failure)
        return failure

    def _admit(self, plugin: Any, info: PluginInfo) -> PluginFailure | None:
        """Register ``plugin`` with pluggy, check its hooks and run its ``register_*`` hooks;
        on any failure leave no trace of it."""
        try:
            self._pm.register(plugin, name=info.name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            problems = signature_problems(self._pm, plugin) or [describe(exc)]
            return PluginFailure(info, "; ".join(problems))
        try:
            check_hooks(self._pm, plugin)
            entries = collect(self._pm, plugin, info)
        except HookFailed as failed:
            self._pm.unregister(name=info.name)
            done = failed.entries if isinstance(failed, RegistrationFailed) else []
            attempted = tuple(dict.fromkeys((e.kind, e.name) for e in done))
            where = "" if isinstance(failed.error, Invalid) else f" (in {failed.hook})"
            return PluginFailure(info, f"{describe(failed.error)}{where}", attempted)
        self._info[info.name] = info
        self._entries[info.name] = entries
        self._notes += [
            f"megatron plugin {info.name!r} from {info.distribution}: {note}"
            for note in loose_functions(self._pm, plugin)
        ]
        self._registry = None
        return None

    def _why_missing(self, kind: Kind, name: str) -> MegatronError | str:
        """Why no loaded plugin registers ``name``: the catalogued distribution to install (an
        error), or the installed plugin that failed or was left out (a sentence)."""
        missing = missing_name(kind, name, [info.distribution for info in self._info.values()])
        if missing is not None:
            return missing
        return explain_missing(kind, name, self._failures, self._skipped)

    # -- plugins registered at run time ------------------------------------------------------
    def register(
        self, plugin: Any, name: str, distribution: str = "(registered at runtime)", version: str = ""
    ) -> None:
        """Register a plugin object directly (used by tests and interactive sessions). A plugin
        that would be dropped on loading raises :class:`~megatron.errors.PluginError` here."""
        self.load()
        with self._lock:
            info = PluginInfo(name, distribution, version)
            if name in self._info:
                raise PluginError(f"A plugin named {name!r} is already loaded ({self._info[name]})")
            known = len(self._notes)
            failure = self._admit(plugin, info)
            notes = self._notes[known:]
        if failure is not None:
            raise PluginError(f"Plugin {name!r} cannot be registered: {failure.error}")
        for note in notes:
            warnings.warn(note, PluginLoadWarning, stacklevel=2)

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name``."""
        with self._lock:
            self._pm.unregister(name=name)
            self._info.pop(name, None)
            self._entries.pop(name, None)
            self._registry = None

    # -- asking the plugins ------------------------------------------------------------------
    def adapt_layer(self, obj: Any) -> Layer | None:
        """``obj`` (an estimator, a model) wrapped as a layer by the first plugin that claims
        it, or ``None`` when no plugin does."""
        self.load()
        result: Layer | None = adapters.adapt(self._pm, self._plugin, "adapt_layer", obj=obj)
        return result

    def adapt_storage(self, obj: Any, name: str, version: str | None) -> Storage | None:
        """The storage of pipeline ``name``/``version`` on ``obj`` (a connection, a URL) opened by
        the first plugin that claims it, or ``None`` when no plugin does."""
        self.load()
        result: Storage | None = adapters.adapt(
            self._pm, self._plugin, "adapt_storage", obj=obj, name=name, version=version
        )
        return result

    def run_operation(self, pipeline: Pipeline, operation: str, data: Any, options: Mapping[str, Any]) -> Any:
        """What the first plugin that claims ``data`` returns for ``pipeline``'s ``operation``
        (``run_operation``), or ``None`` when no plugin does."""
        self.load()
        return adapters.adapt(
            self._pm,
            self._plugin,
            "run_operation",
            pipeline=pipeline,
            operation=operation,
            data=data,
            options=options,
        )

    def default_storage_url(self) -> str | None:
        """The URL the plugins give for ``storage='default'`` (``default_storage_url``), or None
        when none does; :class:`~megatron.errors.PluginConflictError` when two disagree."""
        self.load()
        return adapters.default_storage_url(self._pm, self._plugin)

    def _plugin(self, name: str) -> PluginInfo:
        return self._info.get(name, PluginInfo(name, "unknown distribution", ""))


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager."""
    global _manager
    if _manager is None:
        with _manager_lock:
            if _manager is None:
                _manager = PluginManager()
    return _manager


def loaded_plugin_manager() -> PluginManager | None:
    """The process-wide plugin manager if it has loaded the installed plugins, else None
    (asking creates and loads nothing)."""
    manager = _manager
    return manager if manager is not None and manager._loaded else None


def reset_plugin_manager() -> None:
    """Forget loaded plugins; the next use loads them again (e.g. after installing one)."""
    global _manager
    with _manager_lock:
        _manager = None
