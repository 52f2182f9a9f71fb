"""Encoded values in a pipeline file's description (hyperparameters, fitted state, shapes),
checked tag by tag: they keep their JSON form for the codec (:mod:`megatron.persistence.codec`),
but a value that passes decodes without surprises. Every array and artifact must name a member
of the archive, and each member is named once.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from megatron.persistence import archive
from megatron.persistence.schema_fields import Fields, Refused, preview, shown

Encoded = Any
"""A value in the codec's JSON form (see :mod:`megatron.persistence.codec`)."""

_NON_FINITE = ("nan", "inf", "-inf")


@dataclass(frozen=True)
class PluginEntry:
    """The plugin that registered a class or artifact reader when the file was saved (format 2)."""

    name: str
    distribution: str
    version: str


def tagged_values(value: Any) -> Iterator[dict[str, Any]]:
    """The tagged values (arrays, functions, artifacts) inside an encoded value, in the order
    they appear, not looking inside them (an artifact's meta holds no tags: the schema refuses
    them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            if any(tag in item for tag in ("__array__", "__function__", "__artifact__")):
                yield item
            else:
                stack.extend(reversed(list(item.values())))


class Values(Fields):
    """Checks encoded values, and the members they name: ``members`` are the archive's. The
    file's ``format`` decides which fields some records have."""

    def __init__(self, members: Collection[str]) -> None:
        self.members = members
        self.format = archive.FORMAT
        self.named: dict[str, str] = {}  # each member the description names, and where

    def recorded(self, *fields: str) -> tuple[str, ...]:
        """``fields`` and, from format 2 on, ``plugin``: what provided a class or artifact reader."""
        return (*fields, "plugin") if self.format >= 2 else fields

    def plugin(self, value: Any, where: str) -> PluginEntry | None:
        if value is None:
            return None
        fields = self.fields(value, where, ("name", "distribution", "version"))
        return PluginEntry(
            name=self.text(fields["name"], f"{where}.name"),
            distribution=self.text(fields["distribution"], f"{where}.distribution"),
            version=self.text(fields["version"], f"{where}.version", empty=True),
        )

    # -- encoded values ------------------------------------------------------------------------
    def keywords(self, value: Any, where: str, any_key: bool = False) -> Encoded:
        """An encoded dict: keyword arguments (string keys), or any hashable keys."""
        pairs = self.fields(value, where, ("__dict__",))["__dict__"]
        if not any_key:
            self.items(pairs, where, lambda pair, w: self.text(self.pair(pair, w)[0], f"{w}[0]"))
        self.value(value, where)
        return value

    def pair(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list) or len(value) != 2:
            raise Refused(where, f"expected a [key, value] pair; got {shown(value)}")
        return value

    def value(self, value: Any, where: str, hashable: bool = False) -> None:
        """Check an encoded value (``hashable``: one that can be a dict key once decoded)."""
        if value is None or isinstance(value, bool | int | str):
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                raise Refused(where, f"a non-finite number must be tagged; got {value!r}")
            return
        if isinstance(value, list):
            if hashable:
                raise Refused(where, "a list cannot be a dict key")
            for i, item in enumerate(value):
                self.value(item, f"{where}[{i}]")
            return
        if not isinstance(value, dict):  # parsed JSON holds nothing else
            raise Refused(where, f"unexpected {shown(value)}")
        tag = next((key for key in _TAGS if key in value), None)
        if tag is None:
            raise Refused(where, f"unknown value with keys {preview(sorted(itertools.islice(value, 5)))}")
        if tag in _UNHASHABLE and hashable:
            raise Refused(where, f"a {tag} value cannot be a dict key")
        _TAGS[tag](self, value, where, hashable)

    def _float(self, value: dict[str, Any], where: str, hashable: bool) -> None:
        text = self.fields(value, where, ("__float__",))["__float__"]
        if text not in _NON_FINITE:
            raise Refused(f"{where}.__float__", f"expected one of {list(_NON_FINITE)}; got {shown(text)}")

    def _array(self, value: dict[str, Any], where: str, hashable: bool) -> None:
        name = self.text(self.fields(value, where, ("__array__",))["__array__"], f"{where}.__array__")
        self.member(name, f"{where}.__array__")

    def _dtype(self, value: dict[str, Any], where: str, hashable: bool) -> None:
        self.dtype(self.fields(value, where, ("__dtype__",))["__dtype__"], f"{where}.__dtype__")

    def _tuple(self, value: dict[str, Any], where: str, hashable: bool) -> None:
        items = self.fields(value, where, ("__tuple__",))["__tuple__"]
        self.items(items, f"{where}.__tuple__", lambda v, w: self.value(v, w, hashable))

    def _dict(self, value: dict[str, Any], where: str, hashable: bool) -> None:
        pairs = self.fields(value, where, ("__dict__",))["__dict__"]

        def pair(item: Any, w: str) -> None:
            key, v = self.pair(item, w)
            self.value(key, f"{w}[0]", hashable=True)
            self.value(v, f"{w}[1]")

        self.items(pairs, f"{where}.__dict__", pair)

    def _function(self, value: dict[str, Any], where: str, hashable: bool) -> None:
        # The codec's form of a function reference: its "module:qualname@line#digest", and from
        # format 2 on the distribution that ships its module (null, or left out, for your own code)
        shipped = self.format >= 2 and isinstance(value, dict) and "distribution" in value
        names = ("__function__", "distribution") if shipped else ("__function__",)
        fields = self.fields(value, where, names)
        self.text(fields["__function__"], f"{where}.__function__")
        distribution = fields.get("distribution")
        if distribution is not None:
            recorded = self.fields(distribution, f"{where}.distribution", ("name", "version"))
            self.text(recorded["name"], f"{where}.distribution.name")
            self.text(recorded["version"], f"{where}.distribution.version", empty=True)

    def _artifact(self, value: dict[str, Any], where: str, hashable: bool) -> None:
        fields = self.fields(value, where, self.recorded("__artifact__", "meta"))
        self.text(fields["__artifact__"], f"{where}.__artifact__")
        self.plugin(fields.get("plugin"), f"{where}.plugin")
        meta = fields["meta"]
        if not isinstance(meta, dict):
            raise Refused(f"{where}.meta", f"expected an object; got {shown(meta)}")
        stack: list[Any] = [meta]
        while stack:  # a plugin's own plain JSON: a tag in it would be read as a value of the codec
            item = stack.pop()
            if isinstance(item, dict):
                tag = next((key for key in item if key in _TAGS), None)
                if tag is not None:
                    raise Refused(f"{where}.meta", f"holds a {tag} value; an artifact's meta is plain JSON")
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        file = meta.get("file")  # the built-in plugins' artifacts are one member each
        if isinstance(file, str):
            self.member(file, f"{where}.meta.file")

    def member(self, name: str, where: str) -> None:
        if name == archive.DESCRIPTION:
            raise Refused(where, "names the description itself, not an array or artifact")
        if name not in self.members:
            raise Refused(where, f"names the member {name!r}, which is not in the archive")
        if name in self.named:  # read once per reference, a member named often would inflate as often
            raise Refused(
                where,
                f"names the member {name!r} a second time ({self.named[name]} names it too): every array "
                "and artifact is stored once",
            )
        self.named[name] = where


_TAGS: dict[str, Callable[[Values, dict[str, Any], str, bool], None]] = {
    "__float__": Values._float,
    "__array__": Values._array,
    "__dtype__": Values._dtype,
    "__tuple__": Values._tuple,
    "__dict__": Values._dict,
    "__function__": Values._function,
    "__artifact__": Values._artifact,
}
_UNHASHABLE = {"__array__", "__dict__", "__artifact__"}
