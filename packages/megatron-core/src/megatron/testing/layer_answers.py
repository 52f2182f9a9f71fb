"""Property checks of the answers a layer gives, on data generated from a case
(:mod:`megatron.testing.layer_strategies`), each run through real pipelines:

- :func:`check_accepts_its_own_rows`: fitted on any non-empty draw of the case's rows and run
  on any draw (0, 1 or many rows), the layer succeeds, keeps one output row per input row
  (a row filter: the rows it kept, with their observation index), changes no input, and
  equals a reference implementation where the test gives one;
- :func:`check_one_pass_over_epochs`: ``fit_generator`` over any split and any number of
  epochs equals ``fit``, for a stateful layer that is not :attr:`iterative
  <megatron.layers.StatefulLayer.iterative>` (a one-pass statistic gets one pass);
- :func:`check_nonfinite_fit_data`: one NaN or infinity in the fit data is refused with a
  megatron error, or leaves every output finite where the clean fit's is;
- :func:`check_generated_round_trip`: saved and loaded back after fitting on generated rows,
  the pipeline gives identical outputs and the same fingerprint;
- :func:`check_merges_on_generated_parts`: copies of a layer that merges states, fitted on
  generated parts and merged, give one ``partial_fit`` over the parts in order;
- :func:`check_refuses_non_mappings` and :func:`check_declared_spec_guards_inputs`: an array,
  list or scalar in place of a mapping, and an input outside its declared spec, are refused
  with a :class:`~megatron.errors.DataError` naming what was expected.

:func:`answer_properties` lists them for ``pytest.mark.parametrize``; together with
:func:`megatron.testing.batches.layer_properties` they are the property suite every built-in
layer runs, and a plugin's layers can run too::

    @pytest.mark.parametrize("check", answer_properties(), ids=lambda c: c.__name__)
    def test_my_layer_answers(check):
        check(LayerCase(MyLayer, (data,)))

Needs ``hypothesis`` (``pip install -e "packages/megatron-core[testing]"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megatron.errors import DataError, MegatronError
from megatron.layers.base import StatefulLayer
from megatron.outputs import Outputs
from megatron.testing.batches import splits
from megatron.testing.layer_strategies import (
    epochs,
    not_mappings,
    outside_spec,
    parts_of,
    rows_of,
    with_nonfinite,
)
from megatron.testing.layers import (
    LayerCase,
    Rename,
    _assert_same,
    _run,
    assert_merges,
    named_pipeline,
    objects_for_loading,
    save_and_reload,
)

Reference = Callable[[tuple[np.ndarray, ...], tuple[np.ndarray, ...]], Sequence[np.ndarray]]
"""What a layer must compute: ``reference(fit_rows, rows)`` gives its outputs for ``rows``
after a fit on ``fit_rows`` (ignored by a stateless layer)."""


def _settings(examples: int) -> Callable[[Any], Any]:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # a conformance suite gives the same verdict on every run
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def _shown(batch: Sequence[Any]) -> str:
    return ", ".join(f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else type(a).__name__ for a in batch)


def _frozen(batch: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    copies = tuple(np.array(a, copy=True) for a in batch)
    for array in copies:
        array.setflags(write=False)
    return copies


def check_accepts_its_own_rows(
    case: LayerCase,
    examples: int = 15,
    reference: Reference | None = None,
    fit_rows: st.SearchStrategy[tuple[np.ndarray, ...]] | None = None,
) -> None:
    """Fitted on any non-empty draw of the case's own rows (a stateful layer) and run on any
    draw of them, 0 rows included, the layer succeeds, changes no input, gives one output row
    per input row (a row filter: at most that, with the kept rows' index), and equals
    ``reference`` where given. ``fit_rows`` draws the fit data instead (a classifier needs
    every class: ``st.just(case.inputs)``)."""

    @_settings(examples)
    @given(fit_rows=fit_rows or rows_of(case, min_rows=1), rows=rows_of(case))
    def run(fit_rows: tuple[np.ndarray, ...], rows: tuple[np.ndarray, ...]) -> None:
        pipeline, layer = named_pipeline(case)
        before = [np.array(a, copy=True) for a in rows]
        frozen = _frozen(rows)
        try:
            outputs = _run(case, frozen, pipeline, layer, fit_on=_frozen(fit_rows))
        except MegatronError as exc:
            raise AssertionError(
                f"{case}: refused a draw of its own rows (fit on {_shown(fit_rows)}, run on {_shown(rows)}): {exc}"
            ) from exc
        for old, new in zip(before, frozen):
            np.testing.assert_array_equal(old, new, err_msg=f"{case}: an input changed")
        _check_rows(case, layer.filters_rows, len(rows[0]), outputs)
        if reference is not None:
            want = reference(fit_rows, rows)
            expected = Outputs(list(outputs), [np.asarray(w) for w in want], outputs.index)
            _assert_same(case, outputs, expected, f"against the reference, on {_shown(rows)}")

    run()


def _check_rows(case: LayerCase, filters_rows: bool, n: int, outputs: Outputs) -> None:
    index = np.asarray(outputs.index)
    for name in outputs:
        got = len(outputs[name])
        assert got <= n if filters_rows else got == n, f"{case}: {n} input rows gave {got} rows of {name!r}"
        assert len(index) == got, f"{case}: {got} rows of {name!r} but {len(index)} index keys"
    if filters_rows:  # the kept rows keep their own positions, in order
        assert np.all(np.diff(index) > 0) and (not len(index) or 0 <= index.min() <= index.max() < n), (
            f"{case}: a row filter's outputs carry index {index.tolist()} for {n} input rows"
        )
    else:
        np.testing.assert_array_equal(index, np.arange(n), err_msg=f"{case}: the index moved")


def check_one_pass_over_epochs(case: LayerCase, examples: int = 10) -> None:
    """``fit_generator`` over any split of the case's inputs, for any number of epochs, equals
    ``fit`` on all of them: a stateful layer that is not iterative learns a one-pass statistic
    and gets exactly one pass (skipped for other layers)."""
    pipeline, layer = named_pipeline(case)
    if not layer.stateful or not layer.supports_partial_fit() or layer.iterative:
        return
    whole = _run(case, case.inputs, pipeline, layer)

    @_settings(examples)
    @given(cuts=splits(len(case.inputs[0])), n_epochs=epochs())
    def run(cuts: list[int], n_epochs: int) -> None:
        streamed, _ = named_pipeline(case)
        batches = [case.feed(part) for part in zip(*(np.split(a, cuts) for a in case.inputs))]
        streamed.fit_generator(batches, epochs=n_epochs)
        _assert_same(
            case,
            streamed.transform(case.feed(case.inputs)),
            whole,
            f"fit_generator over cuts {cuts} for {n_epochs} epochs (a one-pass statistic fitted more than once?)",
        )

    run()


def check_nonfinite_fit_data(case: LayerCase, examples: int = 10) -> None:
    """One NaN or infinity in the fit data is refused with a megatron error, or the fitted
    layer still gives finite outputs on the clean inputs wherever the clean fit does: it never
    spreads over a feature unseen (skipped for stateless layers)."""
    pipeline, layer = named_pipeline(case)
    if not layer.stateful:
        return
    clean = _run(case, case.inputs, pipeline, layer)

    @_settings(examples)
    @given(drawn=with_nonfinite(case.inputs))
    def run(drawn: tuple[tuple[np.ndarray, ...], str]) -> None:
        dirty, where = drawn
        fitted, _ = named_pipeline(case)
        try:
            fitted.fit(case.feed(dirty))
        except MegatronError:
            return
        outputs = fitted.transform(case.feed(case.inputs))
        for name in clean:
            want, got = clean[name], outputs[name]
            if want.dtype.kind not in "fc" or got.dtype.kind not in "fc":
                continue
            spread = np.isfinite(want) & ~np.isfinite(got)
            assert not spread.any(), (
                f"{case}: fitted with a non-finite value ({where}), output {name!r} is non-finite in "
                f"{int(spread.sum())} places where the clean fit's is finite: refuse the value instead"
            )

    run()


def check_generated_round_trip(
    case: LayerCase, examples: int = 4, fit_rows: st.SearchStrategy[tuple[np.ndarray, ...]] | None = None
) -> None:
    """Fitted on a draw of the case's rows (or of ``fit_rows``), saved and loaded back, the
    pipeline gives identical outputs on another draw and keeps its fingerprint; a layer with an
    exact ``partial_fit`` then learns from one more batch just as the pipeline it was saved
    from does."""

    @_settings(examples)
    @given(
        fit_rows=fit_rows or rows_of(case, min_rows=1),
        rows=rows_of(case),
        more=fit_rows or rows_of(case, min_rows=1),
    )
    def run(
        fit_rows: tuple[np.ndarray, ...], rows: tuple[np.ndarray, ...], more: tuple[np.ndarray, ...]
    ) -> None:
        pipeline, layer = named_pipeline(case)
        before = _run(case, rows, pipeline, layer, fit_on=fit_rows)
        custom = objects_for_loading(layer, Rename(""), given=case.custom_objects)
        loaded = save_and_reload(pipeline, custom, case.trusted)
        after = loaded.transform(case.feed(rows))
        _assert_identical(case, after, before, "after reloading")
        assert loaded.fingerprint == pipeline.fingerprint, f"{case}: the reloaded fingerprint differs"
        if layer.stateful and layer.supports_partial_fit() and not layer.iterative:
            pipeline.partial_fit(case.feed(more))
            loaded.partial_fit(case.feed(more))
            _assert_identical(
                case,
                loaded.transform(case.feed(case.inputs)),
                pipeline.transform(case.feed(case.inputs)),
                "after reloading and learning from one more batch (state kept outside metadata?)",
            )

    run()


def check_merges_on_generated_parts(
    case: LayerCase, examples: int = 5, parts: st.SearchStrategy[list[tuple[np.ndarray, ...]]] | None = None
) -> None:
    """For a layer that merges states (skipped for others): copies fitted on two or three
    generated batches of the case's rows (or on ``parts``) and merged give one ``partial_fit``
    over the batches in order, within the exactness the layer declares; with the identity,
    associativity and unchanged arguments of
    :func:`~megatron.testing.layers.check_merge_matches_partial_fit`."""
    layer = case.layer()
    if not isinstance(layer, StatefulLayer) or not layer.supports_merge():
        return

    @_settings(examples)
    @given(drawn=parts or parts_of(case))
    def run(drawn: list[tuple[np.ndarray, ...]]) -> None:
        assert_merges(case, drawn)

    run()


def _assert_identical(case: LayerCase, got: Outputs, want: Outputs, what: str) -> None:
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"{case}: {name!r} {what}")
    np.testing.assert_array_equal(got.index, want.index, err_msg=f"{case}: the index {what}")


def check_refuses_non_mappings(case: LayerCase, examples: int = 7) -> None:
    """An array, a list or tuple of arrays, a row, a string, a number or None given where a
    mapping of input name to array belongs is a :class:`~megatron.errors.DataError` saying a
    mapping was expected, from ``fit``, ``transform`` and ``fit_generator``."""
    pipeline, layer = named_pipeline(case)
    operations: list[tuple[str, Callable[[Any], Any]]] = [("transform", pipeline.transform)]
    if layer.stateful:
        operations.append(("fit", pipeline.fit))
        if layer.supports_partial_fit() or layer.drives_its_own_loop():
            operations.append(("fit_generator", lambda data: pipeline.fit_generator([data])))

    @_settings(examples)
    @given(data=not_mappings(case))
    def run(data: Any) -> None:
        if layer.stateful and not layer.fitted:
            pipeline.fit(case.feed(case.inputs))  # again: a refused fit_generator resets the layer
        for operation, call in operations:
            try:
                call(data)
            except DataError as exc:
                if "mapping" not in str(exc):
                    raise AssertionError(f"{case}: {operation}() of a {type(data).__name__}: {exc}") from exc
            except Exception as exc:
                raise AssertionError(
                    f"{case}: {operation}() of a {type(data).__name__} raised {type(exc).__name__}, "
                    f"not a DataError: {exc}"
                ) from exc
            else:
                raise AssertionError(f"{case}: {operation}() accepted a {type(data).__name__}")

    run()


def check_declared_spec_guards_inputs(case: LayerCase, examples: int = 10) -> None:
    """A batch in which an input has a per-observation shape or a dtype its declared spec
    refuses is a :class:`~megatron.errors.DataError` naming that input, before any layer runs."""
    pipeline, layer = named_pipeline(case)
    _run(case, case.inputs, pipeline, layer)
    features = len(case.inputs) - layer.n_targets(len(case.inputs))  # transform reads these

    @_settings(examples)
    @given(drawn=outside_spec(case, features=features))
    def run(drawn: tuple[tuple[Any, ...], int]) -> None:
        batch, i = drawn
        if i < 0:
            return
        try:
            pipeline.transform(case.feed(batch))
        except DataError as exc:
            if f"'in{i}'" not in str(exc):
                raise AssertionError(f"{case}: the error does not name input 'in{i}': {exc}") from exc
        else:
            raise AssertionError(f"{case}: input in{i} of {_shown(batch)} was accepted against its spec")

    run()


def answer_properties() -> list[Callable[..., None]]:
    """Every check of this module, for ``pytest.mark.parametrize``."""
    return [
        check_accepts_its_own_rows,
        check_one_pass_over_epochs,
        check_nonfinite_fit_data,
        check_generated_round_trip,
        check_merges_on_generated_parts,
        check_refuses_non_mappings,
        check_declared_spec_guards_inputs,
    ]
