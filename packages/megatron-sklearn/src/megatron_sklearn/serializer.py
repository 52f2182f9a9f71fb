"""Saving scikit-learn estimators inside pipeline files with skops (never pickle)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from megatron.errors import PersistenceError
from megatron.persistence.schema import preview
from megatron.persistence.serializer import Serializer


class SkopsSerializer(Serializer):
    """Estimators as skops files. Loading trusts only the types skops trusts by default, plus
    those the caller lists in its one option, ``trusted``
    (``load_pipeline(..., serializer_options={"skops": {"trusted": [...]}})``, or
    ``trusted=[...]`` for short); any other type is named and refused before anything is
    built. The skops file is checked against the loader's limits and rebuilt from bounded
    reads before skops sees it; whatever skops then raises on a damaged file is a
    :class:`PersistenceError` naming the member."""

    name = "skops"
    options = ("trusted",)
    shortcuts = MappingProxyType({"trusted": "trusted"})  # load_pipeline(trusted=...) fills it

    def claims(self, obj: Any) -> bool:
        module = type(obj).__module__
        return module.startswith("sklearn") and hasattr(obj, "get_params")

    def save(self, obj: Any, archive: Any, prefix: str) -> dict[str, Any]:
        import skops.io as sio

        return {"file": archive.add(f"{prefix}/estimator.skops", sio.dumps(obj))}

    def _read(self, meta: Any, archive: Any) -> tuple[bytes, str]:
        if not (isinstance(meta, dict) and set(meta) == {"file"} and isinstance(meta["file"], str)):
            raise PersistenceError(
                f"{archive.where}: a skops artifact is described as {{'file': member}}; got {preview(meta, 200)}"
            )
        return archive.read_zip(meta["file"]), archive.member(meta["file"])

    def _untrusted(self, data: bytes, where: str) -> list[str]:
        import skops.io as sio

        try:
            return list(sio.get_untrusted_types(data=data))
        except Exception as exc:  # skops parsing a damaged or hostile file
            raise PersistenceError(
                f"{where} is not a readable skops file: {type(exc).__name__}: {exc}"
            ) from None

    def trusted(self, options: Mapping[str, Any]) -> list[str]:
        """The type names ``options`` trust, checked: a list of strings (or none)."""
        trusted = self.check_options(options).get("trusted")
        if trusted is None:
            return []
        if isinstance(trusted, str | bytes) or not isinstance(trusted, list | tuple | set | frozenset):
            raise PersistenceError(
                "The 'skops' serializer's option 'trusted' (trusted=) takes a list of type names, such as "
                f"['sklearn.tree._tree.Tree']; got a {type(trusted).__name__}: {preview(trusted, 200)}"
            )
        wrong = [name for name in trusted if not isinstance(name, str)]
        if wrong:
            raise PersistenceError(
                "The 'skops' serializer's option 'trusted' (trusted=) takes type names as strings; got "
                f"{preview(wrong[0], 200)}"
            )
        return list(trusted)

    def load(self, meta: dict[str, Any], archive: Any, options: Mapping[str, Any]) -> Any:
        import skops.io as sio

        trusted = self.trusted(options)
        data, where = self._read(meta, archive)
        untrusted = self._untrusted(data, where)
        refused = [t for t in untrusted if t not in trusted]
        if refused:
            raise PersistenceError(
                f"{where} holds a scikit-learn estimator with types skops does not trust: {refused}. "
                "Load it only if you trust the file: load_pipeline(..., trusted=[...those types...]), or "
                "serializer_options={'skops': {'trusted': [...]}}"
            )
        try:
            return sio.loads(data, trusted=untrusted)
        except Exception as exc:
            raise PersistenceError(
                f"{where}: the scikit-learn estimator cannot be loaded: {type(exc).__name__}: {exc}"
            ) from None

    def audit(self, meta: dict[str, Any], archive: Any, options: Mapping[str, Any]) -> list[str]:
        trusted = self.trusted(options)
        data, where = self._read(meta, archive)
        untrusted = self._untrusted(data, where)
        lines = [f"scikit-learn estimator in {meta['file']} (skops)"]
        lines += [
            f"  type {t} (NOT trusted by skops: trusted by the options given)"
            if t in trusted
            else f"  type {t} (NOT trusted by skops: needs trusted=)"
            for t in untrusted
        ]
        return lines
