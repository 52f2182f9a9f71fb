"""The pipeline file: a zip archive of a JSON description (``pipeline.json``), ``.npy``
arrays and plugin artifacts. Nothing in it is ever unpickled.

This module names its parts and writes it (:class:`ArchiveWriter`); reading it within
:class:`~megatron.persistence.limits.Limits` is :mod:`megatron.persistence.reader`, over the
bounded zip reads of :mod:`megatron.persistence.bounded`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from megatron.errors import PersistenceError

FORMAT = 2
"""The newest file format this version writes and reads."""
DESCRIPTION = "pipeline.json"
EXTENSION = ".megatron"


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
