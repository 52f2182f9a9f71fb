"""Saving a pipeline as data, loading it back without running code from the file, and
auditing what a file would need."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megatron.errors import PersistenceError
from megatron.layers.base import Layer
from megatron.metrics.base import Metric
from megatron.nodes import Input, Node
from megatron.persistence.archive import EXTENSION, FORMAT, ArchiveReader, ArchiveWriter
from megatron.persistence.codec import Decoder, Encoder, function_name, needed_functions
from megatron.plugins import get_registry

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline

CUSTOM = "custom:"


def file_name(name: str, version: str | None) -> str:
    """``{name}-{version}.megatron`` (the seed's naming), safe as a file name."""
    stem = name if version is None else f"{name}-{version}"
    return re.sub(r"[\\/\x00]", "_", stem) + EXTENSION


def _serializers() -> list[Any]:
    registry = get_registry()
    found = []
    for entry in registry.entries("serializer"):
        serializer = entry.resolve()
        found.append(serializer() if isinstance(serializer, type) else serializer)
    return found


def _class_name(kind: str, obj: Any) -> str:
    """The registered name of ``obj``'s class, or ``custom:module:qualname``."""
    entry = get_registry().find(kind, type(obj))  # type: ignore[arg-type]
    return entry.name if entry is not None else CUSTOM + function_name(type(obj))


def save_pipeline(pipeline: Pipeline, directory: str | Path) -> Path:
    """Write ``pipeline`` to ``directory/{name}-{version}.megatron`` and return the path."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    archive = ArchiveWriter()
    encoder = Encoder(archive, _serializers())
    layer_ids: dict[int, int] = {}
    layers, calls = [], []
    for op in pipeline._ops:
        layer = op.layer
        if id(layer) not in layer_ids:
            layer_ids[id(layer)] = len(layers)
            where = f"layer {layer.name!r} ({type(layer).__name__})"
            state = None
            if layer.stateful:
                state = {
                    "metadata": encoder.encode(layer.metadata, f"the fitted state of {where}"),  # type: ignore[attr-defined]
                    "fitted": layer.fitted,  # type: ignore[attr-defined]
                    "token": layer.state_token,  # type: ignore[attr-defined]
                }
            layers.append(
                {
                    "class": _class_name("layer", layer),
                    "name": layer.name,
                    "config": encoder.encode(layer.get_config(), f"the hyperparameters of {where}"),
                    "state": state,
                }
            )
        calls.append(
            {
                "layer": layer_ids[id(layer)],
                "inputs": [n.name for n in op.inputs],
                "outputs": [n.name for n in op.visible_outputs],
                "named": [n.named for n in op.visible_outputs],
            }
        )
    description = {
        "format": FORMAT,
        "name": pipeline.name,
        "version": pipeline.version,
        "inputs": [
            {
                "name": n.name,
                "shape": encoder.encode(n.spec.shape, "an input shape"),
                "dtype": None if n.dtype is None else n.dtype.str,
                "columns": n.columns,
            }
            for n in pipeline.inputs
        ],
        "layers": layers,
        "calls": calls,
        "outputs": list(pipeline.output_names),
        "metrics": [
            {
                "class": _class_name("metric", m.metric),
                "name": m.name,
                "inputs": [n.name for n in m.inputs],
                "config": encoder.encode(m.metric.get_config(), f"metric {m.name!r}"),
            }
            for m in pipeline.metrics
        ],
    }
    path = folder / file_name(pipeline.name, pipeline.version)
    archive.write(path, description)
    return path


def _resolve_class(kind: str, name: str, custom_objects: Mapping[str, Any], path: Path) -> type:
    if name.startswith(CUSTOM):
        qualname = name[len(CUSTOM) :].partition(":")[2]
        for key in (qualname, qualname.rsplit(".", 1)[-1]):
            if key in custom_objects:
                return custom_objects[key]
        raise PersistenceError(
            f"{str(path)!r} needs the {kind} class {qualname!r}, which is not a registered {kind}: pass it as "
            f"load_pipeline(..., custom_objects={{{qualname.rsplit('.', 1)[-1]!r}: {qualname.rsplit('.', 1)[-1]}}})"
        )
    registry = get_registry()
    if name not in registry.names(kind):  # type: ignore[arg-type]
        raise PersistenceError(
            f"{str(path)!r} names the {kind} {name!r}, which no installed plugin registers: it is refused"
        )
    return registry.get(kind, name)  # type: ignore[arg-type]


def load_pipeline(
    path: str | Path,
    storage: Any = None,
    custom_objects: Mapping[str, Any] | None = None,
    trusted: list[str] | None = None,
) -> Pipeline:
    """Load a pipeline saved with :meth:`Pipeline.save`, fitted as it was.

    Layer and metric classes come from the plugin registry, or from ``custom_objects`` for
    your own classes and functions (a ``Lambda``'s function, the seed's ``Whiten``); nothing is
    imported or run from the file. Plugin artifacts load safely (scikit-learn estimators through
    skops: types it does not trust are refused unless listed in ``trusted``; Keras models in
    safe mode). ``storage`` reattaches output storage.

    Example::

        pipeline = load_pipeline('pipelines/getting_started-0.1.megatron', storage='default')
    """
    from megatron.pipeline import Pipeline

    custom = dict(custom_objects or {})
    archive = ArchiveReader(path)
    try:
        description = archive.description
        # Everything the file needs is resolved before anything is built.
        layer_classes = [
            _resolve_class("layer", entry["class"], custom, archive.path) for entry in description["layers"]
        ]
        metric_classes = [
            _resolve_class("metric", m["class"], custom, archive.path) for m in description["metrics"]
        ]
        for cls in layer_classes:
            if not (isinstance(cls, type) and issubclass(cls, Layer)):
                raise PersistenceError(f"{str(archive.path)!r}: {cls!r} is not a megatron Layer class")
        for cls in metric_classes:
            if not (isinstance(cls, type) and issubclass(cls, Metric)):
                raise PersistenceError(f"{str(archive.path)!r}: {cls!r} is not a megatron Metric class")
        from megatron.persistence.codec import resolve_function

        for name in needed_functions(description["layers"]) + needed_functions(description["metrics"]):
            resolve_function(name, custom)
        serializers = {s.name: s for s in _serializers()}
        decoder = Decoder(
            archive, serializers, custom, {"trusted": list(trusted or []), "custom_objects": custom}
        )

        nodes: dict[str, Node] = {}
        inputs = []
        for spec in description["inputs"]:
            node = Input(spec["name"], decoder.decode(spec["shape"]), spec["dtype"], columns=spec["columns"])
            nodes[node.name] = node
            inputs.append(node)
        layers = []
        for entry, cls in zip(description["layers"], layer_classes):
            layer = cls(**decoder.decode(entry["config"]))
            layer.name = entry["name"]
            if entry["state"] is not None:
                layer.metadata = decoder.decode(entry["state"]["metadata"])
                layer.__dict__["_fitted"] = bool(entry["state"]["fitted"])
                layer.__dict__["state_token"] = entry["state"]["token"]
            layers.append(layer)
        for call in description["calls"]:
            layer = layers[call["layer"]]
            result = layer([nodes[name] for name in call["inputs"]], call["outputs"])
            outputs = [result] if isinstance(result, Node) else list(result)
            for node, named in zip(outputs, call["named"]):
                node.named = named
                nodes[node.name] = node
        metrics = [
            cls(**decoder.decode(m["config"]))([nodes[n] for n in m["inputs"]], m["name"])
            for m, cls in zip(description["metrics"], metric_classes)
        ]
        return Pipeline(
            inputs,
            [nodes[name] for name in description["outputs"]],
            description["name"],
            description["version"],
            storage=storage,
            metrics=metrics,
        )
    except PersistenceError:
        raise
    except (KeyError, TypeError, IndexError) as exc:
        raise PersistenceError(
            f"{str(archive.path)!r} has a malformed description: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        archive.close()


def audit(path: str | Path) -> list[str]:
    """Every class and function loading ``path`` would need, without loading it."""
    archive = ArchiveReader(path)
    try:
        description = archive.description
        lines = []
        registry = get_registry()
        for kind, entries in (("layer", description["layers"]), ("metric", description["metrics"])):
            for entry in entries:
                name = entry["class"]
                if name.startswith(CUSTOM):
                    lines.append(f"{kind} class {name[len(CUSTOM) :]} (from custom_objects)")
                elif name in registry.names(kind):
                    registered = registry.entry(kind, name)
                    lines.append(f"{kind} {name} (registered by {registered.distribution})")
                else:
                    lines.append(f"{kind} {name} (NOT registered by any installed plugin: refused)")
        for name in needed_functions(description["layers"]) + needed_functions(description["metrics"]):
            lines.append(f"function {name} (from custom_objects, or numpy)")
        serializers = {s.name: s for s in _serializers()}
        for meta in _artifacts(description):
            serializer = serializers.get(meta["__artifact__"])
            if serializer is None:
                lines.append(f"artifact {meta['__artifact__']} (no installed plugin reads it)")
            else:
                lines += serializer.audit(meta["meta"], archive)
        return lines
    finally:
        archive.close()


def _artifacts(value: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(value, list):
        for v in value:
            found += _artifacts(v)
    elif isinstance(value, dict):
        if "__artifact__" in value:
            found.append(value)
        else:
            for v in value.values():
                found += _artifacts(v)
    return found
