"""Fingerprints: a digest of what a pipeline computes, stable across processes.

``transform(cache=True)`` serves a stored row only when the fingerprint stored with it equals
the pipeline's own, so the fingerprint must change whenever the outputs could. It covers the
pipeline's inputs (name, shape, dtype and columns); the graph; each layer's class; every
hyperparameter, by value; and each stateful layer's ``state_token``, which every fit renews.

Code is digested by what it computes, not by name or place, each part by the same rules,
recursively and safe from cycles:

- a function: its code (constants and nested functions included), defaults, closure values,
  its own attributes (``f.k``), the module-level names it reads, and the attributes it reads
  of modules of your own, through module-level names, closures or imports inside it
  (``helpers.FACTOR``, ``pkg.sub.f``, ``from helpers import f``);
- a class of your own: along its bases, every member of each class's ``__dict__``: methods,
  static and class methods and properties as functions, and class attributes by value.

State a function keeps for itself (a captured or global name it assigns, calls
``append``/``update``/... on, or stores into) counts by name only: a log or a memo is not an
input. A container read through a method that returns its content (``setdefault``, ``pop``)
is an input. Values are read as follows:

- data (None, numbers, strings, bytes, numpy scalars, dtypes and arrays, and lists, tuples,
  dicts and sets of data): by content;
- code from installed libraries, the standard library and megatron itself (numpy ufuncs,
  builtins, classes and functions of installed packages): by qualified name and the library's
  version; a function a library made (a closure) by its code and what it captured;
- modules: by name, and a module of your own by the attributes the code reads of it; a
  module an import inside a function names, by whether it is imported yet and the same;
- any other object: by its class and its attributes, read by the same rules, up to a budget.
  An object whose state cannot be read that way (some of it lives in C, or there is too much)
  is known by its identity in this process only: rows computed with it are never served to
  another process. For a stateful layer's own hyperparameters (a Keras model) its ``repr``
  stands in instead: the layer's state token already tells its fits apart.

Computing a fingerprint walks all of that; :class:`GraphFingerprint` keeps the result with
the slots it read (each hyperparameter and input declaration, a function's code, defaults,
closure cells, attributes and globals, the module attributes and class members read, the
items of mutable lists, dicts and sets) and recomputes only when one of them holds another
object. What it cannot see is an object changed in place behind one of those slots (an array
a function reads from a global, edited element by element), nor what code reads by other
means than names (``globals()[name]``, ``getattr(module, name)``, ``os.environ``, files);
layers keep their own hyperparameters read-only for that reason (:mod:`megatron.layers.frozen`).
"""

from __future__ import annotations

import enum
import functools
import operator
import os
import sys
import types
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from megatron.layers.frozen import FrozenDict, FrozenList, FrozenSet

if TYPE_CHECKING:
    import dis

    from megatron.graph.topology import Graph

Probe = tuple[Callable[[Any], Any], Any, Any]
"""``(get, key, expected)``: the slot still holds what was read when ``get(key) is expected``."""

BUDGET = 1_000
"""How many values the attributes of one object may hold before it is known by identity."""

_BYTECODE = sys.implementation.cache_tag.encode()  # bytecode means something else in another Python
_PYTHON = "python-" + ".".join(map(str, sys.version_info[:3]))
_OWN_PACKAGE = __name__.partition(".")[0]  # megatron: by its version, from a source checkout too
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
_CLASS_NOISE = frozenset(
    {
        "__dict__",
        "__weakref__",
        "__module__",
        "__qualname__",
        "__doc__",
        "__annotations__",
        "__slotnames__",  # written by copyreg on first pickling
        "__firstlineno__",  # where the class is written, not what it computes
        "__static_attributes__",
        "_abc_impl",  # the abc module's per-process caches
        "__orig_bases__",  # typing's generic aliases
        "__parameters__",
    }
)
_attribute = functools.cache(operator.attrgetter)
_cell_contents = _attribute("cell_contents")
_process = [uuid.uuid4().bytes]  # identifies this process in digests of objects known by identity
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _process.__setitem__(0, uuid.uuid4().bytes))


# -- the pipeline's fingerprint ------------------------------------------------------------------
class _Memo:
    """A computed fingerprint and the slots it read."""

    __slots__ = ("probes", "value")

    def __init__(self, value: str | None = None, probes: tuple[Probe, ...] = ()) -> None:
        self.value = value
        self.probes = probes

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Memo, ())  # another process recomputes: identities do not travel


class GraphFingerprint:
    """The fingerprint of ``graph`` (32 hex digits, :attr:`value`), kept with the slots it read
    and recomputed only when one was replaced: an input's declaration, a hyperparameter, a
    function's code, defaults, closure, attributes or globals, a module attribute or class
    member code reads, a state token. A copy in another process recomputes its own."""

    __slots__ = ("graph", "memo")

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.memo = _Memo()

    @property
    def value(self) -> str:
        memo = self.memo
        if memo.value is not None and _unchanged(memo.probes):
            return memo.value
        self.memo = memo = _graph_memo(self.graph)
        return memo.value  # type: ignore[return-value]

    def __reduce__(self) -> tuple[Any, ...]:
        return (GraphFingerprint, (self.graph,))


def _graph_memo(graph: Graph) -> _Memo:
    probes: list[Probe] = []
    walk = _Walk(probes)
    for node in graph.inputs:  # what the pipeline reads from the data given
        walk.put("input")
        walk.slot(_attribute("name"), node, node.name)
        spec = node.spec
        probes.append((_attribute("spec"), node, spec))  # a Spec is immutable: replaced, not edited
        walk.value(spec.shape)
        walk.value(spec.dtype)
        walk.slot(_attribute("columns"), node, node.columns)
    index: dict[int, int] = {}
    for call in graph.calls:
        layer = call.layer
        first = id(layer) not in index
        number = index.setdefault(id(layer), len(index))
        walk.put(
            "call",
            repr((number, call.n_targets, [n.name for n in call.inputs], [n.name for n in call.outputs])),
        )
        if not first:
            continue
        walk.klass(type(layer))
        for key, value in sorted(layer.get_config().items()):
            walk.put("hyperparameter", key)
            walk.hyperparameter(_attribute(key), layer, value, stateful=layer.stateful)
        if layer.stateful:
            walk.slot(_attribute("state_token"), layer, layer.state_token)
    return _Memo(walk.hexdigest()[:32], tuple(probes))


def _unchanged(probes: tuple[Probe, ...]) -> bool:
    try:
        for get, key, expected in probes:
            if get(key) is not expected:
                return False
    except Exception:  # a slot that cannot be read any more (a deleted attribute or global)
        return False
    return True


def value_fingerprint(value: Any) -> str:
    """The digest (32 hex digits) of one value as the pipeline's fingerprint reads it: a
    function by what it computes."""
    walk = _Walk(None)
    walk.value(value)
    return walk.hexdigest()[:32]


def function_digest(function: Any) -> str:
    """A digest (16 hex digits) of what ``function`` computes that another process can
    recompute: objects known only by identity count by their class. Saved pipelines record it
    to tell apart functions that share a name."""
    walk = _Walk(None, portable=True)
    walk.value(function)
    return walk.hexdigest()[:16]


# -- the walk ------------------------------------------------------------------------------------
class _Unreadable(Exception):
    """An object's state cannot be read in full: some of it lives in C, or its attributes hold
    more than :data:`BUDGET` values."""


class _Walk:
    """Feeds the identifying bytes of values to a hash and, where ``probes`` is a list, records
    each slot it read there."""

    def __init__(
        self,
        probes: list[Probe] | None,
        *,
        portable: bool = False,
        seen: dict[int, int] | None = None,
        limit: int | None = None,
        strict: bool = False,
    ) -> None:
        import hashlib  # here, not at import: ``import megatron`` stays light

        self.hash = hashlib.sha256()
        self.probes = probes
        self.portable = portable
        self.seen: dict[int, int] = {} if seen is None else seen
        self.alive: list[Any] = []  # ids in ``seen`` stay unique while the walk runs
        self.limit = limit
        self.count = 0
        self.strict = strict  # everything must be read by content, or _Unreadable is raised

    def put(self, tag: str, payload: str | bytes = b"") -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.hash.update(b"%s %d:" % (tag.encode(), len(data)))
        self.hash.update(data)

    def hexdigest(self) -> str:
        return self.hash.hexdigest()

    def slot(self, get: Callable[[Any], Any], key: Any, value: Any) -> None:
        """Read ``value`` from a slot: recorded for the memo, then walked."""
        if self.probes is not None:
            self.probes.append((get, key, value))
        self.value(value)

    def hyperparameter(self, get: Callable[[Any], Any], key: Any, value: Any, stateful: bool) -> None:
        """A layer's hyperparameter. Where one of a stateful layer cannot be read by content (a
        Keras model), its ``repr`` stands in: the layer's state token tells its fits apart, and
        the pipeline keeps its cache in another process."""
        child = self._child(limit=None, strict=stateful)
        try:
            child.slot(get, key, value)
        except _Unreadable:
            if self.probes is not None:
                self.probes.append((get, key, value))
            self.put("repr", _repr(value))
            return
        self._adopt(child)

    def _child(self, limit: int | None, strict: bool | None = None) -> _Walk:
        return _Walk(
            None if self.probes is None else [],
            portable=self.portable,
            seen=dict(self.seen),
            limit=limit,
            strict=self.strict if strict is None else strict,
        )

    def _adopt(self, child: _Walk, counted: bool = True) -> None:
        self.seen.update(child.seen)
        self.alive.append(child.alive)
        if self.probes is not None and child.probes is not None:
            self.probes.extend(child.probes)
        if counted:
            self._counted(child.count)
        self.put("part", child.hash.digest())

    def _counted(self, n: int) -> None:
        self.count += n
        if self.limit is not None and self.count > self.limit:
            raise _Unreadable

    def _track(self, value: Any) -> bool:
        """Note a value that may be met again (or hold itself); False, with a reference to
        where it was first met, when it was met before."""
        number = self.seen.get(id(value))
        if number is not None:
            self.put("ref", b"%d" % number)
            return False
        self.seen[id(value)] = len(self.seen)
        self.alive.append(value)
        return True

    # -- values ----------------------------------------------------------------------------
    def value(self, v: Any) -> None:
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
        elif not self._track(v):
            return
        elif isinstance(v, list):
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
        elif callable(v) and (name := _library_object(v)) is not None:
            self.put("callable", name)  # numpy's function dispatchers
        else:
            self.instance(v)

    def array(self, a: np.ndarray) -> None:
        kind = "" if type(a) is np.ndarray else f"{type(a).__module__}.{type(a).__qualname__}"
        if a.dtype.hasobject:
            self.put("objects", f"{kind}{a.shape}")
            for item in a.flat:
                self.value(item)
            return
        dtype = repr(a.dtype.descr) if a.dtype.fields else a.dtype.str
        self.put("array", f"{kind}{dtype}{a.shape}")
        self.hash.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))  # any dtype, no copy
        mask = getattr(a, "mask", None)  # a masked array's mask is part of its value
        if kind and isinstance(mask, np.ndarray):
            self.array(mask)

    def sequence(self, v: list[Any] | tuple[Any, ...], mutable: bool) -> None:
        t = type(v)
        name = _PLAIN.get(t) or f"{t.__module__}.{t.__qualname__}"
        self.put(name, b"%d" % len(v))
        if mutable and self.probes is not None:
            self.probes.append((_has_length, (v, len(v)), True))
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
            self.probes.append((_has_length, (v, len(v)), True))
            for key, item in v.items():
                self.value(key)
                self.slot(_item(key), v, item)
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
            self.probes.append((_has_items, (v, frozenset(v)), True))

    def function(self, f: types.FunctionType) -> None:
        name = _library_object(f)
        if name is not None:
            self.put("function", name)
            return
        self.put("function")
        if self.probes is not None:  # one probe for the slots every function has
            self.probes.append((_same_function, _function_slots(f), True))
        self.value(f.__code__)
        self.value(f.__defaults__)
        self.value(f.__kwdefaults__)
        reads = _reads(f.__code__)
        for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ()):
            if name in reads.own:
                self.put("own state", name)
                continue
            try:
                contents = cell.cell_contents
            except ValueError:  # not assigned yet
                self.put("empty cell")
                if self.probes is not None:
                    self.probes.append((_is_empty, cell, True))
                continue
            self.slot(_cell_contents, cell, contents)
            self.module_attributes(contents, reads.chains.get(name))
        namespace = f.__globals__
        if _library_version(_module_name(namespace)) is not None:
            return  # a function a library made: the names of its module are the library's own
        self.attributes_of(f)  # (the probe above sees one added or removed)
        for name in reads.names:
            if name in reads.own:
                self.put("own state", name)
            elif name in namespace:
                value = namespace[name]
                self.put("global", name)
                self.slot(namespace.__getitem__, name, value)
                self.module_attributes(value, reads.chains.get(name))
            elif self.probes is not None:  # a builtin, or not defined yet
                self.probes.append((namespace.__contains__, name, False))
        for module, level, paths in reads.imports:
            self.imported(namespace, module, level, paths)

    def attributes_of(self, f: types.FunctionType) -> None:
        """A function's own attributes (``f.k = 2``, a decorator's ``__wrapped__``)."""
        attributes = f.__dict__
        self.put("attributes", b"%d" % len(attributes))
        get = attributes.__getitem__
        for name in sorted(attributes, key=str):
            self.put("attribute", str(name))
            self.slot(get, name, attributes[name])

    def module_attributes(self, value: Any, chains: tuple[tuple[str, ...], ...] | None) -> None:
        """The attributes that code reads of a module of your own (``helpers.FACTOR``,
        ``pkg.sub.f``: each chain of names read after the module's), through the module's
        namespace; an installed library's module counts by name alone."""
        if not chains or not isinstance(value, types.ModuleType):
            return
        name = getattr(value, "__name__", None)
        if not isinstance(name, str) or _library_version(name) is not None:
            return
        namespace = value.__dict__
        for attribute in sorted({chain[0] for chain in chains}):
            self.put("reads", attribute)
            found = namespace.get(attribute, _MISSING)
            if found is _MISSING:  # not there (yet): seen when it comes
                self.put("absent")
                if self.probes is not None:
                    self.probes.append((_item(attribute), namespace, _MISSING))
                continue
            self.slot(namespace.__getitem__, attribute, found)
            rest = tuple(chain[1:] for chain in chains if chain[0] == attribute and len(chain) > 1)
            self.module_attributes(found, rest)

    def imported(
        self, namespace: Mapping[str, Any], module: str, level: int, paths: tuple[tuple[str, ...], ...]
    ) -> None:
        """A module imported inside a function: whether it is imported yet, and what the
        function reads of it (``from helpers import FACTOR``: ``FACTOR``)."""
        name = _absolute(module, level, namespace)
        if name is None:
            self.put("import", "." * level + module)
            return
        self.put("import", name)
        modules = sys.modules
        found = modules.get(name, _MISSING)
        if self.probes is not None:
            self.probes.append((_item(name), modules, found))
        if found is _MISSING:
            self.put("not imported")
            return
        self.value(found)
        self.module_attributes(found, tuple(path for path in paths if path))

    def code(self, c: types.CodeType) -> None:
        shape = (
            c.co_argcount,
            c.co_posonlyargcount,
            c.co_kwonlyargcount,
            c.co_flags,
            c.co_names,
            c.co_varnames,
            c.co_freevars,
            c.co_cellvars,
        )
        # Not the file, name or line numbers: where a function is written does not change it.
        self.put("code", _BYTECODE + c.co_code + repr(shape).encode() + getattr(c, "co_exceptiontable", b""))
        salted = c.co_name == "__hash__" and c.co_filename.startswith("<attrs generated")
        for const in c.co_consts:
            if salted and type(const) is int:
                self.put("salt")  # attrs salts its classes' hashes anew in each process
            else:
                self.value(const)

    def c_callable(self, v: Any) -> None:
        module = getattr(v, "__module__", None)
        if module is None and isinstance(v, np.ufunc):
            module = "numpy"
        name = getattr(v, "__qualname__", None) or getattr(v, "__name__", None) or type(v).__qualname__
        owner = getattr(v, "__self__", None)
        if module is None and owner is not None:
            module = getattr(type(owner), "__module__", None)
        self.put("callable", _library_name(module or "builtins", name))
        if owner is not None and not isinstance(owner, types.ModuleType):
            self.value(owner)  # a bound builtin method reads its object (``values.get``)

    def klass(self, cls: type) -> None:
        """A class: an installed library's by name and version; one of your own by its members
        (walked apart, so that what they read does not count against an object's budget)."""
        name = _library_object(cls)
        if name is not None:
            self.put("class", name)
            return
        if not self._track(cls):
            return
        child = self._child(limit=None, strict=False)
        child.members(cls)
        self._adopt(child, counted=False)

    def members(self, cls: type) -> None:
        """Along the bases of a class of your own, every member of each class's namespace."""
        self.put("class", f"{cls.__module__}:{cls.__qualname__}")
        for klass in cls.__mro__:
            name = _library_object(klass)
            if name is not None:
                self.put("base", name)
                continue
            self.put("base", f"{klass.__module__}:{klass.__qualname__}")
            namespace = klass.__dict__
            if self.probes is not None:
                self.probes.append((_has_length, (namespace, len(namespace)), True))
            get = namespace.__getitem__
            for member in sorted(namespace):
                if member not in _CLASS_NOISE:
                    self.put("member", member)
                    self.slot(get, member, namespace[member])

    def instance(self, v: Any) -> None:
        """Any other object: its class and its attributes when all of them can be read by
        content within :data:`BUDGET` values; otherwise its identity."""
        child = self._child(BUDGET, strict=True)
        try:
            child.attributes(v)
        except _Unreadable:
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
            raise _Unreadable  # nothing to read: its state lives in C
        if isinstance(attributes, dict):
            self.put("attributes", b"%d" % len(attributes))
            if self.probes is not None:
                self.probes.append((_has_length, (attributes, len(attributes)), True))
            get = attributes.__getitem__
            for name in sorted(attributes, key=str):
                self.put("attribute", str(name))
                self.slot(get, name, attributes[name])
        for name in slots:
            if hasattr(v, name):
                self.put("slot", name)
                self.slot(_attribute(name), v, getattr(v, name))

    def identity(self, v: Any) -> None:
        """An object known by its class and, in this process only, its identity (portable
        digests: its class alone)."""
        if self.strict:
            raise _Unreadable
        self.klass(type(v))
        if self.portable:
            self.put("object")
        else:
            self.put("identity", _process[0] + b"%d" % id(v))


# -- helpers -------------------------------------------------------------------------------------
_MISSING = object()
_PLAIN = {
    list: "list",
    FrozenList: "list",
    tuple: "tuple",
    set: "set",
    FrozenSet: "set",
    frozenset: "frozenset",
}
"""Containers named alike: a layer's read-only copy reads as the container it was given."""


def _item(key: Any) -> Callable[[Any], Any]:
    """Reads ``mapping[key]`` without inserting it (a ``defaultdict``), or a marker if absent."""
    return operator.methodcaller("get", key, _MISSING)


def _has_length(pair: tuple[Any, int]) -> bool:
    return len(pair[0]) == pair[1]


def _function_slots(f: types.FunctionType) -> tuple[Any, ...]:
    return (f, f.__code__, f.__defaults__, f.__kwdefaults__, f.__dict__, len(f.__dict__))


def _same_function(slots: tuple[Any, ...]) -> bool:
    """Whether a function still has the code, defaults, keyword defaults and attribute dict
    (of as many attributes) it had."""
    f, code, defaults, kwdefaults, attributes, n = slots
    return (
        f.__code__ is code
        and f.__defaults__ is defaults
        and f.__kwdefaults__ is kwdefaults
        and f.__dict__ is attributes
        and len(attributes) == n
    )


def _has_items(pair: tuple[set[Any], frozenset[Any]]) -> bool:
    return pair[0] == pair[1]


def _is_empty(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return True
    return False


def _repr(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"


def _slot_names(cls: type) -> list[str]:
    slots = cls.__dict__.get("__slots__", ())
    names = [slots] if isinstance(slots, str) else list(slots)
    return [name for name in names if name not in ("__dict__", "__weakref__")]


def _module_name(namespace: Mapping[str, Any]) -> str | None:
    name = namespace.get("__name__")
    return name if isinstance(name, str) else None


def _absolute(module: str, level: int, namespace: Mapping[str, Any]) -> str | None:
    """The module a (relative) import inside a function names, or None where that is unknown."""
    if not level:
        return module
    package = namespace.get("__package__")
    if not isinstance(package, str) or not package:
        return None
    parts = package.rsplit(".", level - 1)
    if len(parts) < level:
        return None
    return f"{parts[0]}.{module}" if module else parts[0]


# -- what code reads -----------------------------------------------------------------------------
class _Reads(NamedTuple):
    """The names a function's code (and the code nested in it) reads."""

    names: tuple[str, ...]
    """Module-level names, in order."""
    chains: Mapping[str, tuple[tuple[str, ...], ...]]
    """The chains of attributes read after a module-level or captured name (``helpers.FACTOR``)."""
    imports: tuple[tuple[str, int, tuple[tuple[str, ...], ...]], ...]
    """Modules imported inside (name, level), each with the chains of attributes read of it."""
    own: frozenset[str]
    """The names whose state is the function's own (:func:`_own_state`)."""


_NAME_LOADS = frozenset({"LOAD_DEREF", "LOAD_GLOBAL", "LOAD_CLASSDEREF", "LOAD_NAME"})
_ATTRIBUTE_LOADS = frozenset({"LOAD_METHOD", "LOAD_ATTR"})
_STORES = frozenset({"STORE_FAST", "STORE_DEREF", "STORE_NAME", "STORE_GLOBAL"})
_IMPORT_STEPS = frozenset({"IMPORT_FROM", "SWAP", "ROT_TWO", "POP_TOP"})  # import a.b.c as x
_reads_of: weakref.WeakKeyDictionary[types.CodeType, _Reads] = weakref.WeakKeyDictionary()

_Bound = dict[str, tuple[tuple[str, int], tuple[str, ...]]]
"""Local names bound by an import: the module imported (name, level) and the path to the value."""


def _reads(code: types.CodeType) -> _Reads:
    """What ``code`` reads by name (computed once per code object)."""
    reads = _reads_of.get(code)
    if reads is None:
        names: dict[str, None] = {}
        chains: dict[str, set[tuple[str, ...]]] = {}
        imports: dict[tuple[str, int], set[tuple[str, ...]]] = {}
        _scan(code, {}, names, chains, imports)
        reads = _reads_of[code] = _Reads(
            tuple(names),
            {name: tuple(sorted(found)) for name, found in chains.items()},
            tuple(
                (module, level, tuple(sorted(paths))) for (module, level), paths in sorted(imports.items())
            ),
            _own_state(code),
        )
    return reads


def _scan(
    code: types.CodeType,
    bound: _Bound,
    names: dict[str, None],
    chains: dict[str, set[tuple[str, ...]]],
    imports: dict[tuple[str, int], set[tuple[str, ...]]],
) -> None:
    import dis

    instructions = list(dis.get_instructions(code))
    bound = {name: found for name, found in bound.items() if name in code.co_freevars}
    for i, instruction in enumerate(instructions):
        op = instruction.opname
        if op in ("LOAD_GLOBAL", "LOAD_NAME"):
            names[instruction.argval] = None
        elif op == "IMPORT_NAME":
            _scan_import(instructions, i, bound, imports)
            continue
        name = instruction.argval
        if op not in _NAME_LOADS and not (op.startswith("LOAD_FAST") and name in bound):
            continue
        chain: list[str] = []
        for following in range(i + 1, len(instructions)):
            if instructions[following].opname not in _ATTRIBUTE_LOADS:
                break
            chain.append(instructions[following].argval)
        if name in bound:  # a module imported inside: what is read of it
            key, path = bound[name]
            imports[key].add(path + tuple(chain))
        elif chain:
            chains.setdefault(name, set()).add(tuple(chain))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _scan(const, bound, names, chains, imports)


def _scan_import(
    instructions: list[dis.Instruction],
    at: int,
    bound: _Bound,
    imports: dict[tuple[str, int], set[tuple[str, ...]]],
) -> None:
    """An ``import`` inside a function: the module it names and the local name it binds."""
    module = instructions[at].argval
    fromlist = (
        instructions[at - 1].argval if at >= 1 and instructions[at - 1].opname == "LOAD_CONST" else None
    )
    level = instructions[at - 2].argval if at >= 2 and instructions[at - 2].opname == "LOAD_CONST" else 0
    level = level if isinstance(level, int) else 0
    j = at + 1
    if fromlist:  # from module import name [as other]
        key = (module, level)
        paths = imports.setdefault(key, {()})
        while j < len(instructions) and instructions[j].opname == "IMPORT_FROM":
            path = (instructions[j].argval,)
            paths.add(path)
            if j + 1 < len(instructions) and instructions[j + 1].opname in _STORES:
                bound[instructions[j + 1].argval] = (key, path)
            j += 2
        return
    steps = False
    while j < len(instructions) and instructions[j].opname in _IMPORT_STEPS:
        steps = steps or instructions[j].opname == "IMPORT_FROM"
        j += 1
    key = (module, level) if steps else (module.partition(".")[0], level)  # import a.b binds a
    imports.setdefault(key, set()).add(())
    if j < len(instructions) and instructions[j].opname in _STORES:
        bound[instructions[j].argval] = (key, ())


_MUTATORS = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "extendleft",
        "insert",
        "remove",
        "clear",
        "update",
        "add",
        "discard",
        "sort",
        "reverse",
        "rotate",
        "__setitem__",
        "__delitem__",
    }
)
"""Methods that change a container and return nothing of it. Those that return what it holds
(``setdefault``, ``pop``, ``popitem``, ``popleft``) read it: a container used through them is an
input, by content."""
_own_state_of: weakref.WeakKeyDictionary[types.CodeType, frozenset[str]] = weakref.WeakKeyDictionary()


def _own_state(code: types.CodeType) -> frozenset[str]:
    """The captured and global names a function changes itself: it assigns them, calls a
    mutating method on them (``log.append``) or stores into them (``memo[key] = value``).
    That state (a log, a counter, a memo) is the function's own, not an input of what it
    computes: it counts by name only, or nothing it keeps would ever be served from the cache."""
    names = _own_state_of.get(code)
    if names is None:
        import dis

        instructions = list(dis.get_instructions(code))
        found: set[str] = set()
        for i, instruction in enumerate(instructions):
            op = instruction.opname
            if op in ("STORE_DEREF", "STORE_GLOBAL", "DELETE_DEREF", "DELETE_GLOBAL"):
                found.add(instruction.argval)
            elif op in _NAME_LOADS:
                following = instructions[i + 1] if i + 1 < len(instructions) else None
                if (
                    following is not None
                    and following.opname in _ATTRIBUTE_LOADS
                    and following.argval in _MUTATORS
                ):
                    found.add(instruction.argval)  # name.append(...)
            elif op in ("STORE_SUBSCR", "DELETE_SUBSCR") or (
                op == "COPY" and [x.opname for x in instructions[i + 1 : i + 3]] == ["COPY", "BINARY_SUBSCR"]
            ):
                target = _subscript_target(instructions, i)  # name[key] = value, name[key] += value
                if target is not None:
                    found.add(target)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= _own_state(const)
        names = _own_state_of[code] = frozenset(found)
    return names


def _subscript_target(instructions: list[dis.Instruction], at: int) -> str | None:
    """The name loaded as the container of a subscript whose key is on top of the stack at
    instruction ``at``: walking back over the key's instructions (whose stack effects add up
    to one item), the instruction before them. None where that is not a plain name."""
    import dis

    net = 0
    for j in range(at - 1, 0, -1):
        instruction = instructions[j]
        if instruction.is_jump_target:
            return None
        try:
            net += dis.stack_effect(instruction.opcode, instruction.arg, jump=False)
        except (ValueError, TypeError):
            return None
        if net == 1:
            before = instructions[j - 1]
            return before.argval if before.opname in _NAME_LOADS else None
    return None


# -- installed libraries -------------------------------------------------------------------------
@functools.cache
def _library_roots() -> tuple[tuple[str, bool], ...]:
    """Folders of installed code: site-packages first (inside the standard library's folder in
    some layouts), then the standard library; each with whether it is the standard library."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    sites = {paths.get("purelib"), paths.get("platlib")}
    try:
        sites.update(site.getsitepackages())
        sites.add(site.getusersitepackages())
    except AttributeError:  # an old virtualenv's site module
        pass
    standard = {paths.get("stdlib"), paths.get("platstdlib")}
    roots = [(path, False) for path in sites if path] + [(path, True) for path in standard if path]
    return tuple((os.path.join(os.path.realpath(path), ""), is_standard) for path, is_standard in roots)


_versions: dict[str | None, str | None] = {}


def _library_version(module: str | None) -> str | None:
    """The version of the installed library (or standard library, or megatron) that defines
    ``module``, or None where it is code of your own."""
    try:
        return _versions[module]
    except KeyError:
        pass
    version = _versions[module] = _find_library_version(module)
    return version


def _find_library_version(name: str | None) -> str | None:
    if not name or name == "__main__":
        return None
    if name == "builtins" or name in sys.builtin_module_names:
        return _PYTHON
    top = name.partition(".")[0]
    if top == _OWN_PACKAGE:  # megatron itself, from a source checkout too
        return _distribution_version(top)
    module = sys.modules.get(name) or sys.modules.get(top)
    if module is None:
        return None  # not imported: code made up at run time
    path = getattr(module, "__file__", None)
    if path is None:
        spec = getattr(module, "__spec__", None)
        return _PYTHON if spec is not None and spec.origin in ("frozen", "built-in") else None
    real = os.path.realpath(path)
    for root, is_standard in _library_roots():
        if real.startswith(root):
            return _PYTHON if is_standard else _distribution_version(top)
    return None


def _distribution_version(top: str) -> str:
    version = getattr(sys.modules.get(top), "__version__", None)
    if isinstance(version, str):
        return f"{top}-{version}"
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    found = []
    for name in _packages().get(top, [top]):
        try:
            found.append(f"{name}-{installed(name)}")
        except PackageNotFoundError:
            found.append(name)
    return ",".join(found)


@functools.cache
def _packages() -> Mapping[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def _library_name(module: str, qualname: str) -> str:
    return f"{module}:{qualname}={_library_version(module) or ''}"


def _library_object(obj: Any) -> str | None:
    """``module:qualname=version`` for a function or class of an installed library that its
    module holds under that name; None for anything else, such as code of your own or a
    closure a library function made (its captured values count)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(qualname, str) or "<" in qualname or _library_version(module) is None:
        return None
    found: Any = sys.modules.get(module)  # type: ignore[arg-type]
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return _library_name(module, qualname) if found is obj else None  # type: ignore[arg-type]
