"""The description in a pipeline file (``pipeline.json``), checked field by field before
anything is resolved or built.

:func:`parse` turns the parsed JSON into typed records or raises a
:class:`~megatron.errors.PersistenceError` naming the field (``layers[2].state.token``).
Encoded values (hyperparameters, fitted state, shapes) keep their JSON form for the codec,
but every tag in them is checked here: a value that passes decodes without surprises.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from megatron.errors import PersistenceError
from megatron.persistence import archive

Encoded = Any
"""A value in the codec's JSON form (see :mod:`megatron.persistence.codec`)."""


@dataclass(frozen=True)
class InputEntry:
    name: str
    shape: Encoded
    dtype: str | None
    columns: list[str] | None


@dataclass(frozen=True)
class StateEntry:
    metadata: Encoded
    fitted: bool
    token: str


@dataclass(frozen=True)
class PluginEntry:
    """The plugin that registered a class or artifact reader when the file was saved (format 2)."""

    name: str
    distribution: str
    version: str


@dataclass(frozen=True)
class LayerEntry:
    class_name: str
    name: str
    config: Encoded
    state: StateEntry | None
    plugin: PluginEntry | None = None


@dataclass(frozen=True)
class CallEntry:
    layer: int
    inputs: list[str]
    outputs: list[str]
    named: list[bool]


@dataclass(frozen=True)
class MetricEntry:
    class_name: str
    name: str
    inputs: list[str]
    config: Encoded
    plugin: PluginEntry | None = None


@dataclass(frozen=True)
class Description:
    format: int
    name: str
    version: str | None
    inputs: list[InputEntry]
    layers: list[LayerEntry]
    calls: list[CallEntry]
    outputs: list[str]
    metrics: list[MetricEntry]


_NON_FINITE = ("nan", "inf", "-inf")
_MAX_TEXT = 4096  # names, class names, dtypes and tokens are short
_MAX_ITEMSIZE = 1 << 16
"""The largest value a file may declare a dtype of (``<U16384``): a dtype decides how many
bytes every transformed value takes."""
_SHOWN = 80  # characters of a value an error message shows


class _Refused(Exception):
    """A field that does not fit the schema: where it is, and why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, reason)
        self.where, self.reason = where, reason


def tagged_values(value: Any) -> Iterator[dict[str, Any]]:
    """The tagged values (arrays, functions, artifacts) inside an encoded value, not looking
    inside them (an artifact's meta holds no tags: :func:`parse` refuses them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if any(tag in item for tag in ("__array__", "__function__", "__artifact__")):
                yield item
            else:
                stack.extend(item.values())


def parse(value: Any, where: str, members: Collection[str]) -> Description:
    """The description ``value`` (parsed JSON) as typed records. ``where`` names the member in
    errors; ``members`` are the archive's members, which arrays and artifacts must name."""
    try:
        return _Parser(members).description(value)
    except _Refused as refused:
        raise PersistenceError(f"{where}: {refused.where}: {refused.reason}") from None


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    kind = {dict: "object", list: "array", str: "string", int: "integer", float: "number"}.get(type(value))
    return f"{kind or type(value).__name__} {preview(value)}"


def preview(value: Any, limit: int = _SHOWN) -> str:
    """``value``'s repr, or its first ``limit`` characters followed by ``...``: built no
    further than that, so a huge value costs no more to show than a small one."""
    out: list[str] = []
    room = limit

    def put(text: str) -> bool:
        nonlocal room
        out.append(text[: max(room, 0)])
        room -= len(text)
        return room > 0

    def walk(item: Any) -> bool:
        if isinstance(item, dict | list | tuple):
            opening, closing = "{}" if isinstance(item, dict) else "()" if isinstance(item, tuple) else "[]"
            if not put(opening):
                return False
            for i, element in enumerate(item.items() if isinstance(item, dict) else item):
                if i and not put(", "):
                    return False
                if isinstance(item, dict):
                    key, element = element
                    if not (walk(key) and put(": ")):
                        return False
                if not walk(element):
                    return False
            if isinstance(item, tuple) and len(item) == 1 and not put(","):
                return False
            return put(closing)
        return put(repr(item[: limit + 1] if isinstance(item, str) else item))

    complete = walk(value)
    text = "".join(out)
    return text if complete and room >= 0 else text + "..."


class _Parser:
    def __init__(self, members: Collection[str]) -> None:
        self.members = members
        self.format = archive.FORMAT
        self.named: dict[str, str] = {}  # each member the description names, and where

    def recorded(self, *fields: str) -> tuple[str, ...]:
        """``fields`` and, from format 2 on, ``plugin``: what provided a class or artifact reader."""
        return (*fields, "plugin") if self.format >= 2 else fields

    # -- plain fields --------------------------------------------------------------------------
    def fields(self, value: Any, where: str, required: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _Refused(where, f"expected an object with {', '.join(required)}; got {_shown(value)}")
        missing = [key for key in required if key not in value]
        if missing:
            raise _Refused(where, f"missing field {missing[0]!r}")
        extra = sorted(set(value) - set(required))
        if extra:
            raise _Refused(where, f"unexpected field {extra[0]!r}")
        return value

    def text(self, value: Any, where: str, empty: bool = False) -> str:
        if not isinstance(value, str) or (not value and not empty) or len(value) > _MAX_TEXT:
            wanted = "a string" if empty else "a non-empty string"
            raise _Refused(where, f"expected {wanted} of at most {_MAX_TEXT} characters; got {_shown(value)}")
        return value

    def optional_text(self, value: Any, where: str) -> str | None:
        return None if value is None else self.text(value, where, empty=True)

    def integer(self, value: Any, where: str, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _Refused(where, f"expected an integer from {low} to {high}; got {_shown(value)}")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise _Refused(where, f"expected true or false; got {_shown(value)}")
        return value

    def items(self, value: Any, where: str, item: Callable[[Any, str], Any]) -> list[Any]:
        if not isinstance(value, list):
            raise _Refused(where, f"expected an array; got {_shown(value)}")
        return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def dtype(self, value: Any, where: str) -> str:
        """A dtype of plain values: not raw or structured (void), no larger than ``_MAX_ITEMSIZE``."""
        text = self.text(value, where)
        try:
            dtype = np.dtype(text)
        except Exception as exc:  # numpy raises TypeError, ValueError, SyntaxError...
            raise _Refused(where, f"{preview(text)} is not a numpy dtype: {exc}") from None
        if dtype.kind == "V":
            raise _Refused(where, f"{text!r} is a raw or structured (void) dtype: refused")
        if dtype.itemsize > _MAX_ITEMSIZE:
            raise _Refused(
                where,
                f"{text!r} takes {dtype.itemsize} bytes per value; at most {_MAX_ITEMSIZE} are accepted: refused",
            )
        return text

    # -- the description -----------------------------------------------------------------------
    def description(self, value: Any) -> Description:
        if isinstance(value, dict) and "format" in value:  # the version first: it decides the rest
            version = value["format"]
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise _Refused("format", f"expected a file format version; got {_shown(version)}")
            if version > archive.FORMAT:
                raise _Refused(
                    "format",
                    f"the file uses file format {version}, newer than this megatron reads ({archive.FORMAT}): "
                    "upgrade megatron-core to load it",
                )
            self.format = version
        fields = self.fields(
            value,
            "the description",
            ("format", "name", "version", "inputs", "layers", "calls", "outputs", "metrics"),
        )
        inputs = self.items(fields["inputs"], "inputs", self.input)
        layers = self.items(fields["layers"], "layers", self.layer)
        calls = self.items(fields["calls"], "calls", lambda v, w: self.call(v, w, len(layers)))
        outputs = self.items(fields["outputs"], "outputs", self.text)
        metrics = self.items(fields["metrics"], "metrics", self.metric)
        self.references(inputs, calls, outputs, metrics)
        return Description(
            format=fields["format"],
            name=self.text(fields["name"], "name"),
            version=self.optional_text(fields["version"], "version"),
            inputs=inputs,
            layers=layers,
            calls=calls,
            outputs=outputs,
            metrics=metrics,
        )

    def input(self, value: Any, where: str) -> InputEntry:
        fields = self.fields(value, where, ("name", "shape", "dtype", "columns"))
        shape = fields["shape"]
        if shape is not None:
            tagged = self.fields(shape, f"{where}.shape", ("__tuple__",))
            self.items(
                tagged["__tuple__"],
                f"{where}.shape",
                lambda v, w: None if v is None else self.integer(v, w, 0, 2**63 - 1),
            )
        columns = fields["columns"]
        return InputEntry(
            name=self.text(fields["name"], f"{where}.name"),
            shape=shape,
            dtype=None if fields["dtype"] is None else self.dtype(fields["dtype"], f"{where}.dtype"),
            columns=None if columns is None else self.items(columns, f"{where}.columns", self.text),
        )

    def plugin(self, value: Any, where: str) -> PluginEntry | None:
        if value is None:
            return None
        fields = self.fields(value, where, ("name", "distribution", "version"))
        return PluginEntry(
            name=self.text(fields["name"], f"{where}.name"),
            distribution=self.text(fields["distribution"], f"{where}.distribution"),
            version=self.text(fields["version"], f"{where}.version", empty=True),
        )

    def layer(self, value: Any, where: str) -> LayerEntry:
        fields = self.fields(value, where, self.recorded("class", "name", "config", "state"))
        state = fields["state"]
        if state is not None:
            state_fields = self.fields(state, f"{where}.state", ("metadata", "fitted", "token"))
            state = StateEntry(
                metadata=self.keywords(state_fields["metadata"], f"{where}.state.metadata", any_key=True),
                fitted=self.boolean(state_fields["fitted"], f"{where}.state.fitted"),
                token=self.text(state_fields["token"], f"{where}.state.token"),
            )
        return LayerEntry(
            class_name=self.text(fields["class"], f"{where}.class"),
            name=self.text(fields["name"], f"{where}.name"),
            config=self.keywords(fields["config"], f"{where}.config"),
            state=state,
            plugin=self.plugin(fields.get("plugin"), f"{where}.plugin"),
        )

    def call(self, value: Any, where: str, n_layers: int) -> CallEntry:
        fields = self.fields(value, where, ("layer", "inputs", "outputs", "named"))
        outputs = self.items(fields["outputs"], f"{where}.outputs", self.text)
        named = self.items(fields["named"], f"{where}.named", self.boolean)
        if len(named) != len(outputs):
            raise _Refused(
                f"{where}.named", f"expected {len(outputs)} flags, one per output; got {len(named)}"
            )
        return CallEntry(
            layer=self.integer(fields["layer"], f"{where}.layer", 0, n_layers - 1),
            inputs=self.items(fields["inputs"], f"{where}.inputs", self.text),
            outputs=outputs,
            named=named,
        )

    def metric(self, value: Any, where: str) -> MetricEntry:
        fields = self.fields(value, where, self.recorded("class", "name", "inputs", "config"))
        return MetricEntry(
            class_name=self.text(fields["class"], f"{where}.class"),
            name=self.text(fields["name"], f"{where}.name"),
            inputs=self.items(fields["inputs"], f"{where}.inputs", self.text),
            config=self.keywords(fields["config"], f"{where}.config"),
            plugin=self.plugin(fields.get("plugin"), f"{where}.plugin"),
        )

    def references(
        self, inputs: list[InputEntry], calls: list[CallEntry], outputs: list[str], metrics: list[MetricEntry]
    ) -> None:
        """Every node is named before it is used."""
        known = {entry.name for entry in inputs}
        for i, call in enumerate(calls):
            for j, name in enumerate(call.inputs):
                if name not in known:
                    raise _Refused(
                        f"calls[{i}].inputs[{j}]", f"names the node {name!r}, defined by no earlier call"
                    )
            known.update(call.outputs)
        for where, names in [("outputs", outputs)] + [
            (f"metrics[{i}].inputs", m.inputs) for i, m in enumerate(metrics)
        ]:
            for j, name in enumerate(names):
                if name not in known:
                    raise _Refused(
                        f"{where}[{j}]", f"names the node {name!r}, which no input or call defines"
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
            raise _Refused(where, f"expected a [key, value] pair; got {_shown(value)}")
        return value

    def value(self, value: Any, where: str, hashable: bool = False) -> None:
        """Check an encoded value (``hashable``: one that can be a dict key once decoded)."""
        if value is None or isinstance(value, bool | int | str):
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _Refused(where, f"a non-finite number must be tagged; got {value!r}")
            return
        if isinstance(value, list):
            if hashable:
                raise _Refused(where, "a list cannot be a dict key")
            for i, item in enumerate(value):
                self.value(item, f"{where}[{i}]")
            return
        if not isinstance(value, dict):  # parsed JSON holds nothing else
            raise _Refused(where, f"unexpected {_shown(value)}")
        tag = next((key for key in _TAGS if key in value), None)
        if tag is None:
            raise _Refused(where, f"unknown value with keys {preview(sorted(itertools.islice(value, 5)))}")
        if tag in _UNHASHABLE and hashable:
            raise _Refused(where, f"a {tag} value cannot be a dict key")
        _TAGS[tag](self, value, where, hashable)

    def _float(self, value: dict[str, Any], where: str, hashable: bool) -> None:
        text = self.fields(value, where, ("__float__",))["__float__"]
        if text not in _NON_FINITE:
            raise _Refused(f"{where}.__float__", f"expected one of {list(_NON_FINITE)}; got {_shown(text)}")

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
            raise _Refused(f"{where}.meta", f"expected an object; got {_shown(meta)}")
        stack: list[Any] = [meta]
        while stack:  # a plugin's own plain JSON: a tag in it would be read as a value of the codec
            item = stack.pop()
            if isinstance(item, dict):
                tag = next((key for key in item if key in _TAGS), None)
                if tag is not None:
                    raise _Refused(f"{where}.meta", f"holds a {tag} value; an artifact's meta is plain JSON")
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        file = meta.get("file")  # the built-in plugins' artifacts are one member each
        if isinstance(file, str):
            self.member(file, f"{where}.meta.file")

    def member(self, name: str, where: str) -> None:
        if name == archive.DESCRIPTION:
            raise _Refused(where, "names the description itself, not an array or artifact")
        if name not in self.members:
            raise _Refused(where, f"names the member {name!r}, which is not in the archive")
        if name in self.named:  # read once per reference, a member named often would inflate as often
            raise _Refused(
                where,
                f"names the member {name!r} a second time ({self.named[name]} names it too): every array "
                "and artifact is stored once",
            )
        self.named[name] = where


_TAGS: dict[str, Callable[[_Parser, dict[str, Any], str, bool], None]] = {
    "__float__": _Parser._float,
    "__array__": _Parser._array,
    "__dtype__": _Parser._dtype,
    "__tuple__": _Parser._tuple,
    "__dict__": _Parser._dict,
    "__function__": _Parser._function,
    "__artifact__": _Parser._artifact,
}
_UNHASHABLE = {"__array__", "__dict__", "__artifact__"}
