"""Reading a pipeline file back without running code from it: every class and function it
needs resolved first, then its graph built (inputs, layers with what they learned put back,
their calls, metrics) into a :class:`SavedPipeline`, from which the caller builds the
pipeline (``Pipeline.from_saved``; ``megatron.load_pipeline`` does both)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from typing import Any

from megatron.errors import PersistenceError
from megatron.graph.node import Input, Node
from megatron.layers.base import Layer, StatefulLayer
from megatron.metrics.base import Metric, MetricNode
from megatron.persistence import schema, tokens
from megatron.persistence.archive import DESCRIPTION
from megatron.persistence.codec import Decoder, bind_functions, needed_functions
from megatron.persistence.limits import Limits
from megatron.persistence.options import SerializerOptions, combine_options
from megatron.persistence.providers import check_functions, recorded_functions
from megatron.persistence.reader import ArchiveReader
from megatron.persistence.resolving import custom_objects_of, encoded_values, resolve_classes
from megatron.persistence.serializer import artifact_reader

__all__ = ["SavedPipeline", "building", "read_pipeline"]


@contextmanager
def building(where: str) -> Iterator[None]:
    """Any failure while building from a file, as a :class:`PersistenceError` saying where."""
    try:
        yield
    except PersistenceError:
        raise
    except Exception as exc:  # a registered class refusing what the file gives it
        raise PersistenceError(f"{where} cannot be built: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class SavedPipeline:
    """What a pipeline file holds, built: its graph's inputs, outputs and metrics (the layers
    fitted as saved), its name and version. ``where`` names the file's description."""

    name: str
    version: str | None
    inputs: list[Input]
    outputs: list[Node]
    metrics: list[MetricNode]
    where: str

    @contextmanager
    def building(self) -> Iterator[None]:
        """Any failure while building the pipeline from it, as a :class:`PersistenceError`
        naming the file."""
        with building(f"{self.where}: the pipeline"):
            yield


def read_pipeline(
    path: str | PathLike[str],
    custom_objects: Mapping[str, Any] | None = None,
    trusted: list[str] | None = None,
    limits: Limits | Mapping[str, int] | None = None,
    serializer_options: SerializerOptions | None = None,
) -> SavedPipeline:
    """Read a pipeline saved with :meth:`Pipeline.save`, fitted as it was (what
    :func:`megatron.load_pipeline` builds its pipeline from).

    Layer and metric classes come from the plugin registry, or from ``custom_objects`` for
    your own classes and functions (a ``Lambda``'s function, the seed's ``Whiten``); nothing is
    imported or run from the file. Plugin artifacts load safely, each through the serializer
    registered for its format, given its entry of ``serializer_options`` (scikit-learn
    estimators through skops: types it does not trust are refused unless listed in
    ``{"skops": {"trusted": [...]}}``, or ``trusted=`` for short; Keras models in safe mode,
    with ``custom_objects`` as well). A serializer refuses an option it does not read.

    A file that declares more than ``limits`` allow (:class:`~megatron.persistence.Limits`:
    sizes, compression ratio, nesting) is refused before anything is inflated; pass higher
    limits for a large file you trust. Every refusal is a
    :class:`~megatron.errors.PersistenceError` naming the file and the member or field.
    """
    custom = custom_objects_of(custom_objects)
    shortcuts = {"trusted": trusted, "custom_objects": None if custom_objects is None else custom}
    options = combine_options(serializer_options, **shortcuts)
    with ArchiveReader(path, Limits.of(limits)) as archive:
        description = schema.read(archive)
        at = archive.member(DESCRIPTION)
        # Everything the file needs is resolved before anything is built.
        layer_classes = resolve_classes("layer", description.layers, custom, at)
        metric_classes = resolve_classes("metric", description.metrics, custom, at)
        values = encoded_values(
            description
        )  # one key per recorded function, each computing what was recorded
        check_functions(recorded_functions(values), bind_functions(needed_functions(values), custom), at)
        decoder = Decoder(archive, artifact_reader(at), custom, options)
        return _Builder(archive, decoder, at).pipeline(description, layer_classes, metric_classes)


class _Builder:
    """Builds the graph a description holds, node by node, decoding values as it goes."""

    def __init__(self, archive: ArchiveReader, decoder: Decoder, at: str) -> None:
        self.archive = archive
        self.decoder = decoder
        self.at = at
        self.nodes: dict[str, Node] = {}

    def pipeline(
        self, description: schema.Description, layer_classes: list[type], metric_classes: list[type]
    ) -> SavedPipeline:
        inputs = [self.input(i, entry) for i, entry in enumerate(description.inputs)]
        layers = [
            self.layer(i, entry, cls) for i, (entry, cls) in enumerate(zip(description.layers, layer_classes))
        ]
        for i, call in enumerate(description.calls):
            self.call(i, call, layers[call.layer])
        metrics = [
            self.metric(i, entry, cls)
            for i, (entry, cls) in enumerate(zip(description.metrics, metric_classes))
        ]
        outputs = [self.nodes[name] for name in description.outputs]
        return SavedPipeline(description.name, description.version, inputs, outputs, metrics, self.at)

    def input(self, i: int, entry: schema.InputEntry) -> Input:
        with building(f"{self.at}: inputs[{i}]"):
            node = Input(entry.name, self.decoder.decode(entry.shape), entry.dtype, columns=entry.columns)
        self.nodes[node.name] = node
        return node

    def layer(self, i: int, entry: schema.LayerEntry, cls: type) -> Layer:
        where = f"{self.at}: layers[{i}] ({entry.class_name})"
        with building(where):
            read = len(self.archive.digests)
            layer: Layer = cls(**self.decoder.decode(entry.config))
            layer.name = entry.name
            if entry.state is not None:
                self.restore(layer, entry, entry.state, read, where)
        return layer

    def restore(
        self, layer: Any, entry: schema.LayerEntry, state: schema.StateEntry, read: int, where: str
    ) -> None:
        """Put back what ``layer`` learned, with the state token derived from the one the file
        records and the state as read (``read``: the members read before the layer's)."""
        if not isinstance(layer, StatefulLayer):
            raise PersistenceError(f"{where}: the file gives it fitted state, but it is not a StatefulLayer")
        metadata = self.decoder.decode(state.metadata)
        members = dict(list(self.archive.digests.items())[read:])  # what this layer read
        digest = tokens.content_digest([entry.config, state.metadata, state.fitted], members)
        derived = tokens.derived_token(state.token, digest)
        layer.restore(metadata, state.fitted, state_token=derived, recorded_token=state.token)

    def call(self, i: int, call: schema.CallEntry, layer: Layer) -> None:
        where = f"{self.at}: calls[{i}] (layer {layer.name!r})"
        _check_outputs(layer, call, where)
        with building(where):
            result = layer([self.nodes[name] for name in call.inputs], call.outputs)
        outputs = [result] if isinstance(result, Node) else list(result)
        for node, named in zip(outputs, call.named):
            node.named = named
            self.nodes[node.name] = node

    def metric(self, i: int, entry: schema.MetricEntry, cls: type) -> MetricNode:
        with building(f"{self.at}: metrics[{i}] ({entry.class_name})"):
            metric: Metric = cls(**self.decoder.decode(entry.config))
            return metric([self.nodes[n] for n in entry.inputs], entry.name)


def _check_outputs(layer: Layer, call: schema.CallEntry, where: str) -> None:
    """A layer makes as many outputs as the call names (one more for the kept rows of a
    filtering layer), checked before it is called: ``n_outputs`` comes from the file, and
    building a billion output specs would exhaust memory before failing."""
    n = layer.n_outputs
    allowed = len(call.outputs) + (1 if layer.filters_rows else 0)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= max(allowed, 1):
        raise PersistenceError(
            f"{where}: the layer declares n_outputs={n!r}, but the call names {len(call.outputs)} outputs"
        )
