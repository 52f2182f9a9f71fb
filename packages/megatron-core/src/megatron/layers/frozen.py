"""Read-only hyperparameter values: an edit in place raises instead of going unseen.

A pipeline's fingerprint is recomputed when a hyperparameter is replaced, so stored outputs
are never served for another configuration. A value edited in place (``layer.W[0, 0] = 1``,
``layer.mapping[k] = v``, ``layer.tables[0][0] = 5``) would change what the layer computes
unseen; so a layer keeps its hyperparameters read-only all the way down: arrays as read-only
copies, dicts as :class:`FrozenDict`, lists as :class:`FrozenList`, sets as :class:`FrozenSet`
and tuples as tuples of frozen items. To change one, assign a new value. Other objects (an
estimator, a callable object) are kept as they are: the fingerprint reads their attributes.
"""

from __future__ import annotations

import weakref
from typing import Any, NoReturn

import numpy as np

from megatron.errors import ReadOnlyError

# Arrays frozen here, by id, so that one handed back (``clone``) is not copied again. The weak
# references let an array go as soon as nothing else holds it, before its id can be reused.
_OURS: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()


def _refusal(kind: str, example: str) -> Any:
    def refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        raise ReadOnlyError(
            f"A layer's {kind} hyperparameter is read-only, so that the pipeline's fingerprint sees "
            f"every change: assign a new one instead, e.g. {example}."
        )

    return refuse


class FrozenDict(dict):
    """A dict that refuses changes: a layer's mapping hyperparameter (``Impute(mapping)``).

    It is a ``dict`` for everything that reads it (``isinstance``, ``==``, JSON, ``**``).
    """

    _refuse = _refusal("mapping", "layer.mapping = {**layer.mapping, key: value}")
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        # dict's own pickling would rebuild the copy item by item, through __setitem__
        return (freeze, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self


class FrozenList(list):
    """A list that refuses changes: a layer's list hyperparameter, its items frozen too.

    It is a ``list`` for everything that reads it (``isinstance``, ``==``, JSON, ``+``).
    """

    _refuse = _refusal("list", "layer.tables = [*layer.tables, item]")
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (freeze, (list(self),))

    def __copy__(self) -> FrozenList:
        return self


class FrozenSet(set):
    """A set that refuses changes: a layer's set hyperparameter.

    It is a ``set`` for everything that reads it (``isinstance``, ``==``, ``|``).
    """

    _refuse = _refusal("set", "layer.labels = layer.labels | {item}")
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse
    add = discard = remove = pop = clear = update = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (freeze, (set(self),))

    def __repr__(self) -> str:
        return repr(set(self))

    def __copy__(self) -> FrozenSet:
        return self


_FROZEN = (FrozenDict, FrozenList, FrozenSet)


def freeze(value: Any) -> Any:
    """``value`` as a layer keeps a hyperparameter: a read-only copy of an array (the caller's
    own array is neither shared nor changed), a :class:`FrozenDict` of a dict, a
    :class:`FrozenList` of a list, a :class:`FrozenSet` of a set, a tuple (or named tuple) of
    its items frozen, each item frozen the same way; anything else as it is."""
    if isinstance(value, np.ndarray):
        if not value.flags.writeable and _OURS.get(id(value)) is value:
            return value
        copy = np.array(value, copy=True, subok=True)
        copy.flags.writeable = False
        _OURS[id(copy)] = copy
        return copy
    if type(value) in _FROZEN:  # frozen when made, items included
        return value
    if isinstance(value, dict):
        return FrozenDict((key, freeze(item)) for key, item in value.items())
    if isinstance(value, list):
        return FrozenList(freeze(item) for item in value)
    if isinstance(value, set):
        return FrozenSet(value)  # its items are hashable, so kept as they are
    if isinstance(value, tuple):
        items = [freeze(item) for item in value]
        if all(new is old for new, old in zip(items, value)):
            return value
        if type(value) is tuple:
            return tuple(items)
        make = getattr(type(value), "_make", None)  # a named tuple
        return make(items) if callable(make) else value
    return value
