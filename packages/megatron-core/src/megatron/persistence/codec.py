"""Values in the pipeline description: JSON, with tagged forms for what JSON lacks.

Arrays go to ``.npy`` members; functions are stored by name and come back only from the
caller's ``custom_objects`` (or numpy); objects that a plugin serializer claims (estimators,
models) become that plugin's artifacts. Anything else is refused at save time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from megatron.errors import PersistenceError
from megatron.persistence.archive import ArchiveReader, ArchiveWriter


def function_name(function: Any) -> str:
    module = getattr(function, "__module__", None) or ""
    return f"{module}:{getattr(function, '__qualname__', getattr(function, '__name__', repr(function)))}"


class Encoder:
    """Turns layer configurations and states into JSON values, writing arrays and artifacts."""

    def __init__(self, archive: ArchiveWriter, serializers: list[Any]) -> None:
        self.archive = archive
        self.serializers = serializers
        self._artifacts = 0

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int | np.integer):
            return int(value)
        if isinstance(value, float | np.floating):
            value = float(value)
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.ndarray):
            return {"__array__": self.archive.add_array(value)}
        if isinstance(value, np.dtype):
            return {"__dtype__": value.str}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, where) for v in value]}
        if isinstance(value, list):
            return [self.encode(v, where) for v in value]
        if isinstance(value, Mapping):
            return {"__dict__": [[self.encode(k, where), self.encode(v, where)] for k, v in value.items()]}
        for serializer in self.serializers:
            if serializer.claims(value):
                self._artifacts += 1
                prefix = f"artifacts/{self._artifacts}"
                return {"__artifact__": serializer.name, "meta": serializer.save(value, self.archive, prefix)}
        if callable(value):
            return {"__function__": function_name(value)}
        raise PersistenceError(
            f"Cannot save {where}: a {type(value).__module__}.{type(value).__qualname__} is not data, and no "
            "installed plugin serializes it"
        )


class Decoder:
    """The inverse of :class:`Encoder`, resolving functions and artifacts safely."""

    def __init__(
        self,
        archive: ArchiveReader,
        serializers: Mapping[str, Any],
        custom_objects: Mapping[str, Any],
        options: Mapping[str, Any],
    ) -> None:
        self.archive = archive
        self.serializers = serializers
        self.custom_objects = custom_objects
        self.options = options

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__float__" in value:
            return float(value["__float__"])
        if "__array__" in value:
            return self.archive.array(value["__array__"])
        if "__dtype__" in value:
            return np.dtype(value["__dtype__"])
        if "__tuple__" in value:
            return tuple(self.decode(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {self.decode(k): self.decode(v) for k, v in value["__dict__"]}
        if "__function__" in value:
            return resolve_function(value["__function__"], self.custom_objects)
        if "__artifact__" in value:
            serializer = self.serializers.get(value["__artifact__"])
            if serializer is None:
                raise PersistenceError(
                    f"{str(self.archive.path)!r} holds a {value['__artifact__']!r} artifact, and no installed "
                    "plugin reads it (megatron-sklearn reads 'skops', megatron-keras 'keras')"
                )
            return serializer.load(value["meta"], self.archive, self.options)
        raise PersistenceError(
            f"{str(self.archive.path)!r}: unknown value {sorted(value)!r} in the description"
        )


def resolve_function(name: str, custom_objects: Mapping[str, Any]) -> Callable[..., Any]:
    """A function saved by name: from ``custom_objects`` (by qualified or short name), or a
    numpy function. Nothing is imported from the file."""
    module, _, qualname = name.partition(":")
    for key in (name, qualname, qualname.rsplit(".", 1)[-1]):
        if key in custom_objects:
            return custom_objects[key]
    if module == "numpy" and "." not in qualname:
        function = getattr(np, qualname, None)
        if callable(function):
            return function
    raise PersistenceError(
        f"The pipeline needs the function {qualname!r} (from {module or 'unknown module'}): pass it as "
        f"load_pipeline(..., custom_objects={{{qualname.rsplit('.', 1)[-1]!r}: ...}})"
    )


def needed_functions(value: Any) -> list[str]:
    """Names of the functions a described value needs."""
    found: list[str] = []
    if isinstance(value, list):
        for v in value:
            found += needed_functions(v)
    elif isinstance(value, dict):
        if "__function__" in value:
            found.append(value["__function__"])
        for v in value.values():
            found += needed_functions(v)
    return found
