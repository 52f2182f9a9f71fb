"""A cached transform: rows already stored for this very fit are read back, only the others
are computed, and the result keeps the order of the rows asked for."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from megatron.outputs import Outputs
from megatron.storage.base import Storage


def cached_outputs(
    storage: Storage,
    fingerprint: str,
    names: Sequence[str],
    index: np.ndarray,
    n: int,
    compute: Callable[[np.ndarray], Outputs],
    features: Callable[[], Mapping[str, list[str] | None]] | None = None,
) -> Outputs:
    """The outputs ``names`` of ``n`` rows keyed by ``index``: those ``storage`` holds under
    ``fingerprint``, and ``compute(positions)`` of the others (which stores them); in order.
    ``features`` gives the feature names, as a computed result has them (rows read back name
    their columns as computed ones do)."""
    found, stored = storage.lookup(index, fingerprint=fingerprint)
    missing = np.setdiff1d(np.arange(n), found, assume_unique=True)
    if len(missing) == 0:
        return Outputs(names, [stored[name] for name in names], index[found], features)
    fresh = compute(missing)
    if len(found) == 0:
        return fresh
    position_of = {key: i for i, key in enumerate(index[missing].tolist())}
    fresh_positions = missing[[position_of[key] for key in fresh.index.tolist()]]
    positions = np.concatenate([found, fresh_positions])
    order = np.argsort(positions, kind="stable")
    arrays = [np.concatenate([stored[name], fresh[name]])[order] for name in names]
    return Outputs(names, arrays, index[positions[order]], features)
