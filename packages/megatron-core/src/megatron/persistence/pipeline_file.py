"""Saving a pipeline as data, loading it back without running code from the file, and
auditing what a file would need."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megatron.config import saved_config
from megatron.errors import PersistenceError
from megatron.graph.node import Input, Node
from megatron.layers.base import Layer
from megatron.metrics.base import Metric
from megatron.persistence import schema, tokens
from megatron.persistence.archive import DESCRIPTION, FORMAT, ArchiveReader, ArchiveWriter, array_header
from megatron.persistence.codec import Decoder, Encoder, function_name, needed_functions
from megatron.persistence.filenames import file_name
from megatron.persistence.limits import Limits, size
from megatron.persistence.providers import (
    ProviderChangedWarning,
    Recorded,
    check_functions,
    choose,
    record_entry,
    recorded_functions,
)
from megatron.plugins import get_registry
from megatron.plugins.registry import Entry

if TYPE_CHECKING:
    from megatron.pipeline import Pipeline

CUSTOM = "custom:"

__all__ = ["audit", "file_name", "load_pipeline", "save_pipeline"]


def _serializer(entry: Entry) -> Any:
    serializer = entry.resolve()
    return serializer() if isinstance(serializer, type) else serializer


def _serializers() -> list[tuple[Any, Entry]]:
    """Each registered serializer (one per name), with the entry that registered it."""
    return [(_serializer(entry), entry) for entry in get_registry().entries("serializer")]


def _reader(where: str) -> Any:
    """The serializer that reads an encoded artifact: by its name and, from format 2 on, the
    plugin that wrote it (so two plugins registering one name are told apart)."""
    cache: dict[tuple[str, Recorded | None], Any] = {}

    def read(value: dict[str, Any]) -> Any:
        name = value["__artifact__"]
        plugin = value.get("plugin")
        recorded = (
            None if plugin is None else Recorded(plugin["name"], plugin["distribution"], plugin["version"])
        )
        if (name, recorded) not in cache:
            candidates = get_registry().candidates("serializer", name)
            entry = choose("serializer", name, recorded, candidates, where)
            cache[name, recorded] = None if entry is None else _serializer(entry)
        return cache[name, recorded]

    return read


def _class_name(kind: str, obj: Any) -> tuple[str, dict[str, str] | None]:
    """The registered name of ``obj``'s class with the plugin that registered it, or
    ``custom:module:qualname`` and ``None``."""
    entry = get_registry().find(kind, type(obj))  # type: ignore[arg-type]
    if entry is None:
        return CUSTOM + function_name(type(obj)), None
    return entry.name, record_entry(entry)


def save_pipeline(pipeline: Pipeline, directory: str | Path) -> Path:
    """Write ``pipeline`` to ``directory/{name}-{version}.megatron`` (see
    :func:`~megatron.persistence.filenames.file_name`) and return the path. Everything is
    encoded before the folder is created; the file is written to a new temporary file and
    renamed into place, keeping the permissions of a file it replaces. A failed save leaves
    no file and no folder behind. Each stateful layer gets the state token that loading the
    file will give it (see :mod:`megatron.persistence.tokens`)."""
    archive = ArchiveWriter()
    serializers = _serializers()
    registered_by = {id(serializer): entry for serializer, entry in serializers}
    encoder = Encoder(
        archive,
        [s for s, _ in serializers],
        lambda serializer: record_entry(registered_by.get(id(serializer))),
    )
    layer_ids: dict[int, int] = {}
    layers, calls = [], []
    given: list[tuple[Layer, str, str]] = []  # each stateful layer, its recorded and derived tokens
    for call in pipeline.graph.calls:
        layer = call.layer
        if id(layer) not in layer_ids:
            layer_ids[id(layer)] = len(layers)
            where = f"layer {layer.name!r} ({type(layer).__name__})"
            written = len(archive.members)
            state = None
            if layer.stateful:
                state = {
                    "metadata": encoder.encode(layer.metadata, f"the fitted state of {where}"),  # type: ignore[attr-defined]
                    "fitted": layer.fitted,  # type: ignore[attr-defined]
                    "token": tokens.recorded_token(layer),
                }
            config = encoder.encode(saved_config(layer, where), f"the hyperparameters of {where}")
            if state is not None:
                members = {
                    n: tokens.member_digest(archive.members[n]) for n in list(archive.members)[written:]
                }
                digest = tokens.content_digest([config, state["metadata"], state["fitted"]], members)
                given.append((layer, state["token"], tokens.derived_token(state["token"], digest)))
            class_name, plugin = _class_name("layer", layer)
            layers.append(
                {"class": class_name, "plugin": plugin, "name": layer.name, "config": config, "state": state}
            )
        calls.append(
            {
                "layer": layer_ids[id(layer)],
                "inputs": [n.name for n in call.inputs],
                "outputs": [n.name for n in call.visible_outputs],
                "named": [n.named for n in call.visible_outputs],
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
                "class": class_name,
                "plugin": plugin,
                "name": m.name,
                "inputs": [n.name for n in m.inputs],
                "config": encoder.encode(saved_config(m.metric, f"metric {m.name!r}"), f"metric {m.name!r}"),
            }
            for m in pipeline.metrics
            for class_name, plugin in [_class_name("metric", m.metric)]
        ],
    }
    folder = Path(directory)
    created = _make_folder(folder)
    path = folder / file_name(pipeline.name, pipeline.version)
    try:
        archive.write(path, description)
    except BaseException:
        for made in reversed(created):  # the innermost first; a folder someone filled meanwhile stays
            with suppress(OSError):
                made.rmdir()
        raise
    for layer, recorded, derived in given:
        tokens.bind(layer, recorded, derived)
    return path


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


def _resolve_class(
    kind: str, name: str, plugin: schema.PluginEntry | None, custom_objects: Mapping[str, Any], where: str
) -> type:
    """The class a description names: a registered one (by the plugin the file records, when
    several register the name), or one of ``custom_objects``."""
    if name.startswith(CUSTOM):
        qualname = name[len(CUSTOM) :].partition(":")[2]
        short = qualname.rsplit(".", 1)[-1]
        for key in (qualname, short):
            if key in custom_objects:
                return custom_objects[key]
        raise PersistenceError(
            f"{where} needs the {kind} class {qualname!r}, which is not a registered {kind}: pass it as "
            f"load_pipeline(..., custom_objects={{{short!r}: {short}}})"
        )
    recorded = _recorded(plugin)
    candidates = get_registry().candidates(kind, name)  # type: ignore[arg-type]
    unresolved = not candidates or (recorded is None and len(candidates) > 1)
    if unresolved and name in custom_objects:  # the caller says which class the name means
        return custom_objects[name]  # type: ignore[no-any-return]
    entry = choose(kind, name, recorded, candidates, where)  # type: ignore[arg-type]
    if entry is None:
        saved = f" (the file was saved with {recorded})" if recorded is not None else ""
        raise PersistenceError(
            f"{where} names the {kind} {name!r}, which no installed plugin registers{saved}: it is refused; "
            f"install the plugin, or pass the class as load_pipeline(..., custom_objects={{{name!r}: ...}})"
        )
    return entry.resolve()  # type: ignore[no-any-return]


@contextmanager
def _building(where: str) -> Iterator[None]:
    """Any failure while building from the description, as a :class:`PersistenceError` saying where."""
    try:
        yield
    except PersistenceError:
        raise
    except Exception as exc:  # a registered class refusing what the file gives it
        raise PersistenceError(f"{where} cannot be built: {type(exc).__name__}: {exc}") from exc


def _read(archive: ArchiveReader) -> schema.Description:
    return schema.parse(archive.description(), archive.member(DESCRIPTION), archive.members)


def load_pipeline(
    path: str | Path,
    storage: Any = None,
    custom_objects: Mapping[str, Any] | None = None,
    trusted: list[str] | None = None,
    limits: Limits | Mapping[str, int] | None = None,
) -> Pipeline:
    """Load a pipeline saved with :meth:`Pipeline.save`, fitted as it was.

    Layer and metric classes come from the plugin registry, or from ``custom_objects`` for
    your own classes and functions (a ``Lambda``'s function, the seed's ``Whiten``); nothing is
    imported or run from the file. Plugin artifacts load safely (scikit-learn estimators through
    skops: types it does not trust are refused unless listed in ``trusted``; Keras models in
    safe mode). ``storage`` reattaches output storage.

    A file that declares more than ``limits`` allow (:class:`~megatron.persistence.Limits`:
    sizes, compression ratio, nesting) is refused before anything is inflated; pass higher
    limits for a large file you trust. Every refusal is a
    :class:`~megatron.errors.PersistenceError` naming the file and the member or field.

    Example::

        pipeline = load_pipeline('pipelines/getting_started-0.1.megatron', storage='default')
    """
    from megatron.pipeline import Pipeline

    custom = _custom_objects(custom_objects)
    with ArchiveReader(path, Limits.of(limits)) as archive:
        description = _read(archive)
        at = archive.member(DESCRIPTION)
        # Everything the file needs is resolved before anything is built.
        layer_classes = [
            _resolve_class("layer", entry.class_name, entry.plugin, custom, f"{at}: layers[{i}]")
            for i, entry in enumerate(description.layers)
        ]
        metric_classes = [
            _resolve_class("metric", m.class_name, m.plugin, custom, f"{at}: metrics[{i}]")
            for i, m in enumerate(description.metrics)
        ]
        for i, cls in enumerate(layer_classes):
            if not (isinstance(cls, type) and issubclass(cls, Layer)):
                raise PersistenceError(f"{at}: layers[{i}]: {cls!r} is not a megatron Layer class")
        for i, cls in enumerate(metric_classes):
            if not (isinstance(cls, type) and issubclass(cls, Metric)):
                raise PersistenceError(f"{at}: metrics[{i}]: {cls!r} is not a megatron Metric class")
        from megatron.persistence.codec import bind_functions

        # one key per recorded function, each computing what was recorded
        values = _encoded_values(description)
        bound = bind_functions(needed_functions(values), custom)
        check_functions(recorded_functions(values), bound, at)
        decoder = Decoder(
            archive, _reader(at), custom, {"trusted": list(trusted or []), "custom_objects": custom}
        )

        nodes: dict[str, Node] = {}
        inputs = []
        for i, spec in enumerate(description.inputs):
            with _building(f"{at}: inputs[{i}]"):
                node = Input(spec.name, decoder.decode(spec.shape), spec.dtype, columns=spec.columns)
            nodes[node.name] = node
            inputs.append(node)
        layers = []
        for i, (entry, cls) in enumerate(zip(description.layers, layer_classes)):
            with _building(f"{at}: layers[{i}] ({entry.class_name})"):
                read = len(archive.digests)
                layer = cls(**decoder.decode(entry.config))
                layer.name = entry.name
                if entry.state is not None:
                    layer.metadata = decoder.decode(entry.state.metadata)
                    layer.__dict__["_fitted"] = entry.state.fitted
                    members = dict(list(archive.digests.items())[read:])  # what this layer read
                    values = [entry.config, entry.state.metadata, entry.state.fitted]
                    derived = tokens.derived_token(entry.state.token, tokens.content_digest(values, members))
                    tokens.bind(layer, entry.state.token, derived)
            layers.append(layer)
        for i, call in enumerate(description.calls):
            layer = layers[call.layer]
            where = f"{at}: calls[{i}] (layer {layer.name!r})"
            _check_outputs(layer, call, where)
            with _building(where):
                result = layer([nodes[name] for name in call.inputs], call.outputs)
            outputs = [result] if isinstance(result, Node) else list(result)
            for node, named in zip(outputs, call.named):
                node.named = named
                nodes[node.name] = node
        metrics = []
        for i, (m, cls) in enumerate(zip(description.metrics, metric_classes)):
            with _building(f"{at}: metrics[{i}] ({m.class_name})"):
                metrics.append(cls(**decoder.decode(m.config))([nodes[n] for n in m.inputs], m.name))
        with _building(f"{at}: the pipeline"):
            return Pipeline(
                inputs,
                [nodes[name] for name in description.outputs],
                description.name,
                description.version,
                storage=storage,
                metrics=metrics,
            )


def _custom_objects(custom_objects: Any) -> dict[str, Any]:
    if custom_objects is None:
        return {}
    if not isinstance(custom_objects, Mapping) or not all(isinstance(key, str) for key in custom_objects):
        keys = "" if not isinstance(custom_objects, Mapping) else " with a key that is not a string"
        raise PersistenceError(
            "custom_objects= takes a mapping of names to your classes and functions, such as "
            f"{{'Whiten': Whiten, 'double': double}}; got a {type(custom_objects).__name__}{keys}"
        )
    return dict(custom_objects)


def _check_outputs(layer: Layer, call: schema.CallEntry, where: str) -> None:
    """A layer makes as many outputs as the call names (one more for the kept rows of a
    filtering layer), checked before it is called: ``n_outputs`` comes from the file, and
    building a billion output specs would exhaust memory before failing."""
    n = getattr(layer, "n_outputs", 1)
    allowed = len(call.outputs) + (1 if layer.filters_rows else 0)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= max(allowed, 1):
        raise PersistenceError(
            f"{where}: the layer declares n_outputs={n!r}, but the call names {len(call.outputs)} outputs"
        )


def audit(path: str | Path, limits: Limits | Mapping[str, int] | None = None) -> list[str]:
    """What loading ``path`` would need and what it would refuse, without loading it.

    Lists the members with their sizes (and those over ``limits``), then every class,
    function and plugin artifact the description names. Lines with ``REFUSED`` say what
    loading would refuse. Whatever it finds in the file is reported, never raised, as long as
    ``path`` is a zip archive: a file over the size or member limits gets a ``REFUSED`` line
    (and, over ``max_members``, no listing, since its directory is not parsed).
    """
    return audit_report(path, limits).lines


class AuditReport:
    """What :func:`audit` found: the ``lines`` it prints, and the ``refused`` ones among them."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.refused: list[str] = []

    def add(self, line: str, refused: bool = False) -> None:
        self.lines.append(line)
        if refused:
            self.refused.append(line)

    def refuse(self, subject: str, error: PersistenceError | str) -> None:
        self.add(f"{subject}: REFUSED: {error}", refused=True)


def audit_report(path: str | Path, limits: Limits | Mapping[str, int] | None = None) -> AuditReport:
    """:func:`audit`, with the refused lines apart (``megatron audit`` exits 1 when there are some)."""
    report = AuditReport()
    with ArchiveReader(path, Limits.of(limits), strict=False) as archive:
        total = sum(info.file_size for info in archive.members.values())
        listing = (
            f"{len(archive.members)} members, {size(total)} uncompressed"
            if archive.readable
            else "directory not read"
        )
        report.add(f"file {archive.where}: {size(archive.length)}, {listing}")
        for problem in archive.problems:
            if problem.member is None:
                report.refuse("file", problem.error(archive.where))
        if not archive.readable:  # its directory is refused unparsed: nothing more to list
            return report
        for name, info in archive.members.items():
            line = f"member {name}: {size(info.file_size)} ({size(info.compress_size)} compressed)"
            if name in archive.refused:
                report.refuse(line, archive.refused[name].error(archive.where))
            else:
                report.add(line)
        try:
            description = _read(archive)
        except PersistenceError as exc:
            report.refuse("description", exc)
            return report
        _audit_description(archive, description, report)
    return report


def _audit_description(archive: ArchiveReader, description: schema.Description, report: AuditReport) -> None:
    for kind, entries in (("layer", description.layers), ("metric", description.metrics)):
        for entry in entries:
            name = entry.class_name
            if name.startswith(CUSTOM):
                report.add(f"{kind} class {name[len(CUSTOM) :]} (from custom_objects)")
                continue
            recorded = _recorded(entry.plugin)
            line, refused = _audit_name(kind, name, recorded, archive.where)
            report.add(line, refused)
    values = _encoded_values(description)
    shipped = recorded_functions(values)
    for name in needed_functions(values):
        saved = shipped.get(name)
        with_version = f"; saved with {saved['name']} {saved['version']}" if saved else ""
        report.add(f"function {name} (from custom_objects, or numpy{with_version})")
    for name in dict.fromkeys(_tagged(values, "__array__")):
        try:
            shape, dtype = array_header(archive.read(name), archive.member(name), archive.limits)
        except PersistenceError as exc:
            report.refuse(f"array {name}", exc)
        else:
            report.add(f"array {name}: {dtype} {shape}")
    read = _reader(archive.where)
    for meta in _artifacts(values):
        kind = meta["__artifact__"]
        try:
            with warnings.catch_warnings():  # the version is shown by the line of its class
                warnings.simplefilter("ignore", ProviderChangedWarning)
                serializer = read(meta)
        except PersistenceError as exc:
            report.refuse(f"artifact {kind}", exc)
            continue
        if serializer is None:
            report.add(f"artifact {kind} (no installed plugin reads it)", refused=True)
            continue
        try:
            lines = list(serializer.audit(meta["meta"], archive))
        except PersistenceError as exc:
            report.refuse(f"artifact {kind}", exc)
        except Exception as exc:  # a plugin's reader failing on what the file holds
            report.refuse(f"artifact {kind}", f"{archive.where}: {type(exc).__name__}: {exc}")
        else:
            for line in lines:
                report.add(str(line))


def _recorded(plugin: schema.PluginEntry | None) -> Recorded | None:
    return None if plugin is None else Recorded(plugin.name, plugin.distribution, plugin.version)


def _audit_name(kind: str, name: str, recorded: Recorded | None, where: str) -> tuple[str, bool]:
    """The audit line of a registered class the file names, and whether loading refuses it."""
    candidates = get_registry().candidates(kind, name)  # type: ignore[arg-type]
    saved = "" if recorded is None else f"; saved with {recorded}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProviderChangedWarning)
            entry = choose(kind, name, recorded, candidates, f"{where}: {kind} {name!r}")  # type: ignore[arg-type]
    except PersistenceError as exc:
        return f"{kind} {name}: REFUSED: {exc}", True
    if entry is None:
        return f"{kind} {name} (NOT registered by any installed plugin{saved}: refused)", True
    notes = ""
    if recorded is not None and (not recorded.same_distribution(entry) or recorded.version != entry.version):
        notes += f"; installed {entry.version}{saved}"
    others = [e.distribution for e in candidates if e is not entry]
    if others:
        notes += f"; also registered by {', '.join(others)}"
    return f"{kind} {name} (registered by {entry.distribution}{notes})", False


def _encoded_values(description: schema.Description) -> list[Any]:
    """Every hyperparameter and fitted state in the description, in their encoded form."""
    values = [entry.config for entry in description.layers] + [m.config for m in description.metrics]
    return values + [entry.state.metadata for entry in description.layers if entry.state is not None]


def _tagged(value: Any, tag: str) -> list[str]:
    """The payloads of ``tag`` in an encoded value (checked by the schema: bounded depth)."""
    found: list[str] = []
    if isinstance(value, list):
        for v in value:
            found += _tagged(v, tag)
    elif isinstance(value, dict):
        if tag in value:
            found.append(value[tag])
        else:
            for v in value.values():
                found += _tagged(v, tag)
    return found


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
