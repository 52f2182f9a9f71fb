"""Saving scikit-learn estimators inside pipeline files with skops (never pickle)."""

from __future__ import annotations

from typing import Any

from megatron.errors import PersistenceError


class SkopsSerializer:
    """Estimators as skops files. Loading trusts only the types skops trusts by default, plus
    those the caller lists (``load_pipeline(..., trusted=[...])``); any other type is named
    and refused before anything is built."""

    name = "skops"

    def claims(self, obj: Any) -> bool:
        module = type(obj).__module__
        return module.startswith("sklearn") and hasattr(obj, "get_params")

    def save(self, obj: Any, archive: Any, prefix: str) -> dict[str, Any]:
        import skops.io as sio

        return {"file": archive.add(f"{prefix}/estimator.skops", sio.dumps(obj))}

    def _untrusted(self, data: bytes) -> list[str]:
        import skops.io as sio

        return list(sio.get_untrusted_types(data=data))

    def load(self, meta: dict[str, Any], archive: Any, options: dict[str, Any]) -> Any:
        import skops.io as sio

        data = archive.read(meta["file"])
        trusted = list(options.get("trusted", []))
        refused = [t for t in self._untrusted(data) if t not in trusted]
        if refused:
            raise PersistenceError(
                f"{str(archive.path)!r} holds a scikit-learn estimator with types skops does not trust: {refused}. "
                "Load it only if you trust the file: load_pipeline(..., trusted=[...those types...])"
            )
        return sio.loads(data, trusted=self._untrusted(data))

    def audit(self, meta: dict[str, Any], archive: Any) -> list[str]:
        data = archive.read(meta["file"])
        untrusted = self._untrusted(data)
        lines = [f"scikit-learn estimator in {meta['file']} (skops)"]
        lines += [f"  type {t} (NOT trusted by skops: needs trusted=)" for t in untrusted]
        return lines
