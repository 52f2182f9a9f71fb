"""Serializers: what a plugin provides to save objects megatron cannot write as data (a
scikit-learn estimator, a Keras model), registered by format name with
``register_serializers``, and how saving and loading find them.

A serializer has a ``name`` and ``claims``, ``save``, ``load`` and ``audit`` methods (see
:class:`Serializer`). Loading gives each one its own entry of ``serializer_options`` (by the
format name it is registered under): a :class:`Serializer` declares the :attr:`~Serializer.options`
it reads and refuses any other by name.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any

from megatron.errors import PersistenceError
from megatron.persistence.providers import Recorded, choose
from megatron.plugins import get_registry
from megatron.plugins.registry import Entry
from megatron.suggest import did_you_mean


class Serializer:
    """The base of a plugin's serializer (optional: any object with these methods serves,
    but only a subclass has its options checked by name, and its options given to ``audit``).

    Subclasses set :attr:`name` and :attr:`options`, and implement the four methods."""

    name: str = ""
    """The format name, which the file records for each artifact."""
    options: Collection[str] = ()
    """The options it reads from ``serializer_options[name]``; any other is refused."""
    shortcuts: Mapping[str, str] = MappingProxyType({})
    """The arguments of ``load_pipeline`` that fill its options, by argument: ``{"trusted":
    "trusted"}`` makes ``trusted=T`` short for ``serializer_options={name: {"trusted": T}}``."""

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` as a dict, or a :class:`PersistenceError` naming an option this
        serializer does not read, and the serializer."""
        for option in options:
            if option not in self.options:
                known = ", ".join(repr(o) for o in sorted(self.options)) or "none"
                hint = did_you_mean(str(option), [str(o) for o in self.options])
                raise PersistenceError(
                    f"serializer_options[{self.name!r}] gives the option {option!r}, which the {self.name!r} "
                    f"serializer ({type(self).__module__}.{type(self).__qualname__}) does not read.{hint} "
                    f"Its options: {known}"
                )
        return dict(options)

    def claims(self, obj: Any) -> bool:
        """Whether it saves ``obj`` (check the type without importing its library)."""
        raise NotImplementedError

    def save(self, obj: Any, archive: Any, prefix: str) -> dict[str, Any]:
        """Write ``obj`` as members named ``prefix/...`` (``archive.add``) and return plain JSON
        describing them."""
        raise NotImplementedError

    def load(self, meta: dict[str, Any], archive: Any, options: Mapping[str, Any]) -> Any:
        """Rebuild the object ``meta`` describes from the archive's members, refusing anything
        unsafe; ``options`` is this serializer's entry of ``serializer_options``."""
        raise NotImplementedError

    def audit(self, meta: dict[str, Any], archive: Any, options: Mapping[str, Any]) -> list[str]:
        """Lines saying what loading would read, without loading it, given ``options``."""
        raise NotImplementedError


def _instance(entry: Entry) -> Any:
    serializer = entry.resolve()
    return serializer() if isinstance(serializer, type) else serializer


def registered_serializers() -> list[tuple[Any, Entry]]:
    """Each registered serializer (one per name), with the entry that registered it."""
    return [(_instance(entry), entry) for entry in get_registry().entries("serializer")]


def serializers_named(name: str) -> list[Any]:
    """Every installed serializer registered as ``name`` (several under a conflict)."""
    return [_instance(entry) for entry in get_registry().candidates("serializer", name)]


def artifact_reader(where: str) -> Callable[[dict[str, Any]], Any]:
    """The serializer that reads an encoded artifact (``None`` when no plugin reads it): by its
    name and, from format 2 on, the plugin that wrote it (so two plugins registering one name
    are told apart). ``where`` names the file in errors."""
    cache: dict[tuple[str, Recorded | None], Any] = {}

    def read(value: dict[str, Any]) -> Any:
        name = value["__artifact__"]
        recorded = Recorded.from_json(value.get("plugin"))
        if (name, recorded) not in cache:
            candidates = get_registry().candidates("serializer", name)
            entry = choose("serializer", name, recorded, candidates, where)
            cache[name, recorded] = None if entry is None else _instance(entry)
        return cache[name, recorded]

    return read


def audit_artifact(
    serializer: Any, meta: dict[str, Any], archive: Any, options: Mapping[str, Any]
) -> list[str]:
    """The audit lines of one artifact: a :class:`Serializer` is given its options."""
    if isinstance(serializer, Serializer):
        return [str(line) for line in serializer.audit(meta, archive, options)]
    return [str(line) for line in serializer.audit(meta, archive)]
