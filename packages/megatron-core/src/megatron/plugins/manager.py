"""The plugin host: loading plugins through pluggy, each in isolation, into the registry.

Plugins are loaded on first need, not when ``megatron`` is imported. The built-in plugin
``core`` is registered directly (so a source tree that is not installed keeps it); the others
come from entry points of the ``megatron`` group. A plugin that fails (it does not import,
a hook does not match its specification, it implements an unknown hook, a ``register_*`` hook
raises) is dropped whole, none of its names registered, with one :class:`PluginLoadWarning`
naming it, its distribution and the error; the others keep working.

Two environment variables steer loading; each takes comma-separated plugin names (the entry
point's name, as ``megatron plugins`` lists it) or distribution names:

``MEGATRON_DISABLE_PLUGINS``
    Plugins never to load (``core`` blocks the built-ins too).
``MEGATRON_PLUGINS``
    Plugins to load, none other; the built-in ``core`` is always loaded unless disabled.

A name that matches no installed plugin is warned about.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from megatron.errors import MegatronError, PluginError
from megatron.plugins import hookspecs
from megatron.plugins.registry import KINDS, Entry, Kind, PluginInfo, Registry, canonical_name

if TYPE_CHECKING:
    from importlib.metadata import Distribution

    from megatron.layers.base import Layer
    from megatron.storage.base import Storage

ENTRY_POINT_GROUP = "megatron"
BUILTIN = "core"
BUILTIN_DISTRIBUTION = "megatron-core"
BUILTIN_MODULE = "megatron.plugins.builtin"

HOOK_OF_KIND: dict[Kind, str] = {
    "layer": "register_layers",
    "metric": "register_metrics",
    "source": "register_sources",
    "storage": "register_storage",
    "serializer": "register_serializers",
    "executor": "register_executors",
}
assert set(HOOK_OF_KIND) == set(KINDS)

_NAME_OF_KIND: dict[Kind, tuple[re.Pattern[str], str]] = {
    **dict.fromkeys(
        ("layer", "metric", "source"),
        (re.compile(r"[A-Za-z][A-Za-z0-9_]*"), "a Python identifier (it becomes an attribute)"),
    ),
    "storage": (re.compile(r"[A-Za-z][A-Za-z0-9+.-]*"), "a URL scheme such as 'memory' or 'mydb+driver'"),
    **dict.fromkeys(
        ("serializer", "executor"), (re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*"), "a name of letters and digits")
    ),
}
_TARGET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_.]*)?")


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
class _Selection:
    """The plugins an environment variable names (``None``: it is not set)."""

    variable: str
    names: tuple[str, ...] | None

    @classmethod
    def from_env(cls, variable: str) -> _Selection:
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
        if not self.names and self.variable == "MEGATRON_PLUGINS":
            return [
                "MEGATRON_PLUGINS is set but names no plugin, so only the built-in plugin 'core' "
                "loads. Unset it to load every installed plugin, or set MEGATRON_PLUGINS=core to "
                "load only the built-ins without this warning."
            ]
        known = {canonical_name(i.name) for i in installed} | {
            canonical_name(i.distribution) for i in installed
        }
        choices = sorted({i.name for i in installed} | {i.distribution for i in installed})
        listed = ", ".join(sorted(f"{i.name} ({i.distribution})" for i in installed)) or "none"
        problems = []
        for name in self.names:
            if canonical_name(name) in known:
                continue
            close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"{self.variable} names {name!r}, which is neither an installed megatron plugin nor "
                f"the distribution of one.{hint} Installed plugins (distribution): {listed}."
            )
        return problems


class _HookFailed(Exception):
    """A plugin's hook raised, or misused the ``register`` callback."""

    def __init__(self, hook: str, error: BaseException) -> None:
        super().__init__(hook, error)
        self.hook, self.error = hook, error


class _Invalid(Exception):
    """A plugin's hooks do not fit megatron's hook specifications (the message says how)."""


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, _Invalid):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _signature_problems(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    """Hook implementations whose arguments the hook does not pass, said plainly (pluggy's
    own message names its internals)."""
    problems = []
    for attribute in dir(plugin):
        if pm.parse_hookimpl_opts(plugin, attribute) is None:
            continue
        caller = getattr(pm.hook, attribute, None)
        if caller is None or not caller.has_spec():
            continue
        function = getattr(plugin, attribute)
        try:
            parameters = [
                p.name
                for p in inspect.signature(function).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
            ]
        except (TypeError, ValueError):
            continue
        if parameters[:1] == ["self"] and not inspect.ismethod(function):
            parameters = parameters[1:]
        passed = list(caller.spec.argnames)
        extra = [name for name in parameters if name not in passed]
        if extra:
            problems.append(
                f"{attribute}({', '.join(parameters)}) takes {', '.join(map(repr, extra))}, which the hook "
                f"does not pass: it passes {', '.join(map(repr, passed))} by keyword"
            )
    return problems


def _call(impl: Any, **kwargs: Any) -> Any:
    """Call one hook implementation with the arguments it declares, by keyword, as pluggy does."""
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


def _hook_names() -> list[str]:
    return sorted(
        name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "megatron_spec")
    )


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
        methods (:meth:`adapt_layer`, :meth:`adapt_storage`) and the registry instead."""
        self.load()
        return self._pm.hook

    @property
    def plugins(self) -> list[PluginInfo]:
        """The loaded plugins, by name."""
        self.load()
        return [self._info[name] for name in sorted(self._info)]

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
                self._registry = self._build_registry()
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
            from importlib import metadata  # here, not at import: it pulls in email, zipfile, socket...

            failed: list[str] = []
            disabled = _Selection.from_env("MEGATRON_DISABLE_PLUGINS")
            allowed = _Selection.from_env("MEGATRON_PLUGINS")
            candidates = [self._builtin_candidate(metadata)]
            # in a fixed order (the built-ins first, then by name), whatever order sys.path lists
            # them in: the first plugin to register a name wins when a file does not say which
            found = metadata.entry_points(group=ENTRY_POINT_GROUP)
            for ep in sorted(found, key=lambda ep: (ep.name, ep.dist.name if ep.dist is not None else "")):
                if ep.name == BUILTIN and ep.value == BUILTIN_MODULE:
                    continue  # the built-in plugin, registered directly above
                dist = ep.dist
                info = PluginInfo(
                    ep.name,
                    dist.name if dist is not None else "unknown distribution",
                    dist.version if dist is not None else "",
                )
                candidates.append((info, ep.load, ep.module, dist))
            installed = [info for info, *_ in candidates]
            self._notes += disabled.problems(installed) + allowed.problems(installed)
            for info, load, module, dist in candidates:
                if disabled.matches(info):
                    self._skipped.append(SkippedPlugin(info, f"{disabled.shown()} names it", module, dist))
                    continue
                if allowed.names is not None and info.name != BUILTIN and not allowed.matches(info):
                    self._skipped.append(
                        SkippedPlugin(info, f"{allowed.shown()} does not name it", module, dist)
                    )
                    continue
                failure = self._load_one(info, load)
                if failure is not None:
                    self._failures.append(failure)
                    failed.append(
                        f"megatron plugin {info.name!r} from {info.distribution} {info.version} failed to "
                        f"load and is skipped, none of its names registered: {failure.error}"
                    )
            self._pm.check_pending()  # every plugin with an unknown hook was dropped above
            self._loaded = True
        for message in failed + self._notes:
            warnings.warn(message, PluginLoadWarning, stacklevel=3)

    def _builtin_candidate(self, metadata: Any) -> tuple[PluginInfo, Callable[[], Any], str, Any]:
        try:
            dist = metadata.distribution(BUILTIN_DISTRIBUTION)
            version = dist.version
        except metadata.PackageNotFoundError:  # run from a source tree, not installed
            dist, version = None, "(not installed)"

        def load() -> Any:
            from megatron.plugins import builtin

            return builtin

        return PluginInfo(BUILTIN, BUILTIN_DISTRIBUTION, version), load, BUILTIN_MODULE, dist

    def _load_one(self, info: PluginInfo, load: Callable[[], Any]) -> PluginFailure | None:
        loaded = self._info.get(info.name)
        if loaded is not None:
            if loaded.same_distribution(info):
                return None  # one distribution seen twice on sys.path
            return PluginFailure(
                info, f"the plugin name {info.name!r} is taken by {loaded}: rename the entry point"
            )
        try:
            plugin = load()
        except (Exception, SystemExit) as exc:
            return PluginFailure(info, _describe(exc))
        return self._admit(plugin, info)

    def _admit(self, plugin: Any, info: PluginInfo) -> PluginFailure | None:
        """Register ``plugin`` with pluggy, check its hooks and run its ``register_*`` hooks;
        on any failure leave no trace of it."""
        try:
            self._pm.register(plugin, name=info.name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            problems = _signature_problems(self._pm, plugin) or [_describe(exc)]
            return PluginFailure(info, "; ".join(problems))
        entries: list[Entry] = []
        try:
            self._check_hooks(plugin)
            self._collect(plugin, info, entries)
        except _HookFailed as failed:
            self._pm.unregister(name=info.name)
            attempted = tuple(dict.fromkeys((e.kind, e.name) for e in entries))
            where = "" if isinstance(failed.error, _Invalid) else f" (in {failed.hook})"
            return PluginFailure(info, f"{_describe(failed.error)}{where}", attempted)
        self._info[info.name] = info
        self._entries[info.name] = entries
        self._notes += [
            f"megatron plugin {info.name!r} from {info.distribution}: {n}" for n in self._loose(plugin)
        ]
        self._registry = None
        return None

    def _check_hooks(self, plugin: Any) -> None:
        """Refuse hook implementations of unknown hooks (a misspelt name) and wrappers."""
        hooks = _hook_names()
        for caller in self._pm.get_hookcallers(plugin) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                if not caller.has_spec() and not impl.optionalhook:
                    close = difflib.get_close_matches(caller.name, hooks, n=1, cutoff=0.5)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise _HookFailed(caller.name, _Invalid(f"{caller.name}() is not a megatron hook{hint}"))
                if impl.wrapper or impl.hookwrapper:
                    raise _HookFailed(
                        caller.name, _Invalid(f"{caller.name}() is a wrapper; megatron hooks cannot be")
                    )

    def _collect(self, plugin: Any, info: PluginInfo, entries: list[Entry]) -> None:
        """Run the plugin's ``register_*`` hooks, appending what they register to ``entries``."""
        for kind, hook in HOOK_OF_KIND.items():
            for impl in getattr(self._pm.hook, hook).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                register = _Register(kind, hook, info, entries)
                try:
                    _call(impl, register=register)
                except (Exception, SystemExit) as exc:
                    raise _HookFailed(hook, exc) from exc
                finally:
                    register.open = False

    def _loose(self, plugin: Any) -> list[str]:
        """Functions that look like hooks but are not ``@hookimpl``: megatron never calls them."""
        hooks = _hook_names()
        module = plugin.__name__ if inspect.ismodule(plugin) else None
        notes = []
        for attribute in dir(plugin):
            if attribute.startswith("_"):
                continue
            try:
                value = getattr(plugin, attribute)
            except Exception:
                continue
            if not callable(value) or self._pm.parse_hookimpl_opts(plugin, attribute) is not None:
                continue
            if module is not None and getattr(value, "__module__", None) != module:
                continue  # imported into the plugin's module, not defined there
            if attribute in hooks:
                notes.append(
                    f"{attribute}() is not decorated with @hookimpl (megatron.plugins.hookimpl), so "
                    "megatron never calls it"
                )
                continue
            close = difflib.get_close_matches(attribute, hooks, n=1, cutoff=0.85)
            if close:
                notes.append(
                    f"{attribute}() is not a megatron hook and megatron never calls it; did you mean "
                    f"{close[0]!r}, decorated with @hookimpl?"
                )
        return notes

    def _build_registry(self) -> Registry:
        registry = Registry(self._explain_missing)
        for name in self._info:  # in load order: the built-ins first
            for entry in self._entries[name]:
                registry.add(entry)
        return registry

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

    # -- adapters ----------------------------------------------------------------------------
    def adapt_layer(self, obj: Any) -> Layer | None:
        """``obj`` (an estimator, a model) wrapped as a layer by the first plugin that claims
        it, or ``None`` when no plugin does."""
        from megatron.layers.base import Layer

        return self._adapt("adapt_layer", Layer, obj=obj)

    def adapt_storage(self, obj: Any, name: str, version: str | None) -> Storage | None:
        """The storage of pipeline ``name``/``version`` on ``obj`` (a connection, a URL) opened by
        the first plugin that claims it, or ``None`` when no plugin does."""
        from megatron.storage.base import Storage

        return self._adapt("adapt_storage", Storage, obj=obj, name=name, version=version)

    def _adapt(self, hook: str, expected: type, **kwargs: Any) -> Any:
        """Ask each plugin in turn, as pluggy's ``firstresult`` would. A plugin that raises
        something other than a megatron error is passed over; if no other plugin claims the
        object, its error is raised as a :class:`PluginError` naming it."""
        self.load()
        passed_over: list[tuple[PluginInfo, BaseException]] = []
        for impl in reversed(getattr(self._pm.hook, hook).get_hookimpls()):
            info = self._info.get(impl.plugin_name, PluginInfo(impl.plugin_name, "unknown distribution", ""))
            try:
                result = _call(impl, **kwargs)
            except MegatronError:
                raise
            except Exception as exc:
                passed_over.append((info, exc))
                continue
            if result is None:
                continue
            if not isinstance(result, expected):
                raise PluginError(
                    f"{info} returned a {type(result).__module__}.{type(result).__qualname__} from {hook}; "
                    f"expected a megatron {expected.__name__} or None"
                )
            for other, exc in passed_over:
                warnings.warn(
                    f"megatron {other} raised in {hook} and was passed over: {_describe(exc)}",
                    PluginLoadWarning,
                    stacklevel=3,
                )
            return result
        if passed_over:
            info, exc = passed_over[0]
            obj = kwargs["obj"]
            raise PluginError(
                f"{info} raised in {hook} for a {type(obj).__module__}.{type(obj).__qualname__}, and no "
                f"other plugin claims it: {_describe(exc)}"
            ) from exc
        return None

    # -- explaining a missing name -----------------------------------------------------------
    def _explain_missing(self, kind: Kind, name: str) -> str:
        """Why ``name`` may be missing: a plugin that failed or that the environment leaves out."""
        for failure in self._failures:
            if (kind, name) in failure.attempted:
                return f" {failure.info} registers it, but failed to load and was dropped: {failure.error}."
        mentioning = [s for s in self._skipped if _mentions(s, name)]
        if mentioning:
            return "".join(
                f" {s.info} is installed and mentions {name!r}, but is not loaded: {s.reason}."
                for s in mentioning
            )
        by_reason: dict[str, list[str]] = {}
        for skipped in self._skipped:
            by_reason.setdefault(skipped.reason, []).append(str(skipped.info))
        parts = [f"{', '.join(infos)} ({reason})" for reason, infos in by_reason.items()]
        parts += [f"{f.info} (failed: {f.error})" for f in self._failures]
        return f" Installed but not loaded: {'; '.join(parts)}." if parts else ""


class _Register:
    """The ``register(name, target)`` callback handed to one ``register_*`` hook call."""

    def __init__(self, kind: Kind, hook: str, info: PluginInfo, entries: list[Entry]) -> None:
        self.kind, self.hook, self.info, self.entries = kind, hook, info, entries
        self.open = True

    def __call__(self, name: str, target: Any) -> None:
        pattern, wanted = _NAME_OF_KIND[self.kind]
        if not self.open:
            raise PluginError(f"{self.info}: register() was called after {self.hook} returned")
        if not isinstance(name, str) or not pattern.fullmatch(name):
            raise PluginError(f"{self.hook}: register() takes as name {wanted}; got {name!r}")
        if isinstance(target, str) and not _TARGET.fullmatch(target):
            raise PluginError(
                f"{self.hook}: register({name!r}, target) takes the object itself or a lazy "
                f"'module:attribute' path; got {target!r}"
            )
        if target is None:
            raise PluginError(f"{self.hook}: register({name!r}, None): the target is missing")
        self.entries.append(
            Entry(self.kind, name, target, self.info.name, self.info.distribution, self.info.version)
        )


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


def reset_plugin_manager() -> None:
    """Forget loaded plugins; the next use loads them again (e.g. after installing one)."""
    global _manager
    with _manager_lock:
        _manager = None
