"""Saving Keras models inside pipeline files as ``.keras`` archives, loaded in safe mode."""

from __future__ import annotations

import json
import math
import tempfile
import zipfile
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from types import MappingProxyType
from typing import Any

from megatron.errors import PersistenceError
from megatron.persistence.schema import preview
from megatron.persistence.serializer import Serializer


class KerasSerializer(Serializer):
    """Keras models as ``.keras`` files. Loading uses Keras's safe mode, which refuses
    serialized Python code (lambdas); custom Keras classes come from its one option,
    ``custom_objects`` (``load_pipeline(..., serializer_options={"keras": {"custom_objects":
    {...}}})``, which ``custom_objects=`` fills as well).

    A model's ``config.json`` decides how much memory Keras allocates for its weights (a
    ``Dense`` layer's ``units``) before any weight is read. So before Keras loads it, the model
    is built from its configuration in a TensorFlow graph, where a variable is a node and
    allocates nothing, and the bytes its weights declare must fit in what the artifact stores:
    a model whose configuration declares more is refused."""

    name = "keras"
    options = ("custom_objects",)
    shortcuts = MappingProxyType(
        {"custom_objects": "custom_objects"}
    )  # load_pipeline(custom_objects=...) fills it

    def claims(self, obj: Any) -> bool:
        return type(obj).__module__.startswith("keras") and hasattr(obj, "save") and hasattr(obj, "inputs")

    def save(self, obj: Any, archive: Any, prefix: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            obj.save(path)
            return {"file": archive.add(f"{prefix}/model.keras", path.read_bytes())}

    def custom_objects(self, options: Mapping[str, Any]) -> dict[str, Any] | None:
        """The classes ``options`` give Keras, checked: a mapping of names (or none)."""
        custom = self.check_options(options).get("custom_objects")
        if custom is not None and not isinstance(custom, Mapping):
            raise PersistenceError(
                "The 'keras' serializer's option 'custom_objects' takes a mapping of names to your Keras "
                f"classes and functions; got a {type(custom).__name__}: {preview(custom, 200)}"
            )
        return None if custom is None else dict(custom)

    def load(self, meta: dict[str, Any], archive: Any, options: Mapping[str, Any]) -> Any:
        from megatron_keras.quiet import import_keras

        custom = self.custom_objects(options)
        keras = import_keras()

        data, where = self._read(meta, archive)
        _check_declared_weights(keras, data, where, custom)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            path.write_bytes(data)
            try:
                return keras.models.load_model(path, safe_mode=True, custom_objects=custom)
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
                f"{archive.where}: a Keras artifact is described as {{'file': member}}; got {preview(meta, 200)}"
            )
        return archive.read_zip(meta["file"]), archive.member(meta["file"])

    def audit(self, meta: dict[str, Any], archive: Any, options: Mapping[str, Any]) -> list[str]:
        self.custom_objects(options)
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


def _check_declared_weights(keras: Any, data: bytes, where: str, custom_objects: Any) -> None:
    """Refuse a ``.keras`` archive (``data``, already checked and rebuilt) whose configuration
    declares more bytes of weights than the whole archive holds, without allocating them."""
    with zipfile.ZipFile(BytesIO(data)) as model:
        stored = sum(info.file_size for info in model.infolist())
        try:
            config = json.loads(model.read("config.json"))
        except (KeyError, ValueError, RecursionError):
            return  # Keras says what is wrong with it
    if not isinstance(config, dict) or keras.backend.backend() != "tensorflow":
        return
    config = {key: value for key, value in config.items() if key != "compile_config"}
    try:
        declared = _declared_weight_bytes(keras, config, custom_objects)
    except Exception as exc:
        if _custom_classes(config):  # code of the caller's that may need eager tensors: Keras decides
            return
        raise PersistenceError(  # as loading it would: safe mode refuses code, Keras a broken config
            f"{where}: the Keras model was refused or could not be loaded (safe mode; built from its "
            f"config.json to check its weights against the file): {type(exc).__name__}: {str(exc)[:500]}"
        ) from None
    if declared > stored:
        raise PersistenceError(
            f"{where}: config.json declares weights of {_size(declared)}, but the model's archive holds "
            f"{_size(stored)} in all: refused before Keras builds the model"
        )


def _declared_weight_bytes(keras: Any, config: dict[str, Any], custom_objects: Any) -> int:
    """The bytes of the weights the model of ``config`` declares, built in a graph (a variable
    there is a node: nothing is allocated, whatever its shape)."""
    import numpy as np
    import tensorflow as tf

    total = 0
    with tf.Graph().as_default():
        model = keras.saving.deserialize_keras_object(config, custom_objects=custom_objects, safe_mode=True)
        for variable in getattr(model, "weights", []):
            try:
                itemsize = np.dtype(str(variable.dtype)).itemsize
            except TypeError:
                itemsize = 1
            total += math.prod(int(d) for d in variable.shape) * itemsize
    return total


def _custom_classes(config: Any) -> bool:
    """Whether ``config`` names a class from outside Keras (the caller's ``custom_objects``)."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module = item.get("module")
            if "class_name" in item and isinstance(module, str) and not module.startswith("keras"):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _size(n: int) -> str:
    from megatron.persistence.limits import size

    return size(n)
