"""The walk: how each kind of value is read into a fingerprint. Data by content; code by what
it computes (:mod:`~megatron.fingerprint.functions`, :mod:`~megatron.fingerprint.members`);
any other object by its class and attributes, up to a budget, else by its identity."""

from __future__ import annotations

import collections
import enum
import functools
import os
import types
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from megatron.fingerprint.digest import Unreadable
from megatron.fingerprint.functions import FunctionWalk
from megatron.fingerprint.libraries import library_object
from megatron.fingerprint.members import ClassWalk
from megatron.fingerprint.probes import attribute, entry, has_items, has_length
from megatron.layers.frozen import FrozenDict, FrozenList, FrozenSet

BUDGET = 1_000
"""How many values the attributes of one object may hold before it is known by identity."""

_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})
_VALUE_TYPES = frozenset(
    {
        ("re", "Pattern"),
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("fractions", "Fraction"),
        ("uuid", "UUID"),
        ("pathlib", "PurePosixPath"),
        ("pathlib", "PureWindowsPath"),
        ("pathlib", "PosixPath"),
        ("pathlib", "WindowsPath"),
        ("builtins", "range"),
        ("builtins", "slice"),
        ("builtins", "ellipsis"),
    }
)
"""Immutable value types whose ``repr`` says all they hold."""
_LOGGERS = frozenset({("logging", "Logger"), ("logging", "RootLogger")})
"""Loggers count by name: what they hold (handlers, a manager of every logger) is no input."""
_LOCKS = frozenset({("_thread", "lock"), ("_thread", "RLock")})
"""Locks count by class: whether one is held is no input."""
_C_CALLABLES = (
    types.BuiltinFunctionType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    np.ufunc,
)
_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)  # a class's __slots__
_PLAIN = {
    list: "list",
    FrozenList: "list",
    tuple: "tuple",
    set: "set",
    FrozenSet: "set",
    frozenset: "frozenset",
}
"""Containers named alike: a layer's read-only copy reads as the container it was given."""

_PANDAS = frozenset({"Series", "DataFrame", "Index", "RangeIndex", "MultiIndex", "DatetimeIndex"})
"""pandas containers read by content (:meth:`Walk.pandas`)."""


def _pandas_index() -> type:
    import pandas as pd

    return pd.Index


_process = [uuid.uuid4().bytes]  # identifies this process in digests of objects known by identity
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _process.__setitem__(0, uuid.uuid4().bytes))


class Walk(FunctionWalk, ClassWalk):
    """Feeds the identifying bytes of values to a hash and, where ``probes`` is a list, records
    each slot it read there."""

    def hyperparameter(self, get: Callable[[Any], Any], key: Any, value: Any, stateful: bool) -> None:
        """A layer's hyperparameter. Where one of a stateful layer cannot be read by content (a
        Keras model), its ``repr`` stands in: the layer's state token tells its fits apart, and
        the pipeline keeps its cache in another process."""
        child = self._child(limit=None, strict=stateful)
        try:
            child.slot(get, key, value)
        except Unreadable:
            if self.probes is not None:
                self.probes.append((get, key, value))
            self.put("repr", _repr(value))
            return
        self._adopt(child)

    def value(self, v: Any) -> None:
        """Feed ``v``: values that cannot hold themselves here, the rest by :meth:`tracked`."""
        self._counted(1)
        t = type(v)
        if t in _SCALARS:
            self.put(t.__name__, repr(v))
        elif isinstance(v, np.ndarray):
            self.array(v)
        elif isinstance(v, np.generic):
            self.put("numpy", f"{v.dtype.str}{v.dtype.descr!r}".encode() + v.tobytes())
        elif isinstance(v, np.dtype):
            self.put("dtype", repr(v))
        elif isinstance(v, enum.Enum):
            self.klass(t)
            self.put("member", v.name)
        elif isinstance(v, types.CodeType):
            self.code(v)
        elif isinstance(v, tuple):
            self.sequence(v, mutable=False)
        elif isinstance(v, types.ModuleType):
            self.put("module", v.__name__)
        elif isinstance(v, (staticmethod, classmethod)):
            self.put(t.__name__)
            self.value(v.__func__)
        elif isinstance(v, types.MethodType):
            self.put("method")
            self.value(v.__func__)
            self.value(v.__self__)
        elif isinstance(v, _C_CALLABLES):
            self.c_callable(v)
        elif isinstance(v, _DESCRIPTORS):
            self.put("descriptor", f"{t.__qualname__}:{v.__qualname__}")
        elif (t.__module__, t.__qualname__) in _VALUE_TYPES or isinstance(v, (int, float, str, bytes)):
            self.put("value", f"{t.__module__}.{t.__qualname__}:{v!r}")
        elif t is bytearray:
            self.put("bytearray", bytes(v))
        elif (t.__module__, t.__qualname__) in _LOGGERS:
            self.put("logger", str(v.name))
        elif (t.__module__, t.__qualname__) in _LOCKS:
            self.put("lock", t.__qualname__)
        elif isinstance(v, type):
            self.klass(v)
        elif self._track(v):
            self.tracked(v)

    def tracked(self, v: Any) -> None:
        """A value that may be met again, or hold itself: containers, functions, objects."""
        t = type(v)
        if isinstance(v, (list, collections.deque)):
            self.sequence(v, mutable=t is not FrozenList)
        elif isinstance(v, Mapping):
            self.mapping(v)
        elif isinstance(v, (set, frozenset)):
            self.set(v)
        elif isinstance(v, types.FunctionType):
            self.function(v)
        elif isinstance(v, functools.partial):
            self.put("partial")
            self.value(v.func)
            self.value(v.args)
            self.value(v.keywords)
        elif isinstance(v, property):
            self.put("property")
            for accessor in (v.fget, v.fset, v.fdel):
                self.value(accessor)
        elif isinstance(v, functools.cached_property):
            self.put("cached property")  # its lock is no input
            self.value(v.func)
        elif (t.__module__, t.__qualname__) == ("_collections", "_tuplegetter"):  # a namedtuple's field
            self.put("field", repr(v.__reduce__()[1][0]))
        elif callable(v) and (name := library_object(v)) is not None:
            self.put("callable", name)  # numpy's function dispatchers
        elif t.__module__.partition(".")[0] == "pandas" and t.__name__ in _PANDAS:
            self.pandas(v)
        else:
            self.instance(v)

    def pandas(self, v: Any) -> None:
        """A pandas Series, DataFrame or Index by its content: values (hashed by pandas, row by
        row, index included), dtypes and labels, so that a copy in another process reads alike."""
        from pandas.util import hash_pandas_object

        try:
            hashed = hash_pandas_object(v, index=not isinstance(v, _pandas_index())).to_numpy()
        except TypeError:  # cells pandas cannot hash (lists, dicts)
            self.instance(v)
            return
        self.put("pandas", f"{type(v).__name__}{v.shape}")
        self.value([str(dtype) for dtype in (v.dtypes if hasattr(v, "columns") else [v.dtype])])
        for labels in ("name", "names", "columns"):
            if hasattr(v, labels):
                self.value(list(getattr(v, labels)) if labels != "name" else getattr(v, labels))
        if hasattr(v, "index"):
            self.value(list(v.index.names))
        self.array(hashed)

    def array(self, a: np.ndarray) -> None:
        kind = "" if type(a) is np.ndarray else f"{type(a).__module__}.{type(a).__qualname__}"
        if a.dtype.hasobject:
            self.put("objects", f"{kind}{a.shape}")
            for item in a.flat:
                self.value(item)
            return
        dtype = repr(a.dtype.descr) if a.dtype.fields else a.dtype.str
        self.put("array", f"{kind}{dtype}{a.shape}")
        self.hash.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)  # any dtype, no copy
        mask = getattr(a, "mask", None)  # a masked array's mask is part of its value
        if kind and isinstance(mask, np.ndarray):
            self.array(mask)

    def sequence(self, v: list[Any] | tuple[Any, ...] | collections.deque[Any], mutable: bool) -> None:
        t = type(v)
        name = _PLAIN.get(t) or f"{t.__module__}.{t.__qualname__}"
        self.put(name, b"%d" % len(v))
        if mutable and self.probes is not None:
            self.probes.append((has_length, (v, len(v)), True))
            get = v.__getitem__
            for i, item in enumerate(v):
                self.slot(get, i, item)
        else:
            for item in v:
                self.value(item)

    def mapping(self, v: Mapping[Any, Any]) -> None:
        t = type(v)
        self.put("map" if t in (dict, FrozenDict) else f"map {t.__module__}.{t.__qualname__}", b"%d" % len(v))
        factory = getattr(v, "default_factory", None)
        if factory is not None:
            self.value(factory)
        if isinstance(v, dict) and t is not FrozenDict and self.probes is not None:
            self.probes.append((has_length, (v, len(v)), True))
            for key, item in v.items():
                self.value(key)
                self.slot(entry(key), v, item)
        else:
            for key, item in v.items():
                self.value(key)
                self.value(item)

    def set(self, v: set[Any] | frozenset[Any]) -> None:
        parts = []
        for item in v:  # each apart, then sorted: a set's order differs between processes
            child = self._child(self.limit)
            child.value(item)
            self._counted(child.count)
            if self.probes is not None and child.probes is not None:
                self.probes.extend(child.probes)
            parts.append(child.hash.digest())
        t = type(v)
        self.put(_PLAIN.get(t) or f"{t.__module__}.{t.__qualname__}", b"".join(sorted(parts)))
        if isinstance(v, set) and t is not FrozenSet and self.probes is not None:
            self.probes.append((has_items, (v, frozenset(v)), True))

    def instance(self, v: Any) -> None:
        """Any other object: its class and its attributes when all of them can be read by
        content within :data:`BUDGET` values; otherwise its identity."""
        child = self._child(BUDGET, strict=True)
        try:
            child.attributes(v)
        except Unreadable:
            self._counted(child.count)
            self.identity(v)
        else:
            self._adopt(child)

    def attributes(self, v: Any) -> None:
        cls = type(v)
        self.klass(cls)
        attributes = getattr(v, "__dict__", None)
        slots = [name for k in cls.__mro__ for name in _slot_names(k)]
        if not isinstance(attributes, dict) and not slots:
            raise Unreadable  # nothing to read: its state lives in C
        if isinstance(attributes, dict):
            self.put("attributes", b"%d" % len(attributes))
            if self.probes is not None:
                self.probes.append((has_length, (attributes, len(attributes)), True))
            get = attributes.__getitem__
            for name in sorted(attributes, key=str):
                self.put("attribute", str(name))
                self.slot(get, name, attributes[name])
        for name in slots:
            if hasattr(v, name):
                self.put("slot", name)
                self.slot(attribute(name), v, getattr(v, name))

    def identity(self, v: Any) -> None:
        """An object known by its class and, in this process only, its identity (portable
        digests: its class alone)."""
        if self.strict:
            raise Unreadable
        self.klass(type(v))
        if self.portable:
            self.put("object")
        else:
            self.put("identity", _process[0] + b"%d" % id(v))


def value_fingerprint(value: Any) -> str:
    """The digest (32 hex digits) of one value as the pipeline's fingerprint reads it: a
    function by what it computes."""
    walk = Walk(None)
    walk.value(value)
    return walk.hexdigest()[:32]


def function_digest(function: Any) -> str:
    """A digest (16 hex digits) of what ``function`` computes that another process can
    recompute: objects known only by identity count by their class. Saved pipelines record it
    to tell apart functions that share a name."""
    walk = Walk(None, portable=True)
    walk.value(function)
    return walk.hexdigest()[:16]


def _repr(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"


def _slot_names(cls: type) -> list[str]:
    slots = cls.__dict__.get("__slots__", ())
    names = [slots] if isinstance(slots, str) else list(slots)
    return [name for name in names if name not in ("__dict__", "__weakref__")]
