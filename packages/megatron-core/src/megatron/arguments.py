"""Checks of arguments that many parts share (counts, sizes), with one wording for each."""

from __future__ import annotations

from typing import Any

import numpy as np

from megatron.errors import ConfigError, MegatronError


def positive_int(
    value: Any, what: str, *, allow_none: bool = False, error: type[MegatronError] = ConfigError
) -> Any:
    """``value`` if it is a positive integer (or None, with ``allow_none``); else ``error``
    saying that ``what`` (``"batch_size"``) must be one. Bools are refused."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise error(f"{what} must be a positive integer; got {value!r}.")
    return value
