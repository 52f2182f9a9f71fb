"""Hyperparameters by introspection: the ``__init__`` parameters stored as same-named attributes."""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.cache
def _init_parameters(cls: type) -> tuple[str, ...]:
    params = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    return tuple(
        p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )


def init_config(obj: Any) -> dict[str, Any]:
    """``obj``'s ``__init__`` parameters read from the attributes of the same names (the
    scikit-learn convention), skipping ``*args``/``**kwargs`` and unset ones."""
    return {name: getattr(obj, name) for name in _init_parameters(type(obj)) if hasattr(obj, name)}
