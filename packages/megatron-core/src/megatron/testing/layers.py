"""The layer conformance suite: what every layer must do, checked through real pipelines."""

from __future__ import annotations

import copy
import functools
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import attrs
import numpy as np

from megatron.errors import MegatronError
from megatron.graph.node import Input, Node
from megatron.layers.base import Layer, StatefulLayer
from megatron.outputs import Outputs
from megatron.pipeline import Pipeline
from megatron.specs import Spec
from megatron.testing.states import rounding, state_difference


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value)


@attrs.frozen
class LayerCase:
    """One way to use a layer: how to make it and a batch of inputs (targets last).

    ``bad_inputs`` lists input batches the layer must refuse with a megatron error;
    ``input_specs`` overrides the specs declared for the inputs (by default each array's
    own). A layer whose output rows depend on neighbouring rows sets ``stream_stateful``.
    ``custom_objects`` and ``trusted`` are passed to ``load_pipeline`` by the save and reload
    check, for functions and classes the file names that no plugin registers (the layer's own
    class and the functions among its hyperparameters are given already).
    """

    make: Callable[[], Layer]
    inputs: tuple[np.ndarray, ...] = attrs.field(converter=_tuple)
    bad_inputs: tuple[tuple[np.ndarray, ...], ...] = attrs.field(default=(), converter=_tuple)
    input_specs: tuple[Spec, ...] | None = None
    rtol: float = 1e-7
    atol: float = 1e-9
    name: str | None = None
    custom_objects: Mapping[str, Any] = attrs.field(factory=dict)
    trusted: tuple[str, ...] = ()
    user_code: bool = False
    """The layer runs a user's function (``Lambda``, ``Filter`` with a condition): errors that
    function raises on odd input are its own, so the generated-batch check lets them through."""

    def __str__(self) -> str:
        return self.name or str(getattr(self.make, "__name__", repr(self.make)))

    def layer(self) -> Layer:
        return self.make()

    def feed(self, arrays: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        return {f"in{i}": a for i, a in enumerate(arrays)}

    def batches(self, n: int = 3) -> list[tuple[np.ndarray, ...]]:
        """The inputs cut into ``n`` uneven batches of rows."""
        length = len(self.inputs[0])
        cuts = sorted({max(1, length * k // (n + 1) + k) for k in range(1, n)} - {length})
        return [tuple(part) for part in zip(*(np.split(a, cuts) for a in self.inputs))]


def named_pipeline(case: LayerCase, *, declare: bool = True) -> tuple[Pipeline, Layer]:
    """A pipeline applying a fresh layer to inputs ``in0, in1, ...``, its outputs named
    ``out0, out1, ...``. Without ``declare`` the inputs accept any shape and dtype."""
    layer = case.layer()
    if not declare:
        specs = tuple(Spec() for _ in case.inputs)
    else:
        specs = case.input_specs or tuple(Spec.of(a) for a in case.inputs)
    nodes = [Input(f"in{i}", spec.shape, spec.dtype) for i, spec in enumerate(specs)]
    called = layer(nodes if len(nodes) > 1 else nodes[0])
    outputs = [called] if isinstance(called, Node) else list(called)
    names = [f"out{i}" for i in range(len(outputs))]
    renamed = [cast(Node, Rename(n)(node, n)) for node, n in zip(outputs, names)]
    return Pipeline(nodes, renamed, name=f"conformance_{layer.name}"), layer


class Rename(Layer):
    """Pass a value through under a given name (so any layer's outputs can be named). To load
    a saved conformance pipeline, pass ``custom_objects={'Rename': Rename}``."""

    def __init__(self, label: str) -> None:
        self.label = label

    def output_spec(self, X: Spec) -> Spec:
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X


def _run(
    case: LayerCase,
    arrays: Sequence[np.ndarray],
    pipeline: Pipeline,
    layer: Layer,
    fit_on: Sequence[np.ndarray] | None = None,
) -> Outputs:
    if layer.stateful:
        pipeline.fit(case.feed(fit_on if fit_on is not None else arrays))
    return pipeline.transform(case.feed(arrays))


def _assert_same(case: LayerCase, got: Outputs, want: Outputs, what: str) -> None:
    for name in want:
        a, b = got[name], want[name]
        assert a.shape == b.shape, f"{case}: {what}: output {name!r} has shape {a.shape}, expected {b.shape}"
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a, b, rtol=case.rtol, atol=case.atol, err_msg=f"{case}: {what}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"{case}: {what}")


def check_fit_and_transform(case: LayerCase) -> None:
    """The layer fits (when stateful) and transforms a batch through a pipeline."""
    pipeline, layer = named_pipeline(case)
    outputs = _run(case, case.inputs, pipeline, layer)
    assert len(outputs) >= 1, f"{case}: no outputs"
    if layer.stateful:
        assert layer.fitted, f"{case}: the layer is not marked fitted after fit"


def check_inputs_not_mutated(case: LayerCase) -> None:
    """Neither fit nor transform writes to its inputs."""
    originals = [a.copy() for a in case.inputs]
    frozen = [a.copy() for a in case.inputs]
    for array in frozen:
        array.setflags(write=False)
    pipeline, layer = named_pipeline(case)
    _run(case, frozen, pipeline, layer)
    for before, after in zip(originals, frozen):
        np.testing.assert_array_equal(before, after, err_msg=f"{case}: an input changed")


def check_output_matches_spec(case: LayerCase) -> None:
    """Outputs have the shape and dtype the layer declared when the graph was built."""
    pipeline, layer = named_pipeline(case)
    outputs = _run(case, case.inputs, pipeline, layer)
    for node in pipeline.outputs:
        declared = node.inputs[0].spec
        array = outputs[node.name]
        assert declared.accepts_shape(array.shape[1:]), (
            f"{case}: output {node.inputs[0].name!r} declared shape {declared.shape}, got {array.shape[1:]}"
        )
        if declared.dtype is not None:
            assert array.dtype == declared.dtype, (
                f"{case}: output {node.inputs[0].name!r} declared dtype {declared.dtype}, got {array.dtype}"
            )


def check_batches_concatenate(case: LayerCase) -> None:
    """Transforming concatenated batches equals concatenating their transforms (skipped for
    layers documented as ``stream_stateful``)."""
    pipeline, layer = named_pipeline(case)
    if layer.stream_stateful:
        return
    whole = _run(case, case.inputs, pipeline, layer)
    parts = [pipeline.transform(case.feed(batch)) for batch in case.batches()]
    joined = Outputs(list(whole), [np.concatenate([p[name] for p in parts]) for name in whole])
    _assert_same(case, joined, whole, "transform of concatenated batches")


def check_partial_fit_matches_fit(case: LayerCase) -> None:
    """Fitting batch by batch (``fit_generator``) equals one fit on all the data."""
    pipeline, layer = named_pipeline(case)
    if not layer.stateful or not layer.supports_partial_fit():
        return
    whole = _run(case, case.inputs, pipeline, layer)
    streamed_pipeline, _ = named_pipeline(case)
    streamed_pipeline.fit_generator([case.feed(b) for b in case.batches()])
    _assert_same(case, streamed_pipeline.transform(case.feed(case.inputs)), whole, "partial_fit over batches")


def check_bad_input_names_the_layer(case: LayerCase) -> None:
    """Each bad input is refused with a megatron error naming the layer and the node."""
    for bad in case.bad_inputs:
        pipeline, layer = named_pipeline(case, declare=False)
        try:
            _run(case, bad, pipeline, layer, fit_on=bad)
        except MegatronError as exc:
            message = str(exc)
            assert layer.name in message, f"{case}: the error does not name layer {layer.name!r}: {message}"
            assert "at node" in message, f"{case}: the error does not name the node: {message}"
        else:
            raise AssertionError(f"{case}: bad input {[b.dtype for b in bad]} was accepted")


def check_empty_batch(case: LayerCase) -> None:
    """An empty batch transforms to empty outputs; fitting on one is refused with a megatron
    error (a layer cannot learn from nothing)."""
    empty = [a[:0] for a in case.inputs]
    pipeline, layer = named_pipeline(case)
    if layer.stateful and not layer.fitted:
        try:
            pipeline.fit(case.feed(empty))
        except MegatronError:
            pass
        else:
            raise AssertionError(f"{case}: fitting on an empty batch was accepted")
    if layer.stateful:
        pipeline.fit(case.feed(case.inputs))
    outputs = pipeline.transform(case.feed(empty))
    for name in outputs:
        assert len(outputs[name]) == 0, f"{case}: an empty batch gave {len(outputs[name])} rows"


def _functions(value: Any) -> Iterator[Any]:
    """The functions among a configuration's values, nested ones included."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _functions(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _functions(item)
    elif callable(value) and not isinstance(value, type):
        yield value


def objects_for_loading(*objects: Any, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``custom_objects`` that bind each class among ``objects`` and each function among
    their hyperparameters (under ``module:qualname``), then what ``given`` adds."""
    custom: dict[str, Any] = {}
    for obj in objects:
        custom[type(obj).__qualname__] = type(obj)
        config = obj.get_config() if hasattr(obj, "get_config") else {}
        for function in _functions(config):
            name = getattr(function, "__qualname__", None)
            if name is not None:
                custom[f"{getattr(function, '__module__', '')}:{name}"] = function
    return {**custom, **(given or {})}


def save_and_reload(
    pipeline: Pipeline, custom_objects: Mapping[str, Any], trusted: Sequence[str] = ()
) -> Pipeline:
    """``pipeline`` saved to a temporary folder and loaded back."""
    from megatron import load_pipeline

    with tempfile.TemporaryDirectory() as folder:
        path = pipeline.save(folder)
        return load_pipeline(path, custom_objects=custom_objects, trusted=list(trusted))


def check_save_and_reload(case: LayerCase) -> None:
    """A fitted pipeline saved and loaded back computes the same outputs and has the same
    fingerprint: no hyperparameter is lost (each is an ``__init__`` argument kept as the
    attribute of that name) and all fitted state is in ``metadata`` and saveable."""
    pipeline, layer = named_pipeline(case)
    before = _run(case, case.inputs, pipeline, layer)
    custom = objects_for_loading(layer, Rename(""), given=case.custom_objects)
    try:
        loaded = save_and_reload(pipeline, custom, case.trusted)
    except MegatronError as exc:
        raise AssertionError(f"{case}: the fitted pipeline does not save and load back: {exc}") from exc
    after = loaded.transform(case.feed(case.inputs))
    _assert_same(case, after, before, "after saving and loading back (a hyperparameter or state was lost?)")
    (copy,) = [other for other in loaded.layers if type(other) is not Rename]
    assert copy.get_config().keys() == layer.get_config().keys(), (
        f"{case}: hyperparameters {sorted(layer.get_config())} came back as {sorted(copy.get_config())}"
    )
    assert loaded.fingerprint == pipeline.fingerprint, (
        f"{case}: the loaded pipeline's fingerprint differs, so its stored outputs would not be served"
    )


def check_merge_matches_partial_fit(case: LayerCase) -> None:
    """For a layer that merges states (skipped for others): copies fitted on two halves of the
    inputs and merged give one ``partial_fit`` over both halves in order (states and outputs
    bit for bit when the layer declares ``"exact"``, to 1e-12 relative when ``"rounding"``);
    ``merge`` does the same; the state of a copy that learned nothing merges as the identity
    (unless the layer refuses it with a megatron error); three parts merge associatively;
    and ``merge_states`` changes neither of its arguments."""
    layer = case.layer()
    if not isinstance(layer, StatefulLayer) or not layer.supports_merge():
        return
    for n in (2, 3):
        if len(case.inputs[0]) >= n:
            assert_merges(case, [tuple(np.array_split(a, n)[i] for a in case.inputs) for i in range(n)])


def assert_merges(case: LayerCase, parts: Sequence[tuple[np.ndarray, ...]]) -> None:
    """The merge contract on ``parts`` (each a batch of the case's inputs, none empty): see
    :func:`check_merge_matches_partial_fit`."""
    first = _learner(case)
    exact = first.merge_exactness() == "exact"
    states = [_learned(case, [part]).get_state() for part in parts]
    before = copy.deepcopy(states)
    merged = functools.reduce(first.merge_states, states)
    whole = _learned(case, parts)
    _same_state(
        case, merged, whole.get_state(), exact, f"the merge of {len(parts)} parts, against partial_fit"
    )
    installed = _learner(case)
    installed.set_state(merged)
    _same_outputs(case, installed, whole, exact, f"after installing the merge of {len(parts)} parts")
    with_merge = _learned(case, parts[:1])
    with_merge.merge(_learned(case, parts[1:2]))
    _same_state(case, with_merge.get_state(), _learned(case, parts[:2]).get_state(), exact, "merge()")
    _assert_identity(case, first, states[0], exact)
    if len(states) == 3:
        right = first.merge_states(states[0], first.merge_states(states[1], states[2]))
        _same_state(
            case, right, merged, exact, "a merge of a and (b merged with c), against (a with b) with c"
        )
    for i, (state, old) in enumerate(zip(states, before)):
        _same_state(case, state, old, True, f"merge_states changed the state of part {i} it was given")


def _learner(case: LayerCase) -> StatefulLayer:
    layer = case.layer()
    assert isinstance(layer, StatefulLayer), f"{case}: a layer that merges is a StatefulLayer"
    return layer


def _learned(case: LayerCase, parts: Sequence[tuple[np.ndarray, ...]]) -> StatefulLayer:
    """A fresh copy of the case's layer after ``partial_fit`` on each part in order."""
    layer = _learner(case)
    layer.reset()
    for part in parts:
        layer.partial_fit(*part)
    return layer


def _assert_identity(case: LayerCase, layer: StatefulLayer, state: Mapping[str, Any], exact: bool) -> None:
    empty = _learner(case).get_state()
    for merged, order in (
        (lambda: layer.merge_states(state, empty), "after"),
        (lambda: layer.merge_states(empty, state), "before"),
    ):
        try:
            found = merged()
        except MegatronError:  # a layer may refuse the state of a copy that learned nothing
            continue
        _same_state(case, found, state, exact, f"merging the state of a copy that learned nothing {order} it")


def _same_state(case: LayerCase, got: Any, want: Any, exact: bool, what: str) -> None:
    floats = [a.dtype for a in case.inputs if a.dtype.kind in "fc"]
    found = state_difference(got, want, exact, rtol=max((rounding(d) for d in floats), default=0.0))
    assert found is None, f"{case}: {what}: {found}"


def _same_outputs(case: LayerCase, got: StatefulLayer, want: StatefulLayer, exact: bool, what: str) -> None:
    features = case.inputs[: len(case.inputs) - got.n_targets(len(case.inputs))]
    computed, expected = got.transform(*features), want.transform(*features)
    for i, (a, b) in enumerate(zip(_as_tuple(computed), _as_tuple(expected))):
        assert a.dtype == b.dtype and a.shape == b.shape, (
            f"{case}: {what}: output {i} {a.dtype}{a.shape}, not {b.dtype}{b.shape}"
        )
        if exact or a.dtype.kind not in "fc":
            np.testing.assert_array_equal(a, b, err_msg=f"{case}: {what}: output {i}")
        else:
            np.testing.assert_allclose(
                a, b, rtol=case.rtol, atol=case.atol, err_msg=f"{case}: {what}: output {i}"
            )


def _as_tuple(value: Any) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(v) for v in value) if isinstance(value, tuple) else (np.asarray(value),)


def layer_checks() -> list[Callable[[LayerCase], None]]:
    """Every layer check, for ``pytest.mark.parametrize``."""
    from megatron.testing.inverting import check_inverse_transform

    return [
        check_fit_and_transform,
        check_inputs_not_mutated,
        check_output_matches_spec,
        check_batches_concatenate,
        check_partial_fit_matches_fit,
        check_bad_input_names_the_layer,
        check_empty_batch,
        check_save_and_reload,
        check_merge_matches_partial_fit,
        check_inverse_transform,
    ]
