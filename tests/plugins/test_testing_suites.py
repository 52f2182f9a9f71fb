"""megatron.testing catches what a third party can get wrong: a hyperparameter not kept as
given, state that cannot be saved, a source that yields plain dicts or miscounts its
batches, a layer that raises bare errors or broadcasts a fitted statistic; and it points its
suites at a plugin's own classes."""

import re
import subprocess
import sys
from functools import partial

import numpy as np
import pytest

from megatron import layers, metrics
from megatron.io import Batch, BatchSource, MemoryStorage
from megatron.layers import StatefulLayer, StatelessLayer
from megatron.metrics import Metric
from megatron.testing import (
    LayerCase,
    MetricCase,
    layer_checks,
    layer_properties,
    metric_checks,
    source_case,
    source_checks,
    storage_case,
    storage_checks,
)
from megatron.testing.layers import check_save_and_reload
from megatron.testing.metrics import check_save_and_reload as check_metric_save_and_reload
from megatron.testing.sources import check_length, check_yields_batches

rng = np.random.default_rng(3)
DATA = rng.normal(size=(30, 3))


class Scale(StatelessLayer):
    """Multiply by ``factor``: a hyperparameter kept as the attribute of the same name."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def transform(self, X):
        return X * self.factor


class ChangedFactor(StatelessLayer):
    """The same, keeping not the argument but something made of it: a copy built from its
    configuration is another layer."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor * 2

    def transform(self, X):
        return X * self.factor


class SetState(StatefulLayer):
    """Learns a set, which a pipeline file cannot hold."""

    def fit(self, X):
        self.metadata["seen"] = set(np.round(X[:, 0]).tolist())

    def transform(self, X):
        return X


class Threshold(Metric):
    """The share of predictions above ``level``."""

    def __init__(self, level: float = 0.0) -> None:
        self.level = level

    def initial_state(self):
        return (0, 0)

    def update(self, state, y, p):
        return state[0] + int((p > self.level).sum()), state[1] + len(p)

    def result(self, state):
        return state[0] / state[1]


class ChangedThreshold(Threshold):
    def __init__(self, level: float = 0.0) -> None:
        self.level = level + 1


def test_the_round_trip_check_passes_a_layer_that_keeps_its_contract():
    check_save_and_reload(LayerCase(lambda: Scale(2.5), (DATA,), name="Scale"))


def test_the_round_trip_check_catches_a_hyperparameter_not_kept_as_given():
    with pytest.raises(AssertionError, match="after saving and loading back"):
        check_save_and_reload(LayerCase(lambda: ChangedFactor(2.5), (DATA,), name="ChangedFactor"))


def test_the_round_trip_check_catches_state_that_cannot_be_saved():
    with pytest.raises(AssertionError, match="does not save and load back: Cannot save the fitted state"):
        check_save_and_reload(LayerCase(SetState, (DATA,), name="SetState"))


def test_the_metric_round_trip_check_catches_a_parameter_not_kept_as_given():
    y, p = rng.normal(size=40), rng.normal(size=40)
    check_metric_save_and_reload(MetricCase(lambda: Threshold(0.5), (y, p), name="Threshold"))
    with pytest.raises(AssertionError, match="after saving and loading back"):
        check_metric_save_and_reload(
            MetricCase(lambda: ChangedThreshold(-0.5), (y, p), name="ChangedThreshold")
        )


def test_functions_among_the_hyperparameters_are_bound_for_loading():
    for check in layer_checks():
        check(LayerCase(lambda: layers.Lambda(lambda x: x * 3), (DATA,), name="lambda"))
    for check in metric_checks():
        check(MetricCase(lambda: metrics.Metric(lambda y, p: float(np.max(p))), (DATA[:, 0], DATA[:, 1])))


class Chunks(BatchSource):
    """Arrays in batches, keyed by position: a source as the contract asks."""

    def __init__(self, arrays, batch_size, repeat=False):
        super().__init__(batch_size, repeat)
        self.arrays = arrays

    def __len__(self):
        return -(-len(next(iter(self.arrays.values()))) // self.batch_size)

    def one_pass(self):
        n = len(next(iter(self.arrays.values())))
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            yield Batch({k: v[start:stop] for k, v in self.arrays.items()}, np.arange(start, stop))


class PlainDicts(Chunks):
    def one_pass(self):
        for batch in super().one_pass():
            yield dict(batch)


class Miscounted(Chunks):
    def __len__(self):
        return 1


COLUMNS = {"x": np.arange(23.0), "label": np.arange(23) % 3}


@pytest.mark.parametrize("check", source_checks(), ids=lambda c: c.__name__)
def test_a_source_class_passes_the_suite_through_source_case(check):
    check(source_case(Chunks, COLUMNS, expected=COLUMNS, batch_size=5))


def test_the_source_suite_catches_plain_dicts_and_a_wrong_length():
    with pytest.raises(AssertionError, match=r"batch 0 is a builtins.dict, not a megatron.io.Batch"):
        check_yields_batches(source_case(PlainDicts, COLUMNS, expected=COLUMNS, batch_size=5))
    with pytest.raises(AssertionError, match="len\\(\\) says 1 batches"):
        check_length(source_case(Miscounted, COLUMNS, expected=COLUMNS, batch_size=5))


@pytest.mark.parametrize("check", storage_checks(), ids=lambda c: c.__name__)
def test_storage_case_points_the_suite_at_a_url(check):
    check(storage_case("memory://", persistent=False))


def test_storage_case_points_the_suite_at_a_class():
    from megatron.testing.storage import check_round_trip, check_upsert_and_delete

    for check in (check_round_trip, check_upsert_and_delete):
        check(storage_case(MemoryStorage, "memory://", persistent=False))


BUILT_IN = [
    LayerCase(partial(layers.ScalarMultiply, 2.0), (DATA,), name="ScalarMultiply"),
    LayerCase(layers.Add, (DATA, DATA), name="Add"),
    LayerCase(layers.Normalize, (np.abs(DATA) + 0.1,), name="Normalize"),
    LayerCase(partial(layers.Clip, -1, 1), (DATA,), name="Clip"),
    LayerCase(layers.Concatenate, (DATA, DATA[:, 0]), name="Concatenate"),
    LayerCase(layers.OneHotRange, (rng.integers(0, 4, 30),), name="OneHotRange"),
    LayerCase(partial(layers.Cast, "float32"), (DATA,), name="Cast"),
    LayerCase(layers.Flatten, (rng.random((30, 2, 3)),), name="Flatten"),
    LayerCase(partial(layers.TimeSeries, 3), (DATA,), name="TimeSeries"),
    LayerCase(layers.Lowercase, (np.array(["A b", "C"] * 15),), name="Lowercase"),
    LayerCase(partial(layers.Lambda, np.sqrt), (np.abs(DATA),), name="Lambda", user_code=True),
    LayerCase(partial(layers.Filter, lambda x: x[:, 0] > 0), (DATA,), name="Filter", user_code=True),
    LayerCase(layers.Whiten, (DATA,), name="Whiten"),
    LayerCase(layers.MinMaxScale, (DATA,), name="MinMaxScale"),
    LayerCase(partial(layers.SimpleImpute, "mean"), (np.where(DATA > 1, np.nan, DATA),), name="SimpleImpute"),
]
PROPERTY_CASES = [
    pytest.param(check, case, id=f"{case}-{check.__name__}")
    for case in BUILT_IN
    for check in layer_properties()
]


@pytest.mark.parametrize(("check", "case"), PROPERTY_CASES)
def test_built_in_layers_on_generated_batches(check, case):
    """15 examples per case and check, derandomized: about 4 s in all."""
    check(case, examples=15)


class Mutates(StatelessLayer):
    def transform(self, X):
        X[:1] = 0  # a pipeline hands a layer read-only arrays
        return X


class BareErrors(StatelessLayer):
    def transform(self, X):
        return X / X.sum(axis=1, keepdims=True)


class CountsBatches(StatefulLayer):
    def partial_fit(self, X):
        self.metadata["n"] = self.metadata.get("n", 0) + 1

    def transform(self, X):
        return np.full(len(X), float(self.metadata["n"]))


@pytest.mark.parametrize(
    ("layer", "pattern"),
    [
        (Mutates, "Mutates: an input changed"),
        (BareErrors, "raised .*Error, not a LayerInputError"),
        (CountsBatches, "fit_generator over cuts"),
    ],
)
def test_the_properties_catch_a_layer_that_breaks_the_contract(layer, pattern):
    case = LayerCase(layer, (DATA,), name=layer.__name__)
    failures = []
    for check in layer_properties():
        try:
            check(case, examples=15)
        except Exception as exc:  # hypothesis may group several failures
            failures += [str(e) for e in getattr(exc, "exceptions", [exc])]
    assert any(re.search(pattern, f) for f in failures), failures


def test_importing_megatron_testing_needs_neither_hypothesis_nor_pytest():
    code = "import sys, megatron.testing; print(sorted({'hypothesis', 'pytest'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
