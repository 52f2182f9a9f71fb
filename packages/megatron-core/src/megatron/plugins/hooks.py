"""A plugin's hook implementations against megatron's hook specifications: calling one by
keyword, and the checks that refuse a plugin (a parameter the hook does not pass, an unknown
hook, a wrapper) or warn about it (a hook function without ``@hookimpl``)."""

from __future__ import annotations

import inspect
from typing import Any

import pluggy

from megatron.plugins import hookspecs
from megatron.suggest import closest


class HookFailed(Exception):
    """A plugin's hook raised, or misused the ``register`` callback."""

    def __init__(self, hook: str, error: BaseException) -> None:
        super().__init__(hook, error)
        self.hook, self.error = hook, error


class Invalid(Exception):
    """A plugin's hooks do not fit megatron's hook specifications (the message says how)."""


def describe(exc: BaseException) -> str:
    """An exception on one line: its type and message (the message alone for :class:`Invalid`)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, Invalid):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def call(impl: Any, **kwargs: Any) -> Any:
    """Call one hook implementation with the arguments it declares, by keyword, as pluggy does."""
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


def hook_names() -> list[str]:
    """Every hook megatron specifies."""
    return sorted(
        name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "megatron_spec")
    )


def signature_problems(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    """Hook implementations whose arguments the hook does not pass, said plainly (pluggy's
    own message names its internals)."""
    problems = []
    for attribute in dir(plugin):
        if pm.parse_hookimpl_opts(plugin, attribute) is None:
            continue
        caller = getattr(pm.hook, attribute, None)
        if caller is None or not caller.has_spec():
            continue
        parameters = _required_parameters(getattr(plugin, attribute))
        passed = list(caller.spec.argnames)
        extra = [name for name in parameters if name not in passed]
        if extra:
            problems.append(
                f"{attribute}({', '.join(parameters)}) takes {', '.join(map(repr, extra))}, which the hook "
                f"does not pass: it passes {', '.join(map(repr, passed))} by keyword"
            )
    return problems


def _required_parameters(function: Any) -> list[str]:
    try:
        parameters = [
            p.name
            for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return []
    if parameters[:1] == ["self"] and not inspect.ismethod(function):
        parameters = parameters[1:]
    return parameters


def check_hooks(pm: pluggy.PluginManager, plugin: Any) -> None:
    """Refuse hook implementations of unknown hooks (a misspelt name) and wrappers."""
    hooks = hook_names()
    for caller in pm.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            if not caller.has_spec() and not impl.optionalhook:
                close = closest(caller.name, hooks, cutoff=0.5)
                hint = f"; did you mean {close!r}?" if close else ""
                raise HookFailed(caller.name, Invalid(f"{caller.name}() is not a megatron hook{hint}"))
            if impl.wrapper or impl.hookwrapper:
                raise HookFailed(
                    caller.name, Invalid(f"{caller.name}() is a wrapper; megatron hooks cannot be")
                )


def loose_functions(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    """Notes on functions that look like hooks but are not ``@hookimpl``: megatron never calls them."""
    hooks = hook_names()
    module = plugin.__name__ if inspect.ismodule(plugin) else None
    notes = []
    for attribute in dir(plugin):
        if attribute.startswith("_"):
            continue
        try:
            value = getattr(plugin, attribute)
        except Exception:
            continue
        if not callable(value) or pm.parse_hookimpl_opts(plugin, attribute) is not None:
            continue
        if module is not None and getattr(value, "__module__", None) != module:
            continue  # imported into the plugin's module, not defined there
        if attribute in hooks:
            notes.append(
                f"{attribute}() is not decorated with @hookimpl (megatron.plugins.hookimpl), so "
                "megatron never calls it"
            )
            continue
        close = closest(attribute, hooks, cutoff=0.85)
        if close:
            notes.append(
                f"{attribute}() is not a megatron hook and megatron never calls it; did you mean "
                f"{close!r}, decorated with @hookimpl?"
            )
    return notes
