"""Saving Keras models inside pipeline files as ``.keras`` archives, loaded in safe mode."""

from __future__ import annotations

import json
import tempfile
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

from megatron.errors import PersistenceError


class KerasSerializer:
    """Keras models as ``.keras`` files. Loading uses Keras's safe mode, which refuses
    serialized Python code (lambdas); custom Keras classes come from ``custom_objects``."""

    name = "keras"

    def claims(self, obj: Any) -> bool:
        return type(obj).__module__.startswith("keras") and hasattr(obj, "save") and hasattr(obj, "inputs")

    def save(self, obj: Any, archive: Any, prefix: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            obj.save(path)
            return {"file": archive.add(f"{prefix}/model.keras", path.read_bytes())}

    def load(self, meta: dict[str, Any], archive: Any, options: dict[str, Any]) -> Any:
        from megatron_keras.quiet import import_keras

        keras = import_keras()

        data, where = self._read(meta, archive)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            path.write_bytes(data)
            try:
                return keras.models.load_model(
                    path, safe_mode=True, custom_objects=options.get("custom_objects")
                )
            except Exception as exc:
                raise PersistenceError(
                    f"{where}: the Keras model was refused or could not be loaded "
                    f"(safe mode): {type(exc).__name__}: {exc}"
                ) from exc

    def _read(self, meta: Any, archive: Any) -> tuple[bytes, str]:
        """The ``.keras`` member, checked against the loader's limits and rebuilt from bounded
        reads (see ``ArchiveReader.read_zip``), and how errors name it."""
        if not (isinstance(meta, dict) and set(meta) == {"file"} and isinstance(meta["file"], str)):
            raise PersistenceError(
                f"{archive.where}: a Keras artifact is described as {{'file': member}}; got {str(meta)[:200]}"
            )
        return archive.read_zip(meta["file"]), archive.member(meta["file"])

    def audit(self, meta: dict[str, Any], archive: Any) -> list[str]:
        data, where = self._read(meta, archive)
        try:
            with zipfile.ZipFile(BytesIO(data)) as model:
                config = json.loads(model.read("config.json"))
        except (KeyError, ValueError, RecursionError) as exc:
            raise PersistenceError(
                f"{where} has no readable config.json: {type(exc).__name__}: {exc}"
            ) from None
        names: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                if "class_name" in value and "module" in value:
                    names.append(f"{value['module']}.{value['class_name']}")
                for v in value.values():
                    walk(v)
            elif isinstance(value, list):
                for v in value:
                    walk(v)

        walk(config)
        return [f"Keras model in {meta['file']} (.keras, safe mode)"] + [
            f"  class {n}" for n in sorted(set(names))
        ]
