"""The pipeline file: a zip archive of a JSON description, ``.npy`` arrays and plugin
artifacts. Nothing in it is ever unpickled.

Reading trusts nothing the file says: the zip's directory is measured before it is parsed,
sizes are checked against :class:`Limits` from the directory before anything is inflated,
members are inflated in bounded chunks (a member that lies about its size cannot make more
than it declares), everything one reader inflates, at every level of nesting, is charged to
one :class:`Budget`, array headers must match the bytes that follow them, and every failure
is a :class:`PersistenceError` that names the file and the member.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import secrets
import stat
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from megatron.errors import PersistenceError
from megatron.persistence.limits import Limits, size

FORMAT = 2
"""The newest file format this version writes and reads."""
DESCRIPTION = "pipeline.json"
EXTENSION = ".megatron"

_CHUNK = 1 << 20
_HEADER = 1 << 16  # an .npy header is at most 10,000 bytes as numpy reads it; this covers any
_ENTRY = 46  # the fixed part of a zip directory entry
_NESTING = 1  # zip archives inside an artifact are read; zips inside those are refused
_READABLE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # bzip2 and lzma inflate without a bound
_HINT = "if you trust the file, raise the limit: load_pipeline(..., limits={{{name!r}: ...}})"


class ArchiveWriter:
    """Collects the members of a pipeline file."""

    def __init__(self) -> None:
        self.members: dict[str, bytes] = {}
        self._arrays = 0

    def add(self, name: str, data: bytes) -> str:
        if name in self.members:
            raise PersistenceError(f"Two parts of the pipeline were saved as {name!r}")
        self.members[name] = data
        return name

    def add_array(self, array: np.ndarray) -> str:
        if array.dtype.hasobject:
            raise PersistenceError(
                f"Cannot save an object array ({array.dtype}, shape {array.shape}): files hold plain arrays only"
            )
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        self._arrays += 1
        return self.add(f"arrays/{self._arrays}.npy", buffer.getvalue())

    def write(self, path: Path, description: dict[str, Any]) -> None:
        """Write the archive to ``path`` atomically: into a new file created exclusively in the
        same folder (never through a link planted there), then renamed over ``path`` (which
        replaces a link at ``path`` rather than writing through it)."""
        self.add(DESCRIPTION, json.dumps(description, indent=1, allow_nan=False).encode())
        mode = _mode_of(path)
        try:
            descriptor, temporary = _create_exclusive(path)
        except OSError as exc:
            raise PersistenceError(f"Cannot write the pipeline file {str(path)!r}: {exc}") from exc
        try:
            if mode is not None:  # before any byte is written: the file replaced keeps its permissions
                _set_mode(descriptor, temporary, mode)
            with os.fdopen(descriptor, "wb") as file:
                with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                    for name, data in self.members.items():
                        archive.writestr(name, data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)  # a reader never sees a half-written file
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(exc, OSError):
                raise PersistenceError(f"Cannot write the pipeline file {str(path)!r}: {exc}") from exc
            raise


def _mode_of(path: Path) -> int | None:
    """The permission bits of the regular file at ``path``, or ``None`` (no file, or a link)."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return stat.S_IMODE(found.st_mode) if stat.S_ISREG(found.st_mode) else None


def _set_mode(descriptor: int, temporary: Path, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(descriptor, mode)
    else:  # pragma: no cover (Windows)
        os.chmod(temporary, mode)


def _create_exclusive(path: Path) -> tuple[int, Path]:
    """A new file beside ``path``, created with ``O_EXCL`` (so never an existing file or link)
    and the permissions a plain ``open`` would give it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temporary = path.with_name(f".{path.name[:100]}.{secrets.token_hex(8)}.partial")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {str(path)!r}")


# Reading -------------------------------------------------------------------------------------


def directory_problem(file: IO[bytes], limits: Limits) -> Problem | None:
    """What refuses the zip in ``file`` before its directory is parsed: more members than
    ``limits.max_members``, whether its end record declares them or its directory holds them.

    The end record is found by :mod:`zipfile`'s own reader, so this reads the directory that
    :class:`zipfile.ZipFile` will parse; the entries are then counted by walking the directory
    (no more than ``max_members`` of them), whatever the end record's counts say."""
    try:
        end = zipfile._EndRecData(file)  # type: ignore[attr-defined]  # the record ZipFile reads
    except Exception:  # zipfile itself then says what is wrong
        return None
    if not end:
        return None
    entries, directory = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    most = limits.max_members
    if entries > most:
        reason = f"declares {entries} members ({size(directory)} of directory); the limit is {most}"
        return Problem(None, reason, "max_members")
    if directory > most * 1024:
        reason = (
            f"has a directory of {size(directory)}, more than {most} members take (1 KiB each at most); "
            f"the limit is {most} members"
        )
        return Problem(None, reason, "max_members")
    start = end[zipfile._ECD_LOCATION] - directory  # type: ignore[attr-defined]  # as ZipFile places it
    if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:  # type: ignore[attr-defined]
        start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator  # type: ignore[attr-defined]
    if start < 0:
        return None
    file.seek(start)
    data = file.read(directory)
    count, at = 0, 0
    while at < min(directory, len(data)):
        if count == most:
            return Problem(
                None, f"holds more than {most} members in its directory; the limit is {most}", "max_members"
            )
        if len(data) - at < _ENTRY or data[at : at + 4] != b"PK\x01\x02":
            return None  # a damaged directory: zipfile refuses it
        names, extra, comment = struct.unpack_from("<HHH", data, at + 28)
        at += _ENTRY + names + extra + comment
        count += 1
    return None


def open_zip(
    file: IO[bytes], length: int, limits: Limits, where: str, what: str, checked: bool = False
) -> zipfile.ZipFile:
    """``file`` as a zip archive, refused before parsing if its directory is too large
    (``checked``: the caller has found no :func:`directory_problem`)."""
    try:
        problem = None if checked else directory_problem(file, limits)
        if problem is not None:
            raise problem.error(where)
        file.seek(0)
        return zipfile.ZipFile(file)
    except PersistenceError:
        raise
    except Exception as exc:  # zipfile raises many types for damaged input
        raise PersistenceError(
            f"{where} is not a readable {what} (truncated or corrupted?): {type(exc).__name__}: {exc}"
        ) from None


class Problem(NamedTuple):
    """Something in an archive's directory that loading refuses."""

    member: str | None
    """The member, or ``None`` for the whole archive."""
    reason: str
    limit: str | None = None
    """The :class:`Limits` field that refuses it, where raising one would accept it."""

    def error(self, where: str) -> PersistenceError:
        hint = "" if self.limit is None else f": {_HINT.format(name=self.limit)}"
        member = "" if self.member is None else f": {self.member}"
        return PersistenceError(f"{where}{member} {self.reason}{hint}")


def member_problems(archive: zipfile.ZipFile, length: int, limits: Limits) -> list[Problem]:
    """What loading would refuse in ``archive``'s directory (``length`` bytes). Reads no member."""
    problems: list[Problem] = []
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        problems.append(
            Problem(None, f"holds {len(infos)} members; the limit is {limits.max_members}", "max_members")
        )
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        total += info.file_size
        cap, cap_name = (
            (limits.max_description_bytes, "max_description_bytes")
            if name == DESCRIPTION
            else (limits.max_member_bytes, "max_member_bytes")
        )
        if name in seen:
            problems.append(Problem(name, "appears twice in the archive"))
        elif info.flag_bits & 0x1:
            problems.append(Problem(name, "is encrypted"))
        elif info.compress_type not in _READABLE:
            problems.append(
                Problem(
                    name, f"uses compression method {info.compress_type}; only stored and deflated are read"
                )
            )
        elif limits.inflates_too_much(info.file_size, info.compress_size):
            problems.append(
                Problem(name, _inflation(info.file_size, info.compress_size, limits), "max_ratio")
            )
        elif info.file_size > cap:
            problems.append(
                Problem(
                    name, f"declares {size(info.file_size)} uncompressed; the limit is {size(cap)}", cap_name
                )
            )
        seen.add(name)
    if total > limits.max_total_bytes:
        reason = f"declares {size(total)} uncompressed in all; the limit is {size(limits.max_total_bytes)}"
        problems.append(Problem(None, reason, "max_total_bytes"))
    elif limits.inflates_too_much(total, length):
        problems.append(Problem(None, _inflation(total, length, limits), "max_ratio"))
    return problems


def _inflation(uncompressed: int, compressed: int, limits: Limits) -> str:
    ratio = uncompressed // max(compressed, 1)
    return (
        f"inflates {ratio} times ({size(compressed)} to {size(uncompressed)}); the limit is {limits.max_ratio} "
        f"times above {size(limits.ratio_floor_bytes)}"
    )


class Budget:
    """What one reader (a load, an audit, a summary) may inflate from a pipeline file:
    ``limits.max_total_bytes`` in all, and, once past ``limits.ratio_floor_bytes``, at most
    ``limits.max_ratio`` times the file's own size. Every read is charged what it declares
    before it is inflated (zipfile never returns more than a member declares), at every level:
    a member read twice, or a zip inside an artifact, costs again."""

    def __init__(self, limits: Limits, compressed: int) -> None:
        self.limits = limits
        self.compressed = compressed
        self.spent = 0

    def charge(self, n: int, where: str) -> None:
        """Count ``n`` bytes about to be inflated for ``where``, or refuse them."""
        total = self.spent + n
        limits = self.limits
        if total > limits.max_total_bytes:
            reason = (
                f"reading it would inflate {size(total)} from the file in all; the limit is "
                f"{size(limits.max_total_bytes)}"
            )
            raise Problem(None, reason, "max_total_bytes").error(f"{where}:")
        if limits.inflates_too_much(total, self.compressed):
            reason = (
                f"reading it would inflate {size(total)} in all from a file of {size(self.compressed)} "
                f"({total // max(self.compressed, 1)} times); the limit is {limits.max_ratio} times above "
                f"{size(limits.ratio_floor_bytes)}"
            )
            raise Problem(None, reason, "max_ratio").error(f"{where}:")
        self.spent = total


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, budget: Budget) -> bytes:
    """One member's bytes, charged to ``budget``, inflated in bounded chunks and checked
    against its declared size and checksum."""
    budget.charge(info.file_size, where)
    chunks, total = [], 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):  # zipfile never returns more than declared
                chunks.append(chunk)
                total += len(chunk)
    except Exception as exc:  # zlib.error, BadZipFile (checksum), EOFError, ...
        raise PersistenceError(f"{where} cannot be read (corrupted?): {type(exc).__name__}: {exc}") from None
    if total != info.file_size:
        raise PersistenceError(f"{where} holds {total} bytes but declares {info.file_size}: corrupted")
    return b"".join(chunks)


def array_header(
    data: bytes, where: str, limits: Limits, declared: int | None = None
) -> tuple[tuple[int, ...], np.dtype]:
    """The (shape, dtype) of a ``.npy`` member, refused unless it is a plain array whose
    header matches the bytes that follow it. ``data`` may be the member's first bytes only,
    with ``declared`` its whole size."""
    buffer = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buffer)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(buffer)
        elif version in ((2, 0), (3, 0)):  # 3.0 differs only in how field names are encoded
            shape, _, dtype = np.lib.format.read_array_header_2_0(buffer)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except Exception as exc:
        raise PersistenceError(f"{where} is not a .npy array: {type(exc).__name__}: {exc}") from None
    if dtype.hasobject:  # loading it would unpickle
        raise PersistenceError(
            f"{where} is not a plain array and is refused: its dtype {dtype} holds objects"
        )
    count = math.prod(shape)
    declared_bytes = count * dtype.itemsize
    held = (len(data) if declared is None else declared) - buffer.tell()
    if declared_bytes != held or count > limits.max_member_bytes:
        raise PersistenceError(
            f"{where} declares a {dtype} array of shape {shape} ({size(declared_bytes)}) but holds {size(held)}: refused"
        )
    return shape, dtype


def load_array(data: bytes, where: str, limits: Limits) -> np.ndarray:
    """A ``.npy`` member as an array, after :func:`array_header` accepted it."""
    array_header(data, where, limits)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:
        raise PersistenceError(f"{where} is not a readable .npy array: {type(exc).__name__}: {exc}") from None


def _is_zip(name: str, data: bytes) -> bool:
    return name.endswith((".npz", ".zip")) or data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def normalized_zip(data: bytes, where: str, limits: Limits, budget: Budget, depth: int = 0) -> bytes:
    """A zip that a plugin hands to its own library (a skops or ``.keras`` artifact), rebuilt
    from bounded reads: within ``limits``, every member read (charged to ``budget``, which
    the whole file shares) and checked, every ``.npy`` member's header checked, every zip in
    it (an ``.npz``) rebuilt likewise, a zip inside that refused; stored uncompressed. What
    the library then reads cannot inflate or lie about its size."""
    with open_zip(io.BytesIO(data), len(data), limits, where, "zip archive") as archive:
        for problem in member_problems(archive, len(data), limits):
            raise problem.error(where)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as rebuilt:
            for info in archive.infolist():
                inner_where = f"{where}: {info.filename}"
                inner = read_member(archive, info, inner_where, budget)
                if info.filename.endswith(".npy"):
                    array_header(inner, inner_where, limits)
                elif _is_zip(info.filename, inner):
                    if depth >= _NESTING:
                        raise PersistenceError(
                            f"{inner_where} is a zip archive inside a zip inside the artifact: refused "
                            "(an artifact's zip archives hold no zip archives)"
                        )
                    inner = normalized_zip(inner, inner_where, limits, budget, depth + 1)
                rebuilt.writestr(info.filename, inner)
    return out.getvalue()


class ArchiveReader:
    """Reads the members of a pipeline file within :class:`Limits`, with errors that name the
    file and the member. Everything it inflates is charged to one :class:`Budget`, and it
    keeps a digest of every member it read (:attr:`digests`).

    ``strict`` (loading) refuses the file at once if it or its directory declares anything
    over the limits; otherwise (auditing) :attr:`problems` lists them, and only the refused
    members cannot be read (none, when the directory itself is refused).
    """

    def __init__(self, path: str | Path, limits: Limits | None = None, strict: bool = True) -> None:
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
