"""Asking the plugins a question whose answer is a value, not registrations: the adapters
(``adapt_layer``, ``adapt_storage``: the first plugin that claims the object) and
``default_storage_url`` (every plugin, agreeing)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

import pluggy

from megatron.errors import MegatronError, PluginConflictError, PluginError
from megatron.plugins.hooks import call, describe
from megatron.plugins.loading import PluginLoadWarning
from megatron.plugins.registry import PluginInfo

Describe = Callable[[str], PluginInfo]
"""The plugin registered under a name, with its distribution and version."""

RESULT_OF_ADAPTER: dict[str, tuple[str, str] | None] = {
    "adapt_layer": ("megatron.layers.base", "Layer"),
    "adapt_storage": ("megatron.storage.base", "Storage"),
    "run_operation": None,  # whatever the operation returns
}
"""The class each adapter hook returns an instance of, by module and name (None: any value)."""
SUBJECT = {"adapt_layer": "obj", "adapt_storage": "obj", "run_operation": "data"}
"""The keyword argument of each adapter hook that holds the object to claim."""


def is_instance(obj: Any, module: str, name: str) -> bool:
    """Whether ``obj`` is an instance of ``module.name``, without importing ``module``: an
    instance of the class means its module is loaded (and the plugin host must not import the
    layers or storage, which import it)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, getattr(loaded, name))


def adapt(pm: pluggy.PluginManager, plugin: Describe, hook: str, **kwargs: Any) -> Any:
    """Ask each plugin in turn, as pluggy's ``firstresult`` would. A plugin that raises
    something other than a megatron error is passed over; if no other plugin claims the
    object, its error is raised as a :class:`PluginError` naming it."""
    result_type = RESULT_OF_ADAPTER[hook]
    passed_over: list[tuple[PluginInfo, BaseException]] = []
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        info = plugin(impl.plugin_name)
        try:
            result = call(impl, **kwargs)
        except MegatronError:
            raise
        except Exception as exc:
            passed_over.append((info, exc))
            continue
        if result is None:
            continue
        if result_type is not None and not is_instance(result, *result_type):
            raise PluginError(
                f"{info} returned a {type(result).__module__}.{type(result).__qualname__} from {hook}; "
                f"expected a megatron {result_type[1]} or None"
            )
        for other, error in passed_over:
            warnings.warn(
                f"megatron {other} raised in {hook} and was passed over: {describe(error)}",
                PluginLoadWarning,
                stacklevel=3,
            )
        return result
    if passed_over:
        first, error = passed_over[0]
        obj = kwargs[SUBJECT[hook]]
        raise PluginError(
            f"{first} raised in {hook} for a {type(obj).__module__}.{type(obj).__qualname__}, and no "
            f"other plugin claims it: {describe(error)}"
        ) from error
    return None


def default_storage_url(pm: pluggy.PluginManager, plugin: Describe) -> str | None:
    """The URL the plugins answer from ``default_storage_url``: None when none answers, and a
    :class:`PluginConflictError` when two answer different URLs."""
    answers: dict[str, list[PluginInfo]] = {}
    for impl in pm.hook.default_storage_url.get_hookimpls():
        info = plugin(impl.plugin_name)
        try:
            url = call(impl)
        except Exception as exc:
            raise PluginError(f"{info} raised in default_storage_url: {describe(exc)}") from exc
        if url is None:
            continue
        if not isinstance(url, str):
            raise PluginError(
                f"{info} returned a {type(url).__module__}.{type(url).__qualname__} from "
                "default_storage_url; expected a storage URL (a str) or None"
            )
        answers.setdefault(url, []).append(info)
    if len(answers) > 1:
        said = " and ".join(f"{infos[0]} says {url!r}" for url, infos in answers.items())
        blocked = next(iter(answers.values()))[0].name
        raise PluginConflictError(
            f"Plugins disagree on the default storage: {said}. Set MEGATRON_STORAGE to the URL to "
            f"use, pass storage= a URL, or block one plugin (MEGATRON_DISABLE_PLUGINS={blocked})."
        )
    return next(iter(answers), None)
