"""Conformance of invertible layers: ``inverse_transform(transform(x))`` gives ``x`` back.

:func:`check_inverse_transform` runs on a :class:`~megatron.testing.LayerCase` (it is one of
:func:`~megatron.testing.layer_checks`); :func:`check_generated_inverse` (needs
``hypothesis``) runs on batches generated within the case's own values (between the smallest
and largest of each numeric input, among the values of any other), which are the layer's
domain: a ``Log`` case's positive values, a one-hot case's labels. Both compare with the
case's ``rtol`` and ``atol``, and pass over layers that are not invertible::

    @pytest.mark.parametrize("case", CASES, ids=str)
    def test_my_layer_inverts(case):
        check_inverse_transform(case)
        check_generated_inverse(case)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from megatron.graph.node import Input
from megatron.layers.base import Layer
from megatron.pipeline import Pipeline
from megatron.specs import Spec

if TYPE_CHECKING:  # megatron.testing.layers lists these checks: no import back
    from megatron.testing.layers import LayerCase

__all__ = ["assert_inverts", "check_generated_inverse", "check_inverse_transform"]


def _pipeline(case: LayerCase) -> tuple[Pipeline, Layer]:
    """A fresh layer of the case called on an input ``in0`` declared as its first array."""
    layer = case.layer()
    spec = case.input_specs[0] if case.input_specs else Spec.of(case.inputs[0])
    node = Input("in0", spec.shape, spec.dtype)
    return Pipeline(node, layer(node, "out0"), name=f"inverse_{layer.name}"), layer


def assert_inverts(case: LayerCase, fit_on: Sequence[np.ndarray], batch: Sequence[np.ndarray]) -> None:
    """A layer fitted on ``fit_on`` maps ``batch`` back to itself through a pipeline's
    ``inverse_transform`` and through the layer's own, within the case's tolerance."""
    pipeline, layer = _pipeline(case)
    if not layer.invertible:
        return
    if layer.stateful:
        pipeline.fit(case.feed(fit_on))
    outputs = pipeline.transform(case.feed(batch))
    direct = layer.inverse_transform(outputs["out0"])
    through = pipeline.inverse_transform(outputs, to="in0")
    for what, got in (("inverse_transform", direct), ("Pipeline.inverse_transform", through)):
        got = np.asarray(got)
        want = np.asarray(batch[0])
        assert got.shape == want.shape, f"{case}: {what} gave shape {got.shape}, expected {want.shape}"
        if want.dtype.kind in "fc" or got.dtype.kind in "fc":
            np.testing.assert_allclose(
                got, want, rtol=case.rtol, atol=case.atol, err_msg=f"{case}: {what}(transform(x)) != x"
            )
        else:
            np.testing.assert_array_equal(got, want, err_msg=f"{case}: {what}(transform(x)) != x")


def check_inverse_transform(case: LayerCase) -> None:
    """An invertible layer's ``inverse_transform`` gives its input back from its output (one
    feature input; layers that are not invertible pass)."""
    if len(case.inputs) == 1:
        assert_inverts(case, case.inputs, case.inputs)


def check_generated_inverse(case: LayerCase, examples: int = 15) -> None:
    """On generated batches within the case's values, fitted on each batch itself,
    ``inverse_transform(transform(x))`` is ``x`` within the case's tolerance."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    if len(case.inputs) != 1 or not case.layer().invertible:
        return

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=st.data())
    def inverts(data: Any) -> None:
        batch = tuple(data.draw(_within(a)) for a in case.inputs)
        assert_inverts(case, batch, batch)

    inverts()


def _within(example: np.ndarray) -> Any:
    """Arrays of 1 to 12 rows of ``example``'s row shape and dtype, each value between its
    smallest and largest (numbers) or among its values (anything else)."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    shape = st.integers(1, 12).map(lambda n: (n, *example.shape[1:]))
    if example.dtype.kind == "f":
        low, high = float(np.nanmin(example)), float(np.nanmax(example))
        width = 32 if example.dtype.itemsize == 4 else 64
        elements: Any = st.floats(low, high, width=width, allow_subnormal=False)  # type: ignore[arg-type]
    elif example.dtype.kind in "iu":
        elements = st.integers(int(example.min()), int(example.max()))
    else:
        elements = st.sampled_from(sorted(set(example.ravel().tolist())))
    return hnp.arrays(example.dtype, shape, elements=elements)
