"""A tree reduction of delayed values: groups of ``split_every`` combined level by level,
``ceil(log_split_every(n))`` levels, in the order of the values."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from megatron.errors import ConfigError


def check_split_every(split_every: int, where: str) -> int:
    """``split_every``, an integer of at least 2 (how many values one combining task takes)."""
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) or split_every < 2:
        raise ConfigError(
            f"{where}: split_every is how many values one task combines, an integer of at least 2; "
            f"got {split_every!r}."
        )
    return int(split_every)


def tree_reduce(items: Sequence[Any], combine: Callable[..., Any], *args: Any, split_every: int = 8) -> Any:
    """One delayed value: ``combine(*args, group)`` over groups of ``split_every`` of ``items``
    (delayed values, in order), then over groups of those, to one."""
    from dask import delayed

    level = list(items)
    task = delayed(combine, pure=True)
    while len(level) > 1:
        level = [task(*args, level[i : i + split_every]) for i in range(0, len(level), split_every)]
    return level[0]
