"""Saving a pipeline as data: its description built from the public graph
(``pipeline.graph``: inputs, outputs, metrics and layer calls; its name and version), then
written atomically (:class:`~megatron.persistence.archive.ArchiveWriter`)."""

from __future__ import annotations

from contextlib import suppress
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megatron.config import saved_config
from megatron.errors import PersistenceError
from megatron.graph.call import Call
from megatron.graph.topology import Graph
from megatron.layers.base import Layer, StatefulLayer
from megatron.metrics.base import MetricNode
from megatron.persistence import tokens
from megatron.persistence.archive import FORMAT, ArchiveWriter
from megatron.persistence.codec import Encoder
from megatron.persistence.filenames import file_name
from megatron.persistence.providers import record_entry
from megatron.persistence.resolving import class_name
from megatron.persistence.serializer import registered_serializers

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline

__all__ = ["save_pipeline"]


def save_pipeline(pipeline: Pipeline, directory: str | PathLike[str]) -> Path:
    """Write ``pipeline`` to ``directory/{name}-{version}.megatron`` (see
    :func:`~megatron.persistence.filenames.file_name`) and return the path. Everything is
    encoded before the folder is created; the file is written to a new temporary file and
    renamed into place, keeping the permissions of a file it replaces. A failed save leaves
    no file and no folder behind. Each stateful layer gets the state token that loading the
    file will give it (see :mod:`megatron.persistence.tokens`)."""
    describer = _Describer()
    description = describer.description(pipeline.graph, pipeline.name, pipeline.version)
    folder = Path(directory)
    created = _make_folder(folder)
    path = folder / file_name(pipeline.name, pipeline.version)
    try:
        describer.archive.write(path, description)
    except BaseException:
        for made in reversed(created):  # the innermost first; a folder someone filled meanwhile stays
            with suppress(OSError):
                made.rmdir()
        raise
    for layer, recorded, derived in describer.tokens:
        tokens.bind(layer, recorded, derived)
    return path


class _Describer:
    """Builds a pipeline's description, encoding values into :attr:`archive` as it goes."""

    def __init__(self) -> None:
        self.archive = ArchiveWriter()
        serializers = registered_serializers()
        registered_by = {id(serializer): entry for serializer, entry in serializers}
        self.encoder = Encoder(
            self.archive,
            [s for s, _ in serializers],
            lambda serializer: record_entry(registered_by.get(id(serializer))),
        )
        self.layer_ids: dict[int, int] = {}
        self.layers: list[dict[str, Any]] = []
        self.tokens: list[tuple[StatefulLayer, str, str]] = []
        """Each stateful layer, the token its file records and the one loading derives."""

    def description(self, graph: Graph, name: str, version: str | None) -> dict[str, Any]:
        calls = [self.call(call) for call in graph.calls]
        return {
            "format": FORMAT,
            "name": name,
            "version": version,
            "inputs": [
                {
                    "name": n.name,
                    "shape": self.encoder.encode(n.spec.shape, "an input shape"),
                    "dtype": None if n.dtype is None else n.dtype.str,
                    "columns": n.columns,
                }
                for n in graph.inputs
            ],
            "layers": self.layers,
            "calls": calls,
            "outputs": list(graph.output_names),
            "metrics": [self.metric(m) for m in graph.metrics],
        }

    def call(self, call: Call) -> dict[str, Any]:
        layer = call.layer
        if id(layer) not in self.layer_ids:
            self.layer_ids[id(layer)] = len(self.layers)
            self.layers.append(self.layer(layer))
        return {
            "layer": self.layer_ids[id(layer)],
            "inputs": [n.name for n in call.inputs],
            "outputs": [n.name for n in call.visible_outputs],
            "named": [n.named for n in call.visible_outputs],
        }

    def layer(self, layer: Layer) -> dict[str, Any]:
        where = f"layer {layer.name!r} ({type(layer).__name__})"
        written = len(self.archive.members)
        state = None
        if layer.stateful:
            if not isinstance(layer, StatefulLayer):
                raise PersistenceError(f"Cannot save {where}: it is stateful but not a StatefulLayer")
            state = {
                "metadata": self.encoder.encode(layer.metadata, f"the fitted state of {where}"),
                "fitted": layer.fitted,
                "token": tokens.recorded_token(layer),
            }
        config = self.encoder.encode(saved_config(layer, where), f"the hyperparameters of {where}")
        if state is not None and isinstance(layer, StatefulLayer):
            members = {
                n: tokens.member_digest(self.archive.members[n]) for n in list(self.archive.members)[written:]
            }
            digest = tokens.content_digest([config, state["metadata"], state["fitted"]], members)
            self.tokens.append((layer, state["token"], tokens.derived_token(state["token"], digest)))
        name, plugin = class_name("layer", layer)
        return {"class": name, "plugin": plugin, "name": layer.name, "config": config, "state": state}

    def metric(self, node: MetricNode) -> dict[str, Any]:
        name, plugin = class_name("metric", node.metric)
        where = f"metric {node.name!r}"
        return {
            "class": name,
            "plugin": plugin,
            "name": node.name,
            "inputs": [n.name for n in node.inputs],
            "config": self.encoder.encode(saved_config(node.metric, where), where),
        }


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those it created, the outermost first."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists() or candidate.is_symlink():
            break
        missing.append(candidate)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        for made in missing:
            with suppress(OSError):
                made.rmdir()
        raise PersistenceError(f"Cannot create the folder {str(folder)!r} to save into: {exc}") from exc
    return missing[::-1]
