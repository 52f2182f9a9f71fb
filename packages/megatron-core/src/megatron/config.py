"""Hyperparameters by introspection: the ``__init__`` parameters stored as same-named attributes."""

from __future__ import annotations

import inspect
from typing import Any


def init_config(obj: Any) -> dict[str, Any]:
    """``obj``'s ``__init__`` parameters read from the attributes of the same names (the
    scikit-learn convention), skipping ``*args``/``**kwargs`` and unset ones."""
    params = inspect.signature(type(obj).__init__).parameters.values()
    return {
        p.name: getattr(obj, p.name)
        for p in params
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and hasattr(obj, p.name)
    }
