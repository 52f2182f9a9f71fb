"""The description in a pipeline file (``pipeline.json``), checked field by field before
anything is resolved or built.

:func:`parse` turns the parsed JSON into typed records or raises a
:class:`~megatron.errors.PersistenceError` naming the field (``layers[2].state.token``).
Encoded values (hyperparameters, fitted state, shapes) keep their JSON form for the codec,
but every tag in them is checked here: a value that passes decodes without surprises.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from megatron.errors import PersistenceError
from megatron.persistence import archive
from megatron.persistence.schema_fields import Refused, preview, shown
from megatron.persistence.schema_values import Encoded, PluginEntry, Values, tagged_values

if TYPE_CHECKING:
    from megatron.persistence.reader import ArchiveReader

__all__ = [
    "CallEntry",
    "Description",
    "Encoded",
    "InputEntry",
    "LayerEntry",
    "MetricEntry",
    "PluginEntry",
    "StateEntry",
    "parse",
    "preview",
    "read",
    "tagged_values",
]


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


def parse(value: Any, where: str, members: Collection[str]) -> Description:
    """The description ``value`` (parsed JSON) as typed records. ``where`` names the member in
    errors; ``members`` are the archive's members, which arrays and artifacts must name."""
    try:
        return _Parser(members).description(value)
    except Refused as refused:
        raise PersistenceError(f"{where}: {refused.where}: {refused.reason}") from None


def read(reader: ArchiveReader) -> Description:
    """The description of the file ``reader`` reads, parsed and checked."""
    return parse(reader.description(), reader.member(archive.DESCRIPTION), reader.members)


class _Parser(Values):
    """The description's records, each field checked, and every node named before it is used."""

    def description(self, value: Any) -> Description:
        if isinstance(value, dict) and "format" in value:  # the version first: it decides the rest
            version = value["format"]
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise Refused("format", f"expected a file format version; got {shown(version)}")
            if version > archive.FORMAT:
                raise Refused(
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
            raise Refused(
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
                    raise Refused(
                        f"calls[{i}].inputs[{j}]", f"names the node {name!r}, defined by no earlier call"
                    )
            known.update(call.outputs)
        for where, names in [("outputs", outputs)] + [
            (f"metrics[{i}].inputs", m.inputs) for i, m in enumerate(metrics)
        ]:
            for j, name in enumerate(names):
                if name not in known:
                    raise Refused(f"{where}[{j}]", f"names the node {name!r}, which no input or call defines")
