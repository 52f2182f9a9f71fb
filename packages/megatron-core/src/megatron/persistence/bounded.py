"""Reading zip archives from a pipeline file within :class:`Limits`: trusting nothing the
file says.

The zip's directory is measured before it is parsed, sizes are checked against the limits
from the directory before anything is inflated, members are inflated in bounded chunks (a
member that lies about its size cannot make more than it declares), everything one reader
inflates, at every level of nesting, is charged to one :class:`Budget`, array headers must
match the bytes that follow them, and every failure is a :class:`PersistenceError` that
names the file and the member.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from typing import IO, NamedTuple

import numpy as np

from megatron.errors import PersistenceError
from megatron.persistence.archive import DESCRIPTION
from megatron.persistence.limits import Limits, size

_CHUNK = 1 << 20
_ENTRY = 46  # the fixed part of a zip directory entry
_NESTING = 1  # zip archives inside an artifact are read; zips inside those are refused
_READABLE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # bzip2 and lzma inflate without a bound
_HINT = "if you trust the file, raise the limit: load_pipeline(..., limits={{{name!r}: ...}})"


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
