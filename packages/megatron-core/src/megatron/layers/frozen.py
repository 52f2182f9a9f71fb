"""Read-only hyperparameter values: an edit in place raises instead of going unseen.

A pipeline's fingerprint is recomputed when a hyperparameter is replaced, so stored outputs
are never served for another configuration. A value edited in place (``layer.W[0, 0] = 1``,
``layer.mapping[k] = v``) would change what the layer computes unseen; so a layer keeps its
hyperparameter arrays as read-only copies and its mappings as :class:`FrozenDict`. To change
one, assign a new value.
"""

from __future__ import annotations

import weakref
from typing import Any, NoReturn

import numpy as np

from megatron.errors import ReadOnlyError

# Arrays frozen here, by id, so that one handed back (``clone``) is not copied again. The weak
# references let an array go as soon as nothing else holds it, before its id can be reused.
_OURS: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()


class FrozenDict(dict):  # type: ignore[type-arg]
    """A dict that refuses changes: a layer's mapping hyperparameter (``Impute(mapping)``).

    It is a ``dict`` for everything that reads it (``isinstance``, ``==``, JSON, ``**``).
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ReadOnlyError(
            "A layer's mapping hyperparameter is read-only, so that the pipeline's fingerprint sees "
            "every change: assign a new one instead, e.g. layer.mapping = {**layer.mapping, key: value}."
        )

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        # dict's own pickling would rebuild the copy item by item, through __setitem__
        return (freeze, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self


def freeze(value: Any) -> Any:
    """``value`` as a layer keeps a hyperparameter: a read-only copy of an array (the caller's
    own array is neither shared nor changed), a :class:`FrozenDict` of a dict (its values frozen
    the same way); anything else as it is."""
    if isinstance(value, np.ndarray):
        if not value.flags.writeable and _OURS.get(id(value)) is value:
            return value
        copy = np.array(value, copy=True, subok=True)
        copy.flags.writeable = False
        _OURS[id(copy)] = copy
        return copy
    if isinstance(value, dict) and type(value) is not FrozenDict:
        return FrozenDict((key, freeze(item)) for key, item in value.items())
    return value
