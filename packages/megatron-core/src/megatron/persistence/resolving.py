"""The classes a pipeline file names: recorded as the name a plugin registers with that
plugin (or ``custom:module:qualname`` for a class of the caller's), and resolved on loading
from the plugin registry or from ``custom_objects``. Nothing is imported from the file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from megatron.errors import PersistenceError
from megatron.layers.base import Layer
from megatron.metrics.base import Metric
from megatron.persistence import schema
from megatron.persistence.functions import function_name
from megatron.persistence.providers import Recorded, choose, record_entry
from megatron.plugins import get_registry
from megatron.plugins.registry import Kind

CUSTOM = "custom:"
_BASES: dict[Kind, type] = {"layer": Layer, "metric": Metric}


def class_name(kind: Kind, obj: Any) -> tuple[str, dict[str, str] | None]:
    """The registered name of ``obj``'s class with the plugin that registered it, or
    ``custom:module:qualname`` and ``None``."""
    entry = get_registry().find(kind, type(obj))
    if entry is None:
        return CUSTOM + function_name(type(obj)), None
    return entry.name, record_entry(entry)


def recorded(plugin: schema.PluginEntry | None) -> Recorded | None:
    """What the file records about the plugin of a class or artifact reader (format 2)."""
    return None if plugin is None else Recorded(plugin.name, plugin.distribution, plugin.version)


def custom_objects_of(custom_objects: Any) -> dict[str, Any]:
    """The caller's ``custom_objects`` as a dict, or a :class:`PersistenceError` saying what it takes."""
    if custom_objects is None:
        return {}
    if not isinstance(custom_objects, Mapping) or not all(isinstance(key, str) for key in custom_objects):
        keys = "" if not isinstance(custom_objects, Mapping) else " with a key that is not a string"
        raise PersistenceError(
            "custom_objects= takes a mapping of names to your classes and functions, such as "
            f"{{'Whiten': Whiten, 'double': double}}; got a {type(custom_objects).__name__}{keys}"
        )
    return dict(custom_objects)


def resolve_classes(
    kind: Kind,
    entries: Sequence[schema.LayerEntry | schema.MetricEntry],
    custom_objects: Mapping[str, Any],
    at: str,
) -> list[type]:
    """The class of each entry (``layers[i]`` or ``metrics[i]`` of the description ``at``),
    each checked to be a megatron class of that kind."""
    classes = []
    for i, entry in enumerate(entries):
        where = f"{at}: {kind}s[{i}]"
        cls = resolve_class(kind, entry.class_name, entry.plugin, custom_objects, where)
        if not (isinstance(cls, type) and issubclass(cls, _BASES[kind])):
            raise PersistenceError(f"{where}: {cls!r} is not a megatron {_BASES[kind].__name__} class")
        classes.append(cls)
    return classes


def resolve_class(
    kind: Kind, name: str, plugin: schema.PluginEntry | None, custom_objects: Mapping[str, Any], where: str
) -> Any:
    """The class a description names: a registered one (by the plugin the file records, when
    several register the name), or one of ``custom_objects``."""
    if name.startswith(CUSTOM):
        qualname = name[len(CUSTOM) :].partition(":")[2]
        short = qualname.rsplit(".", 1)[-1]
        for key in (qualname, short):
            if key in custom_objects:
                return custom_objects[key]
        raise PersistenceError(
            f"{where} needs the {kind} class {qualname!r}, which is not a registered {kind}: pass it as "
            f"load_pipeline(..., custom_objects={{{short!r}: {short}}})"
        )
    saved_with = recorded(plugin)
    candidates = get_registry().candidates(kind, name)
    unresolved = not candidates or (saved_with is None and len(candidates) > 1)
    if unresolved and name in custom_objects:  # the caller says which class the name means
        return custom_objects[name]
    entry = choose(kind, name, saved_with, candidates, where)
    if entry is None:
        saved = f" (the file was saved with {saved_with})" if saved_with is not None else ""
        raise PersistenceError(
            f"{where} names the {kind} {name!r}, which no installed plugin registers{saved}: it is refused; "
            f"install the plugin, or pass the class as load_pipeline(..., custom_objects={{{name!r}: ...}})"
        )
    return entry.resolve()


def encoded_values(description: schema.Description) -> list[Any]:
    """Every hyperparameter and fitted state in the description, in their encoded form."""
    values = [entry.config for entry in description.layers] + [m.config for m in description.metrics]
    return values + [entry.state.metadata for entry in description.layers if entry.state is not None]
