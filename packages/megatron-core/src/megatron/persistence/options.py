"""The options a loader gives serializers: ``serializer_options``, one entry per registered
format name (``{"skops": {"trusted": [...]}, "keras": {"custom_objects": {...}}}``), each
given to the serializers of that name only.

``load_pipeline``'s ``trusted=`` and ``custom_objects=`` are shortcuts that fill entries of it:
a :class:`~megatron.persistence.serializer.Serializer` declares which of them fill which of its
options (:attr:`~megatron.persistence.serializer.Serializer.shortcuts`: megatron-sklearn's
skops serializer takes ``trusted=`` as its ``trusted``, megatron-keras's ``custom_objects=`` as
its ``custom_objects``). Given both ways, they are combined: lists joined, mappings merged (one
key naming two different objects is refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from megatron.errors import PersistenceError
from megatron.persistence.serializer import Serializer, registered_serializers, serializers_named
from megatron.plugins import get_registry
from megatron.suggest import did_you_mean

SerializerOptions = Mapping[str, Mapping[str, Any]]
"""Options by serializer format name, then by option name."""


def combine_options(given: SerializerOptions | None, **shortcuts: Any) -> dict[str, dict[str, Any]]:
    """``given`` with the ``shortcuts`` (``trusted=``, ``custom_objects=``; ``None`` for none)
    filled in, each entry checked by the serializers registered under its name. An entry for
    a format name that no installed plugin registers is refused (a typo, or a plugin missing)."""
    options = _entries(given)
    for name in options:
        _check_registered(name)
    _fill_shortcuts(options, {argument: value for argument, value in shortcuts.items() if value is not None})
    for name, entry in options.items():
        for found in serializers_named(name):
            if isinstance(found, Serializer):
                found.check_options(entry)
    return options


def _fill_shortcuts(options: dict[str, dict[str, Any]], arguments: Mapping[str, Any]) -> None:
    """Fill the options that the ``arguments`` given are shortcuts for (see the module)."""
    if not arguments:
        return
    for serializer, entry in registered_serializers():
        if isinstance(serializer, Serializer):
            for argument, option in serializer.shortcuts.items():
                if argument in arguments:
                    target = options.setdefault(entry.name, {})
                    target[option] = _combined(
                        arguments[argument], target.get(option), argument, entry.name, option
                    )


def _entries(given: Any) -> dict[str, dict[str, Any]]:
    if given is None:
        return {}
    usage = (
        "serializer_options= takes a mapping of serializer format names to mappings of their options, "
        "such as {'format': {'option': value}} (the formats are the serializers 'megatron plugins' lists)"
    )
    if not isinstance(given, Mapping):
        raise PersistenceError(f"{usage}; got a {type(given).__name__}")
    entries = {}
    for name, entry in given.items():
        if not isinstance(name, str) or not isinstance(entry, Mapping):
            raise PersistenceError(f"{usage}; got {name!r}: a {type(entry).__name__}")
        if not all(isinstance(option, str) for option in entry):
            raise PersistenceError(
                f"{usage}; serializer_options[{name!r}] has an option name that is not a string"
            )
        entries[name] = dict(entry)
    return entries


def _check_registered(name: str) -> None:
    registered = get_registry().names("serializer")
    if get_registry().candidates("serializer", name):
        return
    raise PersistenceError(
        f"serializer_options names the serializer {name!r}, which no installed plugin registers."
        f"{did_you_mean(name, registered)} Installed: {', '.join(repr(n) for n in registered) or 'none'}"
    )


def _combined(shortcut: Any, given: Any, argument: str, serializer: str, option: str) -> Any:
    """A shortcut's value joined with the same option given in ``serializer_options``."""
    if given is None:
        return shortcut
    where = f"{argument}= and serializer_options[{serializer!r}][{option!r}]"
    if isinstance(shortcut, Mapping) and isinstance(given, Mapping):
        clash = [key for key in shortcut if key in given and given[key] is not shortcut[key]]
        if clash:
            raise PersistenceError(f"{where} give {clash[0]!r} two different values: give it once")
        return {**given, **shortcut}
    if isinstance(shortcut, list | tuple) and isinstance(given, list | tuple):
        return [*given, *(value for value in shortcut if value not in given)]
    raise PersistenceError(
        f"{where} are both given, as a {type(shortcut).__name__} and a {type(given).__name__}: give one"
    )
