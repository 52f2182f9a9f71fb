"""Reading a pipeline file: :class:`ArchiveReader`, its members within :class:`Limits`
(through :mod:`megatron.persistence.bounded`) and its description as strict JSON."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from megatron.errors import PersistenceError
from megatron.persistence.archive import DESCRIPTION
from megatron.persistence.bounded import (
    Budget,
    Problem,
    array_header,
    directory_problem,
    load_array,
    member_problems,
    normalized_zip,
    open_zip,
    read_member,
)
from megatron.persistence.limits import Limits, size

_HEADER = 1 << 16  # an .npy header is at most 10,000 bytes as numpy reads it; this covers any


class ArchiveReader:
    """Reads the members of a pipeline file within :class:`Limits`, with errors that name the
    file and the member. Everything it inflates is charged to one :class:`Budget`, and it
    keeps a digest of every member it read (:attr:`digests`).

    ``strict`` (loading) refuses the file at once if it or its directory declares anything
    over the limits; otherwise (auditing) :attr:`problems` lists them, and only the refused
    members cannot be read (none, when the directory itself is refused).
    """

    def __init__(self, path: str | PathLike[str], limits: Limits | None = None, strict: bool = True) -> None:
        self.path = Path(path)
        self.limits = limits or Limits()
        self.where = repr(str(self.path))
        self.problems: list[Problem] = []
        self.members: dict[str, zipfile.ZipInfo] = {}
        self.digests: dict[str, str] = {}
        """The sha256 of each member read, by name, in the order they were first read."""
        if not self.path.is_file():
            raise PersistenceError(f"No pipeline file at {self.where}")
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close())
            self.length = os.fstat(self._file.fileno()).st_size
        except OSError as exc:
            raise PersistenceError(f"Cannot open the pipeline file {self.where}: {exc}") from None
        self.budget = Budget(self.limits, self.length)
        try:
            if self.length > self.limits.max_file_bytes:
                reason = f"is {size(self.length)}; the limit is {size(self.limits.max_file_bytes)}"
                self._refuse(Problem(None, reason, "max_file_bytes"), strict)
            directory = directory_problem(self._file, self.limits)
            if directory is not None:
                self._refuse(directory, strict)
            else:
                self._zip = open_zip(
                    self._file, self.length, self.limits, self.where, "megatron pipeline file", checked=True
                )
                self.problems += member_problems(self._zip, self.length, self.limits)
                self.members = {info.filename: info for info in self._zip.infolist()}
        except BaseException:
            self.close()
            raise
        self.refused = {p.member: p for p in reversed(self.problems) if p.member is not None}
        """The members that cannot be read, with why."""
        if strict and self.problems:
            self.close()
            raise self.problems[0].error(self.where)

    def _refuse(self, problem: Problem, strict: bool) -> None:
        if strict:
            raise problem.error(self.where)
        self.problems.append(problem)

    @property
    def readable(self) -> bool:
        """Whether the directory was parsed (an audit of a refused directory lists nothing)."""
        return hasattr(self, "_zip")

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def member(self, name: str) -> str:
        """How errors name ``name``: the file, then the member."""
        return f"{self.where}: {name}"

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self.members.get(name) if isinstance(name, str) else None
        if info is None:
            raise PersistenceError(
                f"{self.where}: the description names {name!r}, which is not in the archive"
            )
        if name in self.refused:
            raise self.refused[name].error(self.where)
        return info

    def read(self, name: str) -> bytes:
        """A member's bytes (refused if it is missing, over the limits, or past the budget)."""
        data = read_member(self._zip, self._info(name), self.member(name), self.budget)
        self.digests.setdefault(name, hashlib.sha256(data).hexdigest())
        return data

    def array(self, name: str) -> np.ndarray:
        """A ``.npy`` member as a plain array; anything that would need pickle is refused."""
        return load_array(self.read(name), self.member(name), self.limits)

    def array_header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """The (shape, dtype) of a ``.npy`` member, from its first bytes only."""
        info = self._info(name)
        where = self.member(name)
        self.budget.charge(min(info.file_size, _HEADER), where)
        try:
            with self._zip.open(info) as member:
                head = member.read(_HEADER)
        except Exception as exc:
            raise PersistenceError(
                f"{where} cannot be read (corrupted?): {type(exc).__name__}: {exc}"
            ) from None
        return array_header(head, where, self.limits, declared=info.file_size)

    def read_zip(self, name: str) -> bytes:
        """A member that is itself a zip archive, checked and rebuilt (see :func:`normalized_zip`)."""
        return normalized_zip(self.read(name), self.member(name), self.limits, self.budget)

    def description(self) -> Any:
        """``pipeline.json`` parsed as strict JSON (no duplicate keys, no NaN), of no more than
        ``limits.max_description_values`` values (counted before it is parsed) and no deeper
        than ``limits.max_depth``. Its structure is checked by :mod:`megatron.persistence.schema`."""
        if DESCRIPTION not in self.members:
            raise PersistenceError(
                f"{self.where} has no {DESCRIPTION}: not a megatron pipeline file (truncated or corrupted?)"
            )
        data = self.read(DESCRIPTION)
        where = self.member(DESCRIPTION)
        values = _most_values(data)
        if values > self.limits.max_description_values:
            reason = (
                f"holds up to {values} JSON values (counted from its brackets, commas and colons); "
                f"the limit is {self.limits.max_description_values}"
            )
            raise Problem(DESCRIPTION, reason, "max_description_values").error(self.where)
        try:
            value = json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
        except RecursionError:
            raise PersistenceError(f"{where} is nested too deeply to read") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a duplicate key, ...
            raise PersistenceError(f"{where} is not valid JSON (truncated or corrupted?): {exc}") from None
        deepest = max(_depths(value))
        if deepest > self.limits.max_depth:
            reason = f"nests {deepest} levels deep; the limit is {self.limits.max_depth}"
            raise Problem(DESCRIPTION, reason, "max_depth").error(self.where)
        return value

    def close(self) -> None:
        if hasattr(self, "_zip"):
            self._zip.close()
        if hasattr(self, "_file"):
            self._file.close()


def _most_values(data: bytes) -> int:
    """At most how many values (keys included) the JSON text ``data`` holds: each but the
    first follows a ``[``, ``{``, ``,`` or ``:``, whatever else is in the text."""
    return sum(data.count(mark) for mark in (b"[", b"{", b",", b":")) + 1


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate key {duplicate[:100]!r}")
    return found


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depths(value: Any) -> Iterator[int]:
    """The depth of every leaf of ``value``, walked without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        yield depth
        stack.extend((child, depth + 1) for child in children)
