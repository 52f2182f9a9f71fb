"""Fingerprints: a digest of what a pipeline computes, stable across processes.

``transform(cache=True)`` serves a stored row only when the fingerprint stored with it equals
the pipeline's own, so the fingerprint must change whenever the outputs could. It covers the
graph; each layer's class (by the code of its methods); every hyperparameter, by value; and
each stateful layer's ``state_token``, which every fit renews.

Functions are digested by what they compute, not by name: their code (constants and nested
functions included), defaults, closure values and the module-level names they read, each by
the same rules, recursively and safe from cycles. State a function keeps for itself (a
captured or global name it assigns, calls ``append``/``update``/... on, or stores into) counts
by name only: a log or a memo is not an input. Values are read as follows:

- data (None, numbers, strings, bytes, numpy scalars, dtypes and arrays, and lists, tuples,
  dicts and sets of data): by content;
- code from installed libraries and the standard library (numpy ufuncs, builtins, classes and
  functions of installed packages): by qualified name and the library's version;
- modules: by name; classes of your own: by name and the code of their methods (read once
  per class and process);
- any other object: by its class and its attributes, read by the same rules, up to a budget.
  An object whose state cannot be read that way (some of it lives in C, or there is too much)
  is known by its identity in this process only: rows computed with it are never served to
  another process. For a stateful layer's own hyperparameters (a Keras model) its ``repr``
  stands in instead: the layer's state token already tells its fits apart.

Computing a fingerprint walks all of that; :func:`pipeline_fingerprint` keeps the result with
the slots it read (each hyperparameter, a function's code, defaults, closure cells and
globals, the items of mutable lists and dicts) and recomputes only when one of them holds
another object. What it cannot see is an object changed in place behind one of those slots
(an array a function reads from a global, edited element by element); layers keep their own
hyperparameter arrays and dicts read-only for that reason (:mod:`megatron.layers.frozen`).
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
from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.layers.frozen import FrozenDict

if TYPE_CHECKING:
    import dis

    from megatron.pipeline import Pipeline

Probe = tuple[Callable[[Any], Any], Any, Any]
"""``(get, key, expected)``: the slot still holds what was read when ``get(key) is expected``."""

BUDGET = 1_000
"""How many values the attributes of one object may hold before it is known by identity."""

_BYTECODE = sys.implementation.cache_tag.encode()  # bytecode means something else in another Python
_PYTHON = "python-" + ".".join(map(str, sys.version_info[:3]))
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
_C_CALLABLES = (
    types.BuiltinFunctionType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    np.ufunc,
)
_CLASS_NOISE = frozenset(
    {"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__", "__annotations__", "__slotnames__"}
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


def pipeline_fingerprint(pipeline: Pipeline) -> str:
    """The fingerprint of ``pipeline`` (32 hex digits), recomputed only when something it read
    was replaced: a hyperparameter, a function's code, defaults, closure or globals, a state
    token."""
    memo = pipeline.__dict__.get("_fingerprint")
    if type(memo) is _Memo and memo.value is not None and _unchanged(memo.probes):
        return memo.value
    probes: list[Probe] = []
    walk = _Walk(probes)
    index: dict[int, int] = {}
    for op in pipeline._ops:
        layer = op.layer
        first = id(layer) not in index
        number = index.setdefault(id(layer), len(index))
        walk.put(
            "call", repr((number, op.n_targets, [n.name for n in op.inputs], [n.name for n in op.outputs]))
        )
        if not first:
            continue
        walk.klass(type(layer))
        for key, value in sorted(layer.get_config().items()):
            walk.put("hyperparameter", key)
            walk.hyperparameter(_attribute(key), layer, value, stateful=layer.stateful)
        if layer.stateful:
            walk.slot(_attribute("state_token"), layer, layer.state_token)
    value = walk.hexdigest()[:32]
    pipeline.__dict__["_fingerprint"] = _Memo(value, tuple(probes))
    return value


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
        code_only: bool = False,
        seen: dict[int, int] | None = None,
        limit: int | None = None,
        strict: bool = False,
    ) -> None:
        import hashlib  # here, not at import: ``import megatron`` stays light

        self.hash = hashlib.sha256()
        self.probes = probes
        self.portable = portable
        self.code_only = code_only  # class members: code, defaults and closures, no globals
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
            code_only=self.code_only,
            seen=dict(self.seen),
            limit=limit,
            strict=self.strict if strict is None else strict,
        )

    def _adopt(self, child: _Walk) -> None:
        self.seen.update(child.seen)
        self.alive.append(child.alive)
        if self.probes is not None and child.probes is not None:
            self.probes.extend(child.probes)
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
        elif (t.__module__, t.__qualname__) in _VALUE_TYPES or isinstance(v, (int, float, str, bytes)):
            self.put("value", f"{t.__module__}.{t.__qualname__}:{v!r}")
        elif not self._track(v):
            return
        elif isinstance(v, list):
            self.sequence(v, mutable=True)
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
        elif isinstance(v, type):
            self.klass(v)
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
        self.put(t.__name__ if t in (list, tuple) else f"{t.__module__}.{t.__qualname__}", b"%d" % len(v))
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
            parts.append(child.hash.digest())
        self.put(type(v).__name__, b"".join(sorted(parts)))
        if isinstance(v, set) and self.probes is not None:
            self.probes.append((_has_items, (v, frozenset(v)), True))

    def function(self, f: types.FunctionType) -> None:
        name = _library_object(f)
        if name is not None:
            self.put("function", name)
            return
        self.put("function")
        self.slot(_attribute("__code__"), f, f.__code__)
        self.slot(_attribute("__defaults__"), f, f.__defaults__)
        self.slot(_attribute("__kwdefaults__"), f, f.__kwdefaults__)
        own = _own_state(f.__code__)
        for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ()):
            if name in own:
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
        if self.code_only:
            return
        namespace = f.__globals__
        for name in _global_names(f.__code__):
            if name in own:
                self.put("own state", name)
            elif name in namespace:
                self.put("global", name)
                self.slot(namespace.__getitem__, name, namespace[name])
            elif self.probes is not None:  # a builtin, or not defined yet
                self.probes.append((namespace.__contains__, name, False))

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
        for const in c.co_consts:
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
        name = _library_object(cls)
        if name is not None:
            self.put("class", name)
        elif self.code_only:  # within a class's digest: other classes by name, so no order matters
            self.put("class", f"{cls.__module__}:{cls.__qualname__}")
        else:
            self.put("class", _class_digest(cls))

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
            for name in sorted(attributes, key=str):
                self.put("attribute", str(name))
                self.slot(_item(name), attributes, attributes[name])
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


def _item(key: Any) -> Callable[[Any], Any]:
    """Reads ``mapping[key]`` without inserting it (a ``defaultdict``), or a marker if absent."""
    return operator.methodcaller("get", key, _MISSING)


def _has_length(pair: tuple[Any, int]) -> bool:
    return len(pair[0]) == pair[1]


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


_global_names_of: weakref.WeakKeyDictionary[types.CodeType, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _global_names(code: types.CodeType) -> tuple[str, ...]:
    """The module-level names a function's code (and the code nested in it) reads."""
    names = _global_names_of.get(code)
    if names is None:
        import dis

        found = dict.fromkeys(
            instruction.argval
            for instruction in dis.get_instructions(code)
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME")
        )
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found.update(dict.fromkeys(_global_names(const)))
        names = _global_names_of[code] = tuple(found)
    return names


_MUTATORS = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "extendleft",
        "insert",
        "pop",
        "popleft",
        "popitem",
        "remove",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "sort",
        "reverse",
        "rotate",
        "__setitem__",
        "__delitem__",
    }
)
_NAME_LOADS = frozenset({"LOAD_DEREF", "LOAD_GLOBAL", "LOAD_CLASSDEREF", "LOAD_NAME"})
_ATTRIBUTE_LOADS = frozenset({"LOAD_METHOD", "LOAD_ATTR"})
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


_class_digests: weakref.WeakKeyDictionary[type, bytes] = weakref.WeakKeyDictionary()


def _class_digest(cls: type) -> bytes:
    """A class of your own: its name and, along its bases, the code of its methods and its
    data attributes (computed once per class)."""
    digest = _class_digests.get(cls)
    if digest is None:
        walk = _Walk(None, portable=True, code_only=True)
        walk._track(cls)
        for klass in cls.__mro__:
            name = _library_object(klass)
            if name is not None:
                walk.put("base", name)
                continue
            walk.put("base", f"{klass.__module__}:{klass.__qualname__}")
            members = vars(klass)
            for name in sorted(members):
                if name not in _CLASS_NOISE:
                    walk.put("member", name)
                    _class_member(walk, members[name])
        digest = _class_digests[cls] = f"{cls.__module__}:{cls.__qualname__}:".encode() + walk.hash.digest()
    return digest


def _class_member(walk: _Walk, member: Any) -> None:
    function = getattr(member, "func", None)  # functools.cached_property
    if isinstance(member, (types.FunctionType, staticmethod, classmethod, property)):
        walk.value(member)
    elif isinstance(function, types.FunctionType):
        walk.value(function)
    elif isinstance(member, type):
        walk.put("class", f"{member.__module__}:{member.__qualname__}")
    elif _is_data(member):
        walk.value(member)
    else:
        walk.put("object", f"{type(member).__module__}.{type(member).__qualname__}")


def _is_data(value: Any, depth: int = 0) -> bool:
    if type(value) in _SCALARS or isinstance(value, (np.generic, np.dtype, enum.Enum)):
        return True
    if depth < 4 and isinstance(value, (tuple, frozenset)):
        return all(_is_data(item, depth + 1) for item in value)
    return False


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
    """The version of the installed library (or standard library) that defines ``module``,
    or None where it is code of your own."""
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
