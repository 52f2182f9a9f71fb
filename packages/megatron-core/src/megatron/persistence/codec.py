"""Values in the pipeline description: JSON, with tagged forms for what JSON lacks.

Arrays go to ``.npy`` members; functions are stored by reference (name, line and a digest of
what they compute: :mod:`megatron.persistence.functions`, with the distribution that ships
them) and come back only from the caller's ``custom_objects`` (or numpy); objects that a plugin
serializer claims (estimators, models) become that plugin's artifacts, recorded with the plugin
(:mod:`megatron.persistence.providers`). Anything else is refused at save time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from megatron.errors import PersistenceError
from megatron.persistence.archive import ArchiveWriter
from megatron.persistence.functions import (
    bind_functions,
    function_name,
    function_record,
    needed_functions,
    resolve_function,
)
from megatron.persistence.providers import function_distribution
from megatron.persistence.reader import ArchiveReader

__all__ = ["Decoder", "Encoder", "bind_functions", "function_name", "needed_functions", "resolve_function"]


class Encoder:
    """Turns layer configurations and states into JSON values, writing arrays and artifacts."""

    def __init__(
        self,
        archive: ArchiveWriter,
        serializers: list[Any],
        plugin_of: Callable[[Any], dict[str, str] | None] = lambda serializer: None,
    ) -> None:
        self.archive = archive
        self.serializers = serializers
        self.plugin_of = plugin_of  # the plugin that registered a serializer, as the file records it
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
                meta = serializer.save(value, self.archive, prefix)
                return {"__artifact__": serializer.name, "meta": meta, "plugin": self.plugin_of(serializer)}
        if callable(value):
            return {"__function__": function_record(value), "distribution": function_distribution(value)}
        raise PersistenceError(
            f"Cannot save {where}: a {type(value).__module__}.{type(value).__qualname__} is not data, and no "
            "installed plugin serializes it"
        )


class Decoder:
    """The inverse of :class:`Encoder`, resolving functions and artifacts safely."""

    def __init__(
        self,
        archive: ArchiveReader,
        serializers: Mapping[str, Any] | Callable[[dict[str, Any]], Any],
        custom_objects: Mapping[str, Any],
        options: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.archive = archive
        self.serializers = serializers
        self.custom_objects = custom_objects
        self.options = options  # by serializer format name: each serializer gets its own entry

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
            if callable(self.serializers):  # chooses by the recorded plugin as well as the name
                serializer = self.serializers(value)
            else:
                serializer = self.serializers.get(value["__artifact__"])
            if serializer is None:
                from megatron.plugins import get_plugin_manager
                from megatron.plugins.hints import missing_name

                kind = str(value["__artifact__"])
                missing = missing_name("serializer", kind, get_plugin_manager().distributions)
                raise PersistenceError(
                    f"{str(self.archive.path)!r} holds a {kind!r} artifact, and no installed plugin reads it"
                    + (f": {missing}" if missing is not None else "")
                )
            return serializer.load(value["meta"], self.archive, self.options.get(value["__artifact__"], {}))
        raise PersistenceError(
            f"{str(self.archive.path)!r}: unknown value {sorted(value)!r} in the description"
        )
