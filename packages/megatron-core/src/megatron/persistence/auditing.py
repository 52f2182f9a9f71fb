"""Auditing a pipeline file: what loading it would need and what it would refuse, without
loading it (``megatron.audit``, ``megatron audit FILE``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from os import PathLike
from typing import Any

from megatron.errors import PersistenceError
from megatron.persistence import schema
from megatron.persistence.bounded import array_header
from megatron.persistence.codec import needed_functions
from megatron.persistence.limits import Limits, size
from megatron.persistence.options import SerializerOptions, combine_options
from megatron.persistence.providers import ProviderChangedWarning, Recorded, choose, recorded_functions
from megatron.persistence.reader import ArchiveReader
from megatron.persistence.resolving import CUSTOM, encoded_values, recorded
from megatron.persistence.serializer import artifact_reader, audit_artifact
from megatron.plugins import get_registry
from megatron.plugins.registry import Kind

__all__ = ["AuditReport", "audit", "audit_report"]


def audit(
    path: str | PathLike[str],
    limits: Limits | Mapping[str, int] | None = None,
    serializer_options: SerializerOptions | None = None,
) -> list[str]:
    """What loading ``path`` would need and what it would refuse, without loading it.

    Lists the members with their sizes (and those over ``limits``), then every class,
    function and plugin artifact the description names (each artifact as its serializer
    reads it, given its entry of ``serializer_options``, as loading would). Lines with
    ``REFUSED`` say what loading would refuse. Whatever it finds in the file is reported, never
    raised, as long as ``path`` is a zip archive: a file over the size or member limits gets a
    ``REFUSED`` line (and, over ``max_members``, no listing, since its directory is not parsed).
    """
    return audit_report(path, limits, serializer_options).lines


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


def audit_report(
    path: str | PathLike[str],
    limits: Limits | Mapping[str, int] | None = None,
    serializer_options: SerializerOptions | None = None,
) -> AuditReport:
    """:func:`audit`, with the refused lines apart (``megatron audit`` exits 1 when there are some)."""
    options = combine_options(serializer_options)
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
            description = schema.read(archive)
        except PersistenceError as exc:
            report.refuse("description", exc)
            return report
        _Auditor(archive, report, options).description(description)
    return report


class _Auditor:
    """Adds to ``report`` what a parsed description names."""

    def __init__(self, archive: ArchiveReader, report: AuditReport, options: Mapping[str, Any]) -> None:
        self.archive = archive
        self.report = report
        self.options = options

    def description(self, description: schema.Description) -> None:
        for layer in description.layers:
            self.class_line("layer", layer.class_name, layer.plugin)
        for metric in description.metrics:
            self.class_line("metric", metric.class_name, metric.plugin)
        values = encoded_values(description)
        shipped = recorded_functions(values)
        for name in needed_functions(values):
            saved = shipped.get(name)
            with_version = f"; saved with {saved['name']} {saved['version']}" if saved else ""
            self.report.add(f"function {name} (from custom_objects, or numpy{with_version})")
        tagged = [item for value in values for item in schema.tagged_values(value)]
        for name in dict.fromkeys(item["__array__"] for item in tagged if "__array__" in item):
            self.array(name)
        read = artifact_reader(self.archive.where)
        for item in tagged:
            if "__artifact__" in item:
                self.artifact(item, read)

    def class_line(self, kind: Kind, name: str, plugin: schema.PluginEntry | None) -> None:
        if name.startswith(CUSTOM):
            self.report.add(f"{kind} class {name[len(CUSTOM) :]} (from custom_objects)")
        else:
            self.report.add(*_registered(kind, name, recorded(plugin), self.archive.where))

    def array(self, name: str) -> None:
        try:
            shape, dtype = array_header(
                self.archive.read(name), self.archive.member(name), self.archive.limits
            )
        except PersistenceError as exc:
            self.report.refuse(f"array {name}", exc)
        else:
            self.report.add(f"array {name}: {dtype} {shape}")

    def artifact(self, meta: dict[str, Any], read: Any) -> None:
        kind = meta["__artifact__"]
        try:
            with warnings.catch_warnings():  # the version is shown by the line of its class
                warnings.simplefilter("ignore", ProviderChangedWarning)
                serializer = read(meta)
        except PersistenceError as exc:
            self.report.refuse(f"artifact {kind}", exc)
            return
        if serializer is None:
            self.report.add(f"artifact {kind} (no installed plugin reads it)", refused=True)
            return
        try:
            lines = audit_artifact(serializer, meta["meta"], self.archive, self.options.get(kind, {}))
        except PersistenceError as exc:
            self.report.refuse(f"artifact {kind}", exc)
        except Exception as exc:  # a plugin's reader failing on what the file holds
            self.report.refuse(f"artifact {kind}", f"{self.archive.where}: {type(exc).__name__}: {exc}")
        else:
            for line in lines:
                self.report.add(line)


def _registered(kind: Kind, name: str, saved_with: Recorded | None, where: str) -> tuple[str, bool]:
    """The audit line of a registered class the file names, and whether loading refuses it."""
    candidates = get_registry().candidates(kind, name)
    saved = "" if saved_with is None else f"; saved with {saved_with}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProviderChangedWarning)
            entry = choose(kind, name, saved_with, candidates, f"{where}: {kind} {name!r}")
    except PersistenceError as exc:
        return f"{kind} {name}: REFUSED: {exc}", True
    if entry is None:
        return f"{kind} {name} (NOT registered by any installed plugin{saved}: refused)", True
    notes = ""
    if saved_with is not None and (
        not saved_with.same_distribution(entry) or saved_with.version != entry.version
    ):
        notes += f"; installed {entry.version}{saved}"
    others = [e.distribution for e in candidates if e is not entry]
    if others:
        notes += f"; also registered by {', '.join(others)}"
    return f"{kind} {name} (registered by {entry.distribution}{notes})", False
