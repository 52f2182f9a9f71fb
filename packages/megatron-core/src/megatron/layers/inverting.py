"""Inverse transforms: mapping a layer's output back to its input (a mixin of ``Layer``)."""

from __future__ import annotations

from typing import Any

from megatron.errors import NotInvertibleError


class Inverting:
    """What a layer says about inverting itself (a mixin of :class:`~megatron.layers.Layer`).

    A layer with one feature input whose transform can be undone implements
    :meth:`inverse_transform`; :attr:`invertible` then says True (a layer whose inverse
    depends on its hyperparameters, ``ScalarMultiply(0)``, overrides it, and
    :meth:`why_not_invertible` to say why). Third-party layers check theirs with
    ``megatron.testing.inverting``.
    """

    @property
    def invertible(self) -> bool:
        """Whether :meth:`inverse_transform` maps outputs back to inputs: by default, whether the
        class implements it."""
        return type(self).inverse_transform is not Inverting.inverse_transform

    def why_not_invertible(self) -> str | None:
        """Why the outputs cannot be mapped back, as a clause (``"its factor is 0, ..."``) that
        errors quote; None where they can."""
        if self.invertible:
            return None
        if type(self).inverse_transform is Inverting.inverse_transform:
            return "it has no inverse_transform"
        return "its inverse_transform does not apply to it as configured"

    def inverse_transform(self, *outputs: Any) -> Any:
        """The input that ``transform`` maps to ``outputs`` (within rounding). Raises
        :class:`~megatron.errors.NotInvertibleError` for layers that cannot be inverted."""
        raise NotInvertibleError(
            f"Layer {getattr(self, 'name', type(self).__name__)!r} ({type(self).__name__}) has no "
            "inverse_transform: its outputs cannot be mapped back to its input."
        )
