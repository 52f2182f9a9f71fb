"""The pipeline file: a zip archive of a JSON description, ``.npy`` arrays and plugin
artifacts. Nothing in it is ever unpickled."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from megatron.errors import PersistenceError

FORMAT = 1
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
        self.add(DESCRIPTION, json.dumps(description, indent=1, allow_nan=False).encode())
        temporary = path.with_name(path.name + ".partial")
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.members.items():
                archive.writestr(name, data)
        temporary.replace(path)  # a reader never sees a half-written file


class ArchiveReader:
    """Reads the members of a pipeline file, with errors that name the file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PersistenceError(f"No pipeline file at {str(self.path)!r}")
        try:
            self._zip = zipfile.ZipFile(self.path)
            self.description = json.loads(self._zip.read(DESCRIPTION))
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
            raise PersistenceError(
                f"{str(self.path)!r} is not a readable megatron pipeline file (truncated or corrupted?): {exc}"
            ) from None
        version = self.description.get("format") if isinstance(self.description, dict) else None
        if not isinstance(version, int):
            raise PersistenceError(
                f"{str(self.path)!r} has no file format version: not a megatron pipeline file"
            )
        if version > FORMAT:
            raise PersistenceError(
                f"{str(self.path)!r} uses file format {version}, newer than this megatron reads ({FORMAT}): "
                "upgrade megatron-core to load it"
            )

    def read(self, name: str) -> bytes:
        try:
            return self._zip.read(name)
        except (KeyError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise PersistenceError(f"{str(self.path)!r}: cannot read {name!r}: {exc}") from None

    def array(self, name: str) -> np.ndarray:
        try:
            return np.load(io.BytesIO(self.read(name)), allow_pickle=False)
        except ValueError as exc:  # an object array: loading it would unpickle
            raise PersistenceError(
                f"{str(self.path)!r}: {name!r} is not a plain array and is refused: {exc}"
            ) from None

    def close(self) -> None:
        self._zip.close()
