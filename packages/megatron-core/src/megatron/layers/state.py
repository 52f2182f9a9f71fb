"""What a stateful layer learned, as data: the one door to it (:meth:`~LearnedState.get_state`,
:meth:`~LearnedState.set_state`, and :meth:`~LearnedState.restore` for a saved state with its
token), and merges of what copies of a layer learned from different rows
(:meth:`~LearnedState.merge_states`), on which fitting in parallel builds: each copy learns
from its own rows, and the states merge as if one layer had learned from all of them."""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from megatron.errors import LayerInputError
from megatron.layers.learning import FITTED_SHAPES

if TYPE_CHECKING:
    from megatron.layers.base import StatefulLayer

Exactness = Literal["exact", "rounding"]
"""How a merge of states compares with one fit over both parts: ``"exact"``, bit for bit (minima,
maxima, counts, vocabularies); ``"rounding"``, up to floating-point rounding (moments, sums)."""


class LearnedState:
    """The state door and merges of :class:`~megatron.layers.base.StatefulLayer`, which
    inherits them. A layer that keeps all it learns in ``metadata`` gets ``get_state`` and
    ``set_state`` as they are; one that can merge states implements ``merge_exactness`` and
    ``merge_states``."""

    if TYPE_CHECKING:  # what StatefulLayer provides

        @property
        def metadata(self) -> dict[str, Any]: ...
        @metadata.setter
        def metadata(self, value: dict[str, Any]) -> None: ...
        @property
        def fitted(self) -> bool: ...
        @fitted.setter
        def fitted(self, value: bool) -> None: ...
        @property
        def state_token(self) -> str: ...
        @property
        def fixed_shape(self) -> bool: ...

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        method = cls.__dict__.get("merge_states")
        if callable(method) and not hasattr(method, "_merges_shapes"):
            cls.merge_states = merging(method)  # type: ignore[method-assign]

    # -- the door ----------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """What the layer learned, as a new dict of plain values and arrays: by default a deep
        copy of ``metadata``. A layer that keeps learned state elsewhere (a fitted model among
        its hyperparameters, a cache) overrides this and :meth:`set_state` to include it."""
        return copy.deepcopy(self.metadata)

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Install a learned state (from :meth:`get_state` or :meth:`merge_states`) as if the
        layer had learned it: a deep copy becomes ``metadata``, the layer is :attr:`fitted`,
        and its state token is renewed. Overridden with :meth:`get_state` (drop any cache built
        from the old state there)."""
        if not isinstance(state, Mapping):
            raise LayerInputError(f"expected a learned state as a mapping; got {type(state).__name__}")
        self.metadata = copy.deepcopy(dict(state))
        self.fitted = True  # renews the token

    def restore(
        self,
        metadata: dict[str, Any],
        fitted: bool = True,
        state_token: str | None = None,
        recorded_token: str | None = None,
    ) -> None:
        """Put back what the layer learned elsewhere, as loading a file does: its ``metadata``
        (through :meth:`set_state`), whether it is :attr:`fitted`, and the :attr:`state_token`
        naming that state (a new one when ``None``). ``recorded_token`` is the token the file
        records for this state: :attr:`recorded_token` gives it back for as long as the layer
        keeps the state."""
        if metadata is not self.__dict__.get("_metadata"):  # giving its own state a token is no new state
            self.set_state(metadata)
        self.__dict__["_fitted"] = bool(fitted)
        token = uuid.uuid4().hex if state_token is None else state_token
        self.__dict__["state_token"] = token
        self.__dict__["_recorded_token"] = None if recorded_token is None else (recorded_token, token)

    @property
    def recorded_token(self) -> str | None:
        """The token a file records for the state the layer holds (see :meth:`restore`), or
        ``None``: never restored, or it has learned since (its :attr:`state_token` renewed)."""
        restored = self.__dict__.get("_recorded_token")
        return restored[0] if restored is not None and restored[1] == self.state_token else None

    # -- merges ------------------------------------------------------------------------------
    def merge_exactness(self) -> Exactness | None:
        """How a merge of states compares with one fit over both parts: ``"exact"`` (bit for
        bit), ``"rounding"`` (up to floating-point rounding), or ``None`` (the default): the
        layer cannot merge states. A layer that implements :meth:`merge_states` says which."""
        return None

    def supports_merge(self) -> bool:
        """Whether the layer merges states: ``merge_exactness() is not None``."""
        return self.merge_exactness() is not None

    def merge_states(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        """The state of having learned from the rows ``a`` learned from, then those of ``b``
        (states from :meth:`get_state`; one of a layer that learned nothing merges as the
        identity). A pure function: it changes neither state, and reads only the layer's
        hyperparameters (the result may share unchanged arrays with ``a`` and ``b``). The fitted
        shapes are checked and kept for it; states learned from observations of other shapes
        are refused with a :class:`~megatron.errors.LayerInputError`."""
        raise NotImplementedError(f"{type(self).__name__} cannot merge what copies of it learned")

    def merge(self, other: StatefulLayer) -> None:
        """Learn what ``other`` learned, as if from its rows after this layer's own."""
        self.set_state(self.merge_states(self.get_state(), other.get_state()))


def merging(method: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``merge_states``, refusing a layer that declares no merge and states learned from
    observations of other shapes, and keeping the shapes, as a ``partial_fit`` of ``b``'s rows
    after ``a``'s would: the last state's shapes (they are equal for a :attr:`fixed_shape`
    layer)."""

    @functools.wraps(method)
    def merge_states(self: LearnedState, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        if not self.supports_merge():
            raise NotImplementedError(f"{type(self).__name__} cannot merge what copies of it learned")
        for state in (a, b):
            if not isinstance(state, Mapping):
                raise LayerInputError(f"expected learned states as mappings; got {type(state).__name__}")
        first, last = _shapes(a.get(FITTED_SHAPES)), _shapes(b.get(FITTED_SHAPES))
        if self.fixed_shape and first is not None and last is not None and first != last:
            raise LayerInputError(
                f"cannot merge what it learned from observations of shape {_shown(first)} with what "
                f"it learned from observations of shape {_shown(last)}: what it learns belongs to "
                "the shape it learned it on"
            )
        merged = dict(method(self, a, b))  # a new dict, even where the method gives one of its own
        shapes = last if last is not None else first
        if shapes is not None:
            merged[FITTED_SHAPES] = shapes
        return merged

    merge_states._merges_shapes = True  # type: ignore[attr-defined]
    return merge_states


def _shapes(value: Any) -> tuple[tuple[int, ...], ...] | None:
    """Fitted shapes as tuples (a file may give them back as lists)."""
    return None if value is None else tuple(tuple(int(d) for d in shape) for shape in value)


def _shown(shapes: tuple[tuple[int, ...], ...]) -> str:
    return " and ".join(str(shape) for shape in shapes)
