"""A staged fit on dask equals ``fit_generator`` over the same partitions as batches: merges of
exact states (minima, maxima, counts) and folds bit for bit, merged moments up to rounding; each
partition learns on its own copy; a layer that cannot learn batch by batch is refused before
any task runs; folds read at most ``prefetch`` partitions ahead; errors on workers name the
node and layer."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any, ClassVar

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
import megatron.progress
import megatron_dask as md
from megatron import layers
from megatron.errors import (
    ConfigError,
    DataError,
    IncrementalFitError,
    LayerError,
    LayerInputError,
    MegatronError,
)
from megatron.layers import StatefulLayer
from megatron.nodes import Input
from megatron.testing.states import state_difference

pytest.importorskip(
    "megatron_sklearn", reason="needs megatron_sklearn: pip install -e packages/megatron-sklearn"
)

from sklearn.decomposition import PCA
from sklearn.linear_model import SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler

from megatron_sklearn import Sklearn

COLUMNS = ["x0", "x1", "x2"]


def data_frame(n: int = 1800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(3.0, 2.0, size=(n, 3)), columns=COLUMNS)
    frame["cat"] = rng.integers(0, 6, n)
    frame["y"] = (frame["x0"] + rng.normal(size=n) > 3).astype("int64") + (frame["x1"] > 4)
    frame.index = np.arange(n) * 3 + 10
    return frame


def two_stages(name: str = "staged") -> megatron.Pipeline:
    """Stage 1: Whiten (moments, merged) and OneHotRange (min/max, merged). Stage 2, on the
    whitened values shifted: MinMaxScale and StandardScaler, GaussianNB (merged), SGD (a fold)."""
    x, cat, y = Input("x", (3,), columns=COLUMNS), Input("cat", dtype="int64"), Input("y", dtype="int64")
    white = layers.Whiten()(layers.Lambda(lambda v: np.log1p(np.abs(v)) * np.sign(v))(x), "white")
    # off centre: a mean of exactly centred values is rounding noise, which no tolerance relative
    # to the mean itself can compare
    white = layers.Lambda(lambda v: v + np.array([5.0, -3.0, 1.0]))(white, "shifted")
    outputs = [
        layers.MinMaxScale()(white, "minmax"),
        Sklearn(StandardScaler())(white, "standard"),
        Sklearn(GaussianNB())([white, y], "nb"),
        Sklearn(SGDClassifier(random_state=0))([white, y], "sgd"),
        layers.OneHotRange()(cat, "onehot"),
    ]
    return megatron.Pipeline([x, cat, y], outputs, name=name)


def batches_of(ddf: dd.DataFrame) -> list[pd.DataFrame]:
    """The partitions, computed, as fit_generator's batches (empty ones left out)."""
    parts = [ddf.get_partition(i).compute() for i in range(ddf.npartitions)]
    return [part for part in parts if len(part)]


def learned(state: Mapping[str, Any]) -> dict[str, Any]:
    """A state with a scikit-learn estimator as its learned attributes (trailing ``_``)."""
    state = dict(state)
    if "estimator" in state:
        attributes = vars(state.pop("estimator")).items()
        state["estimator"] = {k: v for k, v in attributes if k.endswith("_") and not k.startswith("_")}
    return state


def assert_same_state(layer: StatefulLayer, reference: StatefulLayer, exact: bool) -> None:
    difference = state_difference(
        learned(layer.get_state()), learned(reference.get_state()), exact=exact, where=layer.name
    )
    assert difference is None, difference


def exact_kind(layer: StatefulLayer) -> bool:
    """Exact merges and folds (fed the same inputs) are bit for bit; the others up to rounding."""
    return layer.merge_exactness() != "rounding"


def assert_fitted_alike(ours: megatron.Pipeline, local: megatron.Pipeline) -> None:
    """Every layer's state as the local one's (which learned from the same upstream values)."""
    for layer, reference in zip(ours.layers, local.layers):
        if layer.stateful:
            assert_same_state(layer, reference, exact_kind(layer))


def assert_stages_learned_as_partial_fits(ours: megatron.Pipeline, batches: list[Any]) -> None:
    """Each stage of ``ours`` as partial fits over ``batches`` of a copy of it whose earlier
    stages are ours: a merge of moments upstream rounds otherwise than partial_fit's updates, so
    a layer downstream is compared on the same inputs, stage by stage."""
    for k, stage in enumerate(ours.stages()):
        reference = copy.deepcopy(ours)
        theirs = reference.stages()[k]
        for layer in theirs:
            layer.reset()
        for batch in batches:
            for layer, arguments in zip(theirs, reference.stage_inputs(k, batch)):
                layer.partial_fit(*arguments)
        for layer, mine in zip(theirs, stage):
            assert_same_state(mine, layer, exact_kind(mine))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return data_frame()


@pytest.mark.parametrize("entry", ["megatron_dask.fit", "Pipeline.fit"])
def test_a_staged_fit_equals_fit_generator_over_the_partitions(frame, entry):
    ddf = dd.from_pandas(frame, npartitions=6)
    local = two_stages().fit_generator(batches_of(ddf))
    pipeline = two_stages()
    fitted = md.fit(pipeline, ddf) if entry == "megatron_dask.fit" else pipeline.fit(ddf)
    assert fitted is pipeline
    # six partitions merged by one task: Whiten's merges are partial_fit's own updates, so the
    # layers downstream of it learn from bit-identical inputs
    assert_fitted_alike(pipeline, local)
    assert_stages_learned_as_partial_fits(pipeline, batches_of(ddf))
    ours, theirs = pipeline.transform(frame), local.transform(frame)
    for name in pipeline.output_names:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_merges_in_a_tree_and_dask_arrays_persisted_give_the_same_fit(frame):
    ddf = dd.from_pandas(frame, npartitions=9)
    tree = md.fit(two_stages(), ddf, split_every=2)  # four levels of merges
    assert_stages_learned_as_partial_fits(tree, batches_of(ddf))
    rows = tuple(len(part) for part in batches_of(ddf))  # the same partitions as arrays
    arrays = {
        "x": da.from_array(frame[COLUMNS].to_numpy(), chunks=(rows, 3)),
        "cat": da.from_array(frame["cat"].to_numpy(), chunks=rows),
        "y": frame["y"].to_numpy(),  # a numpy array among dask arrays is cut the same way
    }
    from_arrays = md.fit(two_stages(), arrays, split_every=2, persist=True)
    bounds = np.cumsum([0, *rows])
    blocks = [
        {
            "x": frame[COLUMNS].to_numpy()[start:stop],
            **{name: frame[name].to_numpy()[start:stop] for name in ("cat", "y")},
        }
        for start, stop in itertools.pairwise(bounds)
    ]
    assert_stages_learned_as_partial_fits(from_arrays, blocks)


partition_sizes = st.lists(st.integers(0, 25), min_size=1, max_size=7).filter(any)


@settings(max_examples=15, deadline=None)
@given(partition_sizes, st.integers(2, 4), st.integers(0, 2**16))
def test_merged_states_equal_partial_fits_whatever_the_partitions(sizes, split_every, seed):
    """Any partition sizes (empty ones included) and tree shapes: merged states equal local
    partial fits over the non-empty partitions. 15 examples, about 2 s."""
    frame = data_frame(sum(sizes), seed)
    bounds = np.cumsum([0, *sizes])
    parts = [frame.iloc[start:stop] for start, stop in itertools.pairwise(bounds)]
    ddf = dd.from_delayed([dask.delayed(part) for part in parts], meta=frame.iloc[:0], verify_meta=False)

    def merging() -> megatron.Pipeline:
        x, cat = Input("x", (3,), columns=COLUMNS), Input("cat", dtype="int64")
        white = layers.Whiten()(x, "white")
        scaled = layers.MinMaxScale()(white, "scaled")
        return megatron.Pipeline([x, cat], [scaled, layers.OneHotRange()(cat, "onehot")], name="merging")

    fitted = md.fit(merging(), ddf, split_every=split_every)
    assert_stages_learned_as_partial_fits(fitted, [part for part in parts if len(part)])


class Tally(StatefulLayer):
    """Counts rows and keeps maxima, recording each partial_fit: the instance and what it held."""

    fits: ClassVar[list[tuple[int, dict[str, Any]]]] = []

    def partial_fit(self, X: np.ndarray) -> None:
        Tally.fits.append((id(self), dict(self.metadata)))
        held = self.metadata
        held["n"] = held.get("n", 0) + len(X)
        held["max"] = X.max(axis=0) if "max" not in held else np.maximum(held["max"], X.max(axis=0))

    def merge_exactness(self) -> str:
        return "exact"

    def merge_states(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        return {"n": a["n"] + b["n"], "max": np.maximum(a["max"], b["max"])}

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X / self.metadata["max"]


def test_each_partition_learns_on_a_fresh_copy_and_the_shipped_layer_is_untouched(frame):
    x = Input("x", (3,), columns=COLUMNS)
    tally = Tally()
    pipeline = megatron.Pipeline(x, tally(x, "tallied"), name="tally")
    pipeline.fit(frame.iloc[:5])  # the layer holds a state before: no copy may start from it
    Tally.fits.clear()
    with dask.config.set(scheduler="threads", num_workers=4):  # tasks share the pipeline object
        md.fit(pipeline, dd.from_pandas(frame, npartitions=12))
    assert len(Tally.fits) == 12
    assert id(tally) not in {instance for instance, _ in Tally.fits}
    assert all(held == {} for _, held in Tally.fits)  # each copy was reset before it learned
    assert tally.metadata["n"] == len(frame)
    np.testing.assert_array_equal(tally.metadata["max"], frame[COLUMNS].to_numpy().max(axis=0))


def test_a_layer_that_cannot_learn_batch_by_batch_is_refused_before_any_task_runs(frame):
    x = Input("x", (3,), columns=COLUMNS)
    reduced = Sklearn(PCA(n_components=1))(layers.Whiten()(x), "reduced")
    pipeline = megatron.Pipeline(x, reduced, name="pca")
    started = []
    with (
        dask.callbacks.Callback(pretask=lambda key, dsk, state: started.append(key)),
        pytest.raises(
            IncrementalFitError, match=r"layer 'sklearn' \(Sklearn\) at node 'reduced' has no partial_fit"
        ),
    ):
        md.fit(pipeline, dd.from_pandas(frame, npartitions=3), persist=True)
    assert started == []


class Fold(StatefulLayer):
    """Learns only by partial_fit (no merge): a running sum, noting when it learns."""

    events: ClassVar[list[str]] = []

    def partial_fit(self, X: np.ndarray) -> None:
        Fold.events.append("fit")
        self.metadata["sum"] = self.metadata.get("sum", 0.0) + X.sum()

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X - self.metadata["sum"]


def noted(v: np.ndarray) -> np.ndarray:
    Fold.events.append("computed")
    return v * 1.0


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_a_fold_computes_at_most_prefetch_partitions_ahead(frame, scheduler):
    x = Input("x", (3,), columns=COLUMNS)
    pipeline = megatron.Pipeline(x, Fold()(layers.Lambda(noted)(x), "folded"), name="fold")
    Fold.events.clear()
    with dask.config.set(scheduler=scheduler, num_workers=4):
        md.fit(pipeline, dd.from_pandas(frame, npartitions=10), prefetch=3)
    ahead = np.cumsum([1 if event == "computed" else -1 for event in Fold.events])
    assert Fold.events.count("fit") == 10 and ahead.max() == 3
    parts = batches_of(dd.from_pandas(frame, npartitions=10))
    assert pipeline.layers[-1].metadata["sum"] == sum(float(part[COLUMNS].to_numpy().sum()) for part in parts)


def test_epochs_repeat_folds_and_shuffled_order_follows_the_seed(frame):
    ddf = dd.from_pandas(frame, npartitions=5)
    batches = batches_of(ddf)
    local = two_stages().fit_generator(batches, epochs=3)
    in_order = md.fit(two_stages(), ddf, epochs=3)
    assert_fitted_alike(in_order, local)  # SGD three passes, the other layers one
    assert in_order.stages()[0][0].metadata["n"] == len(frame)

    shuffled = md.fit(two_stages(), ddf, order="shuffled", seed=7, epochs=3)
    reference = copy.deepcopy(shuffled)  # the same merged upstream; SGD refitted by hand
    k, i = next(
        (k, i)
        for k, stage in enumerate(reference.stages())
        for i, layer in enumerate(stage)
        if not layer.supports_merge()
    )
    sgd = reference.stages()[k][i]
    sgd.reset()
    rng = np.random.default_rng(7)
    for _ in range(3):  # a new order for each pass
        for p in rng.permutation(len(batches)):
            sgd.partial_fit(*reference.stage_inputs(k, batches[p])[i])
    assert_same_state(shuffled.stages()[k][i], sgd, exact=True)
    assert state_difference(
        learned(shuffled.stages()[k][i].get_state()), learned(in_order.stages()[k][i].get_state())
    )


def test_options_are_checked(frame):
    ddf = dd.from_pandas(frame, npartitions=2)
    for bad in (1, 0, 2.5, True):  # worded alike whatever the value
        with pytest.raises(
            ConfigError, match=r"split_every is how many values one task combines, an integer"
        ):
            md.fit(two_stages(), ddf, split_every=bad)
    with pytest.raises(ConfigError, match="seed shuffles the partitions, and order='partitions' does not"):
        md.fit(two_stages(), ddf, seed=3)  # it was ignored
    with pytest.raises(ConfigError, match="Did you mean 'shuffled'"):
        md.fit(two_stages(), ddf, order="shufled")
    with pytest.raises(ConfigError, match="prefetch must be a positive integer; got 0"):
        md.fit(two_stages(), ddf, prefetch=0)
    with pytest.raises(DataError, match="holds no dask collection"):
        md.fit(two_stages(), {"x": np.zeros((3, 3))})
    empty = dd.from_pandas(frame.iloc[:0], npartitions=1)
    with pytest.raises(DataError, match="had no rows to learn from in any of the 1 partitions"):
        md.fit(two_stages(), empty)


def test_a_layer_error_in_a_task_names_the_node_and_the_layer(frame):
    x, y = Input("x", (3,), columns=COLUMNS), Input("y", dtype="int64")
    nb = Sklearn(GaussianNB())([layers.Whiten()(x), y], "nb")
    pipeline = megatron.Pipeline([x, y], nb, name="classes")
    skewed = frame.assign(y=np.where(np.arange(len(frame)) < 900, frame["y"].clip(0, 1), frame["y"]))
    # the first partition never sees class 2, so its copy cannot take the others' in a merge
    with pytest.raises(
        LayerInputError, match=r"layer 'sklearn' \(Sklearn\) at node 'nb' failed in merge_states"
    ):
        md.fit(pipeline, dd.from_pandas(skewed, npartitions=2))


def test_on_a_cluster_pipeline_fit_equals_fit_generator_and_worker_errors_reach_the_client(client, frame):
    ddf = dd.from_pandas(frame, npartitions=4).persist()
    local = two_stages().fit_generator(batches_of(ddf))
    pipeline = two_stages()
    assert pipeline.fit(ddf) is pipeline
    assert_fitted_alike(pipeline, local)

    x = Input("x", (3,), columns=COLUMNS)
    roots = layers.Lambda(lambda v: np.sqrt(v))(x, "roots")  # NaN for a negative value
    refusing = megatron.Pipeline(x, layers.Whiten()(roots, "white"), name="refusing")
    negative = dd.from_pandas(frame.assign(x1=-1.0), npartitions=2)
    with pytest.raises(
        MegatronError, match=r"layer 'whiten' \(Whiten\) at node 'white' failed in partial_fit"
    ):
        md.fit(refusing, negative)  # in the task fitting a copy of Whiten
    bad = layers.Lambda(lambda v: v.reshape(len(v), 2))(x, "bad")
    failing = megatron.Pipeline(x, layers.Whiten()(bad, "white"), name="failing")
    with pytest.raises(
        LayerError, match=r"layer 'lambda(_\d+)?' \(Lambda\) at node 'bad' failed in transform"
    ):
        md.fit(failing, ddf)  # in the task computing the stage inputs


class Streamed(StatefulLayer):
    """Runs its own loop over a stream (as Keras does): notes each pass's batch sizes and
    whether progress is on, and learns the mean."""

    iterative = True
    passes: ClassVar[list[list[int]]] = []
    progress: ClassVar[list[bool]] = []

    def fit_batches(self, batches, epochs, steps=None):
        total, rows = 0.0, 0
        for _ in range(epochs):
            sizes = []
            for (X,) in batches():
                sizes.append(len(X))
                total, rows = total + X.sum(), rows + len(X)
            Streamed.passes.append(sizes)
        Streamed.progress.append(megatron.progress.enabled())
        self.metadata["mean"] = total / rows

    def transform(self, X):
        return X - self.metadata["mean"]


@pytest.mark.parametrize("progress", [True, False])
def test_a_layer_with_its_own_loop_gets_a_stream_of_partitions_and_the_progress_switch(frame, progress):
    x = Input("x", (3,), columns=COLUMNS)
    pipeline = megatron.Pipeline(x, Streamed()(layers.Whiten()(x), "streamed"), name="streamed")
    Streamed.passes.clear()
    Streamed.progress.clear()
    sizes = [700, 0, 500, 600]  # an empty partition is left out of the stream
    bounds = np.cumsum([0, *sizes])
    parts = [frame.iloc[start:stop] for start, stop in itertools.pairwise(bounds)]
    ddf = dd.from_delayed([dask.delayed(part) for part in parts], meta=frame.iloc[:0], verify_meta=False)
    if progress:
        pipeline.fit(ddf, progress=True)
    else:
        md.fit(pipeline, ddf, epochs=2, progress=False)
    assert Streamed.passes == [[700, 500, 600]] * (1 if progress else 2)
    assert Streamed.progress == [progress]


def test_a_keras_model_learns_through_fit_batches_from_the_partitions(frame):
    keras = pytest.importorskip("keras", reason="needs keras: pip install -e packages/megatron-keras")
    pytest.importorskip(
        "megatron_keras", reason="needs megatron_keras: pip install -e packages/megatron-keras"
    )

    def with_model() -> megatron.Pipeline:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(4, activation="relu")(inputs)))
        model.compile(optimizer="sgd", loss="mse")
        x, target = Input("x", (3,), columns=COLUMNS), Input("target", (1,), columns=["x2"])
        white = layers.Whiten()(x, "white")
        return megatron.Pipeline([x, target], layers.Keras(model)([white, target], "pred"), name="keras")

    ddf = dd.from_pandas(frame, npartitions=3)
    local = with_model().fit_generator(batches_of(ddf), epochs=2, progress=False)
    pipeline = md.fit(with_model(), ddf, epochs=2, progress=False)
    model, reference = pipeline.layers[-1].model, local.layers[-1].model
    for ours, theirs in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        pipeline.transform(frame.iloc[:20])["pred"], local.transform(frame.iloc[:20])["pred"], rtol=1e-5
    )
