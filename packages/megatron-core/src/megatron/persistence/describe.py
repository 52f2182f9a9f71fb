"""A saved pipeline's outline, read from its description alone.

``megatron summary FILE`` and ``megatron plot FILE`` show a file without loading it: no class
is resolved from ``custom_objects``, no function is bound, no plugin artifact (a Keras model, a
scikit-learn estimator) is read, so they need neither the user's code nor TensorFlow. Output
specs that the file does not record are inferred where a built-in layer of megatron-core can
say them from its hyperparameters, and shown as unknown (``?``) elsewhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from os import PathLike
from typing import Any

from megatron.outline import MetricStep, Outline, Step, describe
from megatron.persistence import schema
from megatron.persistence.limits import Limits
from megatron.persistence.reader import ArchiveReader
from megatron.specs import UNKNOWN, Spec

CUSTOM = "custom:"
CORE = "megatron-core"

__all__ = ["outline_file", "printable"]


def outline_file(path: str | PathLike[str], limits: Limits | Mapping[str, int] | None = None) -> Outline:
    """The outline of the pipeline saved at ``path`` (see :mod:`megatron.persistence.describe`).
    A layer's state size counts its arrays' data, and its plugin artifacts (a Keras model, an
    estimator) by the bytes the file stores for them. Every text from the file is
    :func:`printable`."""
    with ArchiveReader(path, Limits.of(limits)) as archive:
        description = schema.read(archive)
        return _printable(_Reader(archive).outline(description))


def printable(text: str) -> str:
    """``text`` with every character a terminal would not show as itself (control characters
    such as escape sequences and carriage returns, lone surrogates, bidirectional overrides)
    written as Python escapes it (``\\x1b``): text from a file can neither move the cursor nor
    fail to encode."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, tuple):
        return tuple(_printable(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _printable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


def _class(name: str) -> str:
    """A registered name as it is, a custom class by its own name."""
    return name[len(CUSTOM) :].rpartition(":")[2].rsplit(".", 1)[-1] if name.startswith(CUSTOM) else name


class _Reader:
    """Reads what the outline shows, each layer and each array once, however many times the
    layer is called."""

    def __init__(self, archive: ArchiveReader) -> None:
        self.archive = archive
        self.layers: dict[int, tuple[Any, str, int]] = {}  # layer: built, description, state bytes
        self.headers: dict[str, tuple[tuple[int, ...], Any] | None] = {}

    def layer(self, index: int, entry: schema.LayerEntry) -> tuple[Any, str, int]:
        if index not in self.layers:
            stateful = entry.state is not None
            self.layers[index] = (
                self.build(entry),
                describe(_class(entry.class_name), self.config(entry.config)),
                self.stored_bytes(entry) if stateful else 0,
            )
        return self.layers[index]

    def outline(self, description: schema.Description) -> Outline:
        specs: dict[str, Spec] = {}
        inputs = []
        for input_entry in description.inputs:
            spec = self.input_spec(input_entry)
            specs[input_entry.name] = spec
            inputs.append((input_entry.name, str(spec)))
        steps = []
        seen: set[int] = set()
        for call in description.calls:
            entry = description.layers[call.layer]
            layer, shown, state_bytes = self.layer(call.layer, entry)
            n_targets = _n_targets(layer, len(call.inputs))
            features = call.inputs[: len(call.inputs) - n_targets]
            out = self.output_specs(layer, [specs.get(n, UNKNOWN) for n in features], len(call.outputs))
            specs.update(zip(call.outputs, out))
            stateful = entry.state is not None
            steps.append(
                Step(
                    layer=_class(entry.class_name),
                    description=shown,
                    outputs=tuple(call.outputs),
                    specs=tuple(str(s) for s in out),
                    features=tuple(features),
                    targets=tuple(call.inputs[len(features) :]),
                    stateful=stateful,
                    fitted=bool(entry.state and entry.state.fitted),
                    state_bytes=state_bytes,
                    shared=call.layer in seen,
                )
            )
            seen.add(call.layer)
        return Outline(
            name=description.name,
            version=description.version,
            inputs=tuple(inputs),
            steps=tuple(steps),
            outputs=tuple(description.outputs),
            metrics=tuple(
                MetricStep(m.name, _class(m.class_name), tuple(m.inputs)) for m in description.metrics
            ),
        )

    # -- showing values ------------------------------------------------------------------------
    def config(self, encoded: Any) -> list[tuple[str, str]]:
        if not (isinstance(encoded, dict) and "__dict__" in encoded):
            return []
        return [(str(self.plain(k)), self.shown(v)) for k, v in encoded["__dict__"]]

    def shown(self, value: Any) -> str:
        """An encoded hyperparameter as the summary shows it, without decoding arrays,
        functions or artifacts."""
        if isinstance(value, dict):
            if "__array__" in value:
                return f"array{self.array_shape(value['__array__'])}"
            if "__function__" in value:
                base = str(value["__function__"]).partition("@")[0]
                return base.rpartition(":")[2].rsplit(".", 1)[-1]
            if "__artifact__" in value:
                return f"<{value['__artifact__']} artifact>"
        text = schema.preview(self.plain(value), 25)  # built no longer than it is shown
        return text if len(text) <= 24 else text[:21] + "..."

    def plain(self, value: Any) -> Any:
        """An encoded value made of JSON, tuples, dicts, floats and dtypes, decoded."""
        if isinstance(value, list):
            return [self.plain(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__float__" in value:
            return float(value["__float__"])
        if "__tuple__" in value:
            return tuple(self.plain(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {_hashable(self.plain(k)): self.plain(v) for k, v in value["__dict__"]}
        if "__dtype__" in value:
            return value["__dtype__"]
        return "..."

    def array_header(self, member: str) -> tuple[tuple[int, ...], Any] | None:
        """An array's (shape, dtype), read from its first bytes once."""
        if member not in self.headers:
            try:
                self.headers[member] = self.archive.array_header(member)
            except Exception:  # a damaged member: audit says what is wrong with it
                self.headers[member] = None
        return self.headers[member]

    def array_shape(self, member: str) -> tuple[int, ...] | str:
        header = self.array_header(member)
        return "(?)" if header is None else header[0]

    def stored_bytes(self, entry: schema.LayerEntry) -> int:
        """The bytes of a layer's fitted arrays and plugin artifacts."""
        values = [entry.config] + ([entry.state.metadata] if entry.state is not None else [])
        arrays: set[str] = set()
        files: set[str] = set()
        for value in values:
            for item in schema.tagged_values(value):
                if "__array__" in item:
                    arrays.add(item["__array__"])
                elif "__artifact__" in item and isinstance(item.get("meta"), dict):
                    files.update(v for v in item["meta"].values() if isinstance(v, str))
        total = sum(self.archive.members[m].file_size for m in files if m in self.archive.members)
        for member in arrays:
            header = self.array_header(member)
            if header is not None:
                total += math.prod(header[0]) * header[1].itemsize
        return total

    # -- inferring specs -----------------------------------------------------------------------
    def input_spec(self, entry: schema.InputEntry) -> Spec:
        try:
            return Spec(self.plain(entry.shape), entry.dtype)
        except Exception:
            return UNKNOWN

    def build(self, entry: schema.LayerEntry) -> Any:
        """A built-in layer of megatron-core from its hyperparameters, where they are plain data
        (no functions, no artifacts); ``None`` otherwise. Nothing is imported for it."""
        from megatron.layers.base import Layer
        from megatron.plugins import get_registry

        if entry.class_name.startswith(CUSTOM) or _has_code_or_artifacts(entry.config):
            return None
        if entry.plugin is not None and entry.plugin.distribution != CORE:
            return None
        # megatron-core's own class of that name, even where another plugin registers it too
        core = [c for c in get_registry().candidates("layer", entry.class_name) if c.distribution == CORE]
        if len(core) != 1:
            return None
        (registered,) = core
        try:
            cls = registered.resolve()
            config = self.decode(entry.config)
            layer = cls(**config)
        except Exception:  # a layer refusing what the file gives it: its spec stays unknown
            return None
        return layer if isinstance(layer, Layer) else None

    def decode(self, value: Any) -> Any:
        if isinstance(value, dict) and "__array__" in value:
            return self.archive.array(value["__array__"])
        if isinstance(value, dict) and "__dtype__" in value:
            import numpy as np

            return np.dtype(value["__dtype__"])
        if isinstance(value, dict) and "__tuple__" in value:
            return tuple(self.decode(v) for v in value["__tuple__"])
        if isinstance(value, dict) and "__dict__" in value:
            return {self.decode(k): self.decode(v) for k, v in value["__dict__"]}
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        return self.plain(value)

    @staticmethod
    def output_specs(layer: Any, inputs: list[Spec], n: int) -> list[Spec]:
        unknown = [UNKNOWN] * n
        if layer is None:
            return unknown
        try:
            declared = layer.output_spec(*inputs)
        except Exception:
            return unknown
        specs = [declared] if isinstance(declared, Spec) else list(declared)
        if layer.filters_rows:
            specs = specs[:-1]
        return specs if len(specs) == n and all(isinstance(s, Spec) for s in specs) else unknown


def _n_targets(layer: Any, n_inputs: int) -> int:
    if layer is None:
        return 0
    try:
        n = int(layer.n_targets(n_inputs))
    except Exception:
        return 0
    return n if 0 <= n <= n_inputs else 0


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _has_code_or_artifacts(value: Any) -> bool:
    return any("__function__" in item or "__artifact__" in item for item in schema.tagged_values(value))
