"""How a walk reads code: a function by its code, defaults, closure, own attributes, the
module-level names it reads and what it reads of modules of your own; code objects by their
bytecode; functions of installed libraries and C callables by qualified name and version."""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from megatron.fingerprint.bytecode import reads
from megatron.fingerprint.digest import Digest
from megatron.fingerprint.libraries import library_name, library_object, library_version
from megatron.fingerprint.probes import (
    MISSING,
    cell_contents,
    entry,
    function_slots,
    is_empty,
    same_function,
)

_BYTECODE = sys.implementation.cache_tag.encode()  # bytecode means something else in another Python


class FunctionWalk(Digest):
    """The part of a walk that reads functions and code."""

    def function(self, f: types.FunctionType) -> None:
        name = library_object(f)
        if name is not None:
            self.put("function", name)
            return
        self.put("function")
        if self.probes is not None:  # one probe for the slots every function has
            self.probes.append((same_function, function_slots(f), True))
        self.value(f.__code__)
        self.value(f.__defaults__)
        self.value(f.__kwdefaults__)
        read = reads(f.__code__)
        for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ()):
            if name in read.own:
                self.put("own state", name)
                continue
            try:
                contents = cell.cell_contents
            except ValueError:  # not assigned yet
                self.put("empty cell")
                if self.probes is not None:
                    self.probes.append((is_empty, cell, True))
                continue
            self.slot(cell_contents, cell, contents)
            self.module_attributes(contents, read.chains.get(name))
        namespace = f.__globals__
        if library_version(_module_name(namespace)) is not None:
            return  # a function a library made: the names of its module are the library's own
        self.attributes_of(f)  # (the probe above sees one added or removed)
        for name in read.names:
            if name in read.own:
                self.put("own state", name)
            elif name in namespace:
                value = namespace[name]
                self.put("global", name)
                self.slot(namespace.__getitem__, name, value)
                self.module_attributes(value, read.chains.get(name))
            elif self.probes is not None:  # a builtin, or not defined yet
                self.probes.append((namespace.__contains__, name, False))
        for module, level, paths in read.imports:
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
        if not isinstance(name, str) or library_version(name) is not None:
            return
        namespace = value.__dict__
        for attribute in sorted({chain[0] for chain in chains}):
            self.put("reads", attribute)
            found = namespace.get(attribute, MISSING)
            if found is MISSING:  # not there (yet): seen when it comes
                self.put("absent")
                if self.probes is not None:
                    self.probes.append((entry(attribute), namespace, MISSING))
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
        found = modules.get(name, MISSING)
        if self.probes is not None:
            self.probes.append((entry(name), modules, found))
        if found is MISSING:
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
        self.put("callable", library_name(module or "builtins", name))
        if owner is not None and not isinstance(owner, types.ModuleType):
            self.value(owner)  # a bound builtin method reads its object (``values.get``)


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
