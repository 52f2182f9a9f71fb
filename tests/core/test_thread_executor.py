"""The thread executor: independent steps of one batch at once, with the local executor's
results, fitted states, freed values and errors."""

from __future__ import annotations

import os
import pickle
import threading
import time
import weakref

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import ConfigError, LayerError, LayerInputError
from megatron.execution import LocalExecutor, compile_plan, resolve_executor
from megatron.execution.threads import ThreadExecutor, dependencies
from megatron.layers import Lambda, StatefulLayer, StatelessLayer
from megatron.metrics import MeanSquaredError
from megatron.nodes import Input
from megatron.progress import enabled

WAIT = 10.0  # seconds a step waits for another before the test fails instead of hanging


class Halves(StatelessLayer):
    """Two outputs: the first feature and the others."""

    n_outputs = 2

    def transform(self, X):
        return X[:, :1].copy(), X[:, 1:].copy()


class Offset(StatefulLayer):
    """Learns the mean of ``y - X.sum(axis=1)`` from features and a target, in batches."""

    def n_targets(self, n_inputs):
        return 1

    def partial_fit(self, X, y):
        self.metadata["total"] = self.metadata.get("total", 0.0) + float((y - X.sum(axis=1)).sum())
        self.metadata["count"] = self.metadata.get("count", 0) + len(y)

    def transform(self, X):
        return X.sum(axis=1) + self.metadata["total"] / self.metadata["count"]


def rich_graph(executor):
    """Several branches, a row filter, a shared stateful layer, a multi-output layer, a target
    and a metric: a fresh pipeline each time."""
    x, z, y = Input("x", (3,)), Input("z", (3,)), Input("y")
    kx, kz, ky = layers.Filter(lambda a, b, t: t > -0.5)([x, z, y], ["kx", "kz", "ky"])
    scale = layers.MinMaxScale()
    total = layers.Add()([layers.Whiten()(kx), scale(kx), scale(kz)], "total")
    first, rest = Halves()(total, ["first", "rest"])
    both = layers.Add()([layers.ScalarMultiply(2.0)(first), layers.Clip(-1.0, 1.0)(first)], "both")
    pred = Offset()([rest, ky], "pred")
    mse = MeanSquaredError()([ky, pred], "mse")
    return megatron.Pipeline([x, z, y], [total, both, pred], name="rich", metrics=[mse], executor=executor)


def batch(seed, n=200):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 3)), "z": rng.normal(size=(n, 3)), "y": rng.normal(size=n)}


def assert_same_outputs(a, b):
    assert list(a) == list(b)
    np.testing.assert_array_equal(a.index, b.index)
    for name in a:
        assert a[name].dtype == b[name].dtype
        np.testing.assert_array_equal(a[name], b[name])


def assert_same_states(one, other):
    for a, b in zip(one.layers, other.layers):
        assert type(a) is type(b)
        if a.stateful:
            assert a.fitted == b.fitted
            assert sorted(a.metadata) == sorted(b.metadata)
            for key in a.metadata:
                np.testing.assert_array_equal(a.metadata[key], b.metadata[key])


def pair():
    return rich_graph("local"), rich_graph(ThreadExecutor(max_workers=4))


def test_fit_transform_and_evaluate_give_the_local_executors_results():
    local, threads = pair()
    local.fit(batch(0))
    threads.fit(batch(0))
    assert_same_states(local, threads)
    assert_same_outputs(local.transform(batch(1)), threads.transform(batch(1)))
    assert local.evaluate(batch(2)) == threads.evaluate(batch(2))


def test_partial_fit_and_fit_generator_give_the_local_executors_states():
    local, threads = pair()
    for seed in range(3):
        local.partial_fit(batch(seed))
        threads.partial_fit(batch(seed))
    assert_same_states(local, threads)
    assert_same_outputs(local.transform(batch(5)), threads.transform(batch(5)))
    batches = [batch(seed, 50) for seed in range(4)]
    local.fit_generator(batches, progress=False)
    threads.fit_generator(batches, progress=False)
    assert_same_states(local, threads)
    assert_same_outputs(local.transform(batch(6)), threads.transform(batch(6)))
    assert local.evaluate_generator(batches, progress=False) == threads.evaluate_generator(
        batches, progress=False
    )


def test_the_executor_is_registered_by_name():
    pipeline = rich_graph("threads")
    assert isinstance(resolve_executor("threads"), ThreadExecutor)
    pipeline.fit(batch(0))
    local = rich_graph(None).fit(batch(0))
    assert_same_outputs(local.transform(batch(1)), pipeline.transform(batch(1)))


def test_max_workers_must_be_a_positive_integer():
    for wrong in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="max_workers must be a positive integer"):
            ThreadExecutor(max_workers=wrong)
    assert ThreadExecutor(max_workers=3).workers == 3
    assert 1 <= ThreadExecutor().workers <= (os.cpu_count() or 1)


class Meet(StatelessLayer):
    """Waits at a barrier: only steps that run at the same time get through."""

    def __init__(self, barrier):
        self.barrier = barrier

    def transform(self, X):
        self.barrier.wait(WAIT)
        return X + 1


def test_independent_branches_run_at_the_same_time():
    barrier = threading.Barrier(2)
    x = Input("x")
    out = layers.Add()([Meet(barrier)(x), Meet(barrier)(x)], "out")
    pipeline = megatron.Pipeline(x, out, name="meet", executor=ThreadExecutor(max_workers=2))
    # the local executor would wait at the barrier alone and fail (BrokenBarrierError)
    np.testing.assert_array_equal(pipeline.transform({"x": np.ones(3)})["out"], [4.0, 4.0, 4.0])


def test_a_chain_runs_in_the_calling_thread_without_a_pool():
    seen = set()
    x = Input("x")
    node = x
    for _ in range(5):
        node = Lambda(lambda v: seen.add(threading.get_ident()) or v + 1)(node)
    executor = ThreadExecutor(max_workers=4)
    pipeline = megatron.Pipeline(x, Lambda(lambda v: v)(node, "out"), name="chain", executor=executor)
    np.testing.assert_array_equal(pipeline.transform({"x": np.zeros(2)})["out"], [5.0, 5.0])
    assert seen == {threading.get_ident()}
    assert executor._pool is None


def test_one_worker_runs_everything_in_the_calling_thread():
    seen = set()
    x = Input("x")
    branches = [Lambda(lambda v, k=k: seen.add(threading.get_ident()) or v + k)(x) for k in range(3)]
    executor = ThreadExecutor(max_workers=1)
    pipeline = megatron.Pipeline(x, layers.Add()(branches, "out"), name="one", executor=executor)
    np.testing.assert_array_equal(pipeline.transform({"x": np.zeros(2)})["out"], [3.0, 3.0])
    assert seen == {threading.get_ident()} and executor._pool is None


class SlowFit(StatefulLayer):
    """Fits slowly, so a transform that did not wait for the fit would find no state."""

    def partial_fit(self, X):
        time.sleep(0.2)
        self.metadata["mean"] = X.mean()

    def transform(self, X):
        return X - self.metadata["mean"]


def shared_slow_fit(executor):
    x, z = Input("x"), Input("z")
    slow = SlowFit()
    downstream = layers.Whiten()(layers.Add()([slow(x), slow(z)]), "out")
    return megatron.Pipeline([x, z], downstream, name="slow", executor=executor)


def test_the_calls_of_a_layer_transform_only_after_its_fit():
    data = {"x": np.arange(4.0), "z": np.arange(4.0) * 2}
    local = shared_slow_fit(None).fit(data)
    threads = shared_slow_fit(ThreadExecutor(max_workers=4)).fit(data)
    assert_same_states(local, threads)
    threads = shared_slow_fit(ThreadExecutor(max_workers=4))
    threads.partial_fit(data)
    assert_same_states(local, threads)


def test_a_transform_step_depends_on_the_fit_step_of_its_layer():
    pipeline = shared_slow_fit(None)
    fitting = [call for call in pipeline.graph.calls if call.layer.stateful]
    plan = compile_plan((), fit=fitting)
    depends = dependencies(plan.steps)
    fit = next(i for i, step in enumerate(plan.steps) if step.mode == "fit")
    for i, step in enumerate(plan.steps):
        if step.call.layer is plan.steps[fit].call.layer and step.mode == "transform":
            assert fit in depends[i]


def test_a_value_is_freed_once_every_step_reading_it_has_finished():
    """A value two branches read is kept until both have run, though the one last in plan order
    runs first, then freed before the run ends, as the local executor frees it."""
    made, alive = [], []

    class Make(StatelessLayer):
        def transform(self, X):
            made.append(weakref.ref(out := X * 2))
            return out

    class Check(StatelessLayer):
        def transform(self, *inputs):
            alive.append(made[-1]() is not None)
            return sum(inputs)

    for executor in (LocalExecutor(), ThreadExecutor(max_workers=2)):
        x = Input("x")
        slow = Lambda(lambda v: time.sleep(0.2) or v)(x)
        shared = Make()(x)
        late = layers.Add()([slow, shared])  # reads the shared value after the slow step
        quick = Lambda(lambda v: v - 1)(shared)  # the last reader in plan order, done first
        pipeline = megatron.Pipeline(x, Check()([late, quick], "out"), name="frees", executor=executor)
        np.testing.assert_array_equal(pipeline.transform({"x": np.ones(3)})["out"], [4.0] * 3)
    assert alive == [False, False]


class Fail(StatelessLayer):
    def __init__(self, message, delay=0.0, started=None):
        self.message, self.delay, self.started = message, delay, started

    def transform(self, X):
        if self.started is not None:
            self.started.wait(WAIT)
        time.sleep(self.delay)
        raise ValueError(self.message)


def raised(pipeline, data):
    with pytest.raises(Exception) as caught:
        pipeline.transform(data)
    return type(caught.value), str(caught.value), type(caught.value.__cause__)


def test_errors_reach_the_caller_as_the_local_executor_raises_them():
    def build(executor):
        x = Input("x", (2,))
        ok = Lambda(lambda v: v + 1)(x)
        bad = Fail("no good")(x)
        short = layers.Concatenate()([ok, Lambda(lambda v: v[:2])(x)], "short")
        one, _ = Lambda(lambda v: v, n_outputs=2)(x, ["one", "two"])
        return [
            megatron.Pipeline(x, layers.Add()([ok, bad], "out"), name="fails", executor=executor),
            megatron.Pipeline(x, short, name="short", executor=executor),
            megatron.Pipeline(x, layers.Add()([ok, one], "out"), name="arity", executor=executor),
        ]

    data = {"x": np.ones((3, 2))}
    for local, threads in zip(build(None), build(ThreadExecutor(max_workers=4))):
        assert raised(local, data) == raised(threads, data)
    assert [raised(p, data)[0] for p in build(None)] == [LayerError, LayerInputError, LayerError]


def test_when_several_steps_fail_the_first_in_plan_order_is_raised():
    started = threading.Barrier(2)

    class Both(Fail):
        def transform(self, X):
            started.wait(WAIT)  # both failing steps run at once
            return super().transform(X)

    x = Input("x")
    early, late = Both("early", delay=0.2), Both("late")  # the later step fails first
    out = layers.Add()([early(x), late(x)], "out")
    pipeline = megatron.Pipeline(x, out, name="two", executor=ThreadExecutor(max_workers=2))
    kind, message, cause = raised(pipeline, {"x": np.ones(2)})
    assert (kind, cause) == (LayerError, ValueError)
    assert "early" in message and "late" not in message


def test_no_step_starts_after_a_failure_is_seen():
    failed, ran = threading.Event(), []

    class FailNow(StatelessLayer):
        def transform(self, X):
            failed.set()
            raise ValueError("stop")

    class AfterFailure(StatelessLayer):
        def transform(self, X):
            failed.wait(WAIT)
            time.sleep(0.1)  # the failure is recorded meanwhile
            return X

    x = Input("x")
    slow = AfterFailure()(x)
    then = Lambda(lambda v: ran.append("then") or v)(slow)
    out = layers.Add()([then, FailNow()(x)], "out")
    pipeline = megatron.Pipeline(x, out, name="stop", executor=ThreadExecutor(max_workers=2))
    kind, message, _ = raised(pipeline, {"x": np.ones(2)})
    assert kind is LayerError and "stop" in message
    assert ran == []


def test_steps_in_pool_threads_see_the_callers_progress_switch():
    barrier, seen = threading.Barrier(2), []

    class Sees(StatefulLayer):
        def fit(self, X):
            barrier.wait(WAIT)
            seen.append(enabled())

        def transform(self, X):
            return X

    x = Input("x")
    out = layers.Add()([Sees()(x), Sees()(x)], "out")
    pipeline = megatron.Pipeline(x, out, name="progress", executor=ThreadExecutor(max_workers=2))
    pipeline.fit({"x": np.ones(2)}, progress=True)
    assert seen == [True, True]


def test_a_step_that_runs_a_pipeline_on_the_same_executor_does_not_deadlock():
    executor = ThreadExecutor(max_workers=2)
    x = Input("x")
    y = layers.Add()([Lambda(lambda v: v + 1)(x), Lambda(lambda v: v + 2)(x)], "y")
    inner = megatron.Pipeline(x, y, name="inner", executor=executor)

    def nested(v):
        return inner.transform({"x": v})["y"]

    outer_x = Input("x")
    branches = [Lambda(nested)(outer_x), Lambda(nested)(outer_x), Lambda(lambda v: v)(outer_x)]
    outer = megatron.Pipeline(outer_x, layers.Add()(branches, "out"), name="outer", executor=executor)
    results = []
    worker = threading.Thread(target=lambda: results.append(outer.transform({"x": np.zeros(2)})["out"]))
    worker.start()
    worker.join(WAIT)
    assert not worker.is_alive(), "the nested run deadlocked"
    np.testing.assert_array_equal(results[0], [6.0, 6.0])


def test_a_pipeline_with_the_thread_executor_pickles_after_running():
    executor = ThreadExecutor(max_workers=3)
    x = Input("x")
    out = layers.Add()([layers.Whiten()(x), layers.ScalarMultiply(2.0)(x)], "out")
    pipeline = megatron.Pipeline(x, out, name="pickled", executor=executor)
    pipeline.fit({"x": np.arange(5.0)})
    expected = pipeline.transform({"x": np.arange(3.0)})["out"]
    assert executor._pool is not None
    copy = pickle.loads(pickle.dumps(pipeline))
    assert isinstance(copy._executor, ThreadExecutor) and copy._executor.max_workers == 3
    np.testing.assert_array_equal(copy.transform({"x": np.arange(3.0)})["out"], expected)


def test_the_schedule_of_a_plan_is_kept_while_the_plan_lives():
    executor = ThreadExecutor()
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Add()([x, x], "out"), name="kept", executor=executor)
    plan = compile_plan(pipeline.outputs)
    assert executor.schedule(plan) is executor.schedule(plan)
    del plan
    assert executor._schedules == {}


def test_one_pipeline_transforms_from_several_threads_at_once():
    pipeline = rich_graph(ThreadExecutor(max_workers=2)).fit(batch(0))
    local = rich_graph(None).fit(batch(0))
    batches = [batch(seed, 100) for seed in range(12)]
    results: list = [None] * len(batches)

    def work(k):
        results[k] = pipeline.transform(batches[k])

    workers = [threading.Thread(target=work, args=(k,)) for k in range(len(batches))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
    for data, got in zip(batches, results):
        assert_same_outputs(local.transform(data), got)


# -- the class of defects: generated graphs, run by both executors ------------------------------
KINDS = [
    "scale",
    "clip",
    "add",
    "multiply",
    "concat",
    "whiten",
    "minmax",
    "shared",
    "reuse",
    "filter",
    "halves",
]
STEP = st.tuples(st.sampled_from(KINDS), st.integers(0, 1000), st.integers(0, 1000))


@st.composite
def graph_specs(draw):
    widths = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    steps = draw(st.lists(STEP, min_size=2, max_size=10))
    return widths, steps, draw(st.integers(0, 1000))


class Built:
    """Nodes of a generated graph with their width, rows and upstream layers."""

    def __init__(self, widths):
        self.inputs = [Input(f"x{k}", (w,)) for k, w in enumerate(widths)]
        self.nodes = [(node, w, frozenset()) for node, w in zip(self.inputs, widths)]
        self.stateful = []  # (layer, width, calls' upstream layers)

    def rows(self, node):
        return tuple(id(n) for n in node.rows)

    def add(self, node, width, upstream):
        self.nodes.append((node, width, upstream))

    def partner(self, first, seed, same_width):
        node, width, _ = first
        fits = [
            n for n in self.nodes if self.rows(n[0]) == self.rows(node) and (n[1] == width or not same_width)
        ]
        return fits[seed % len(fits)]

    def step(self, kind, a, b):
        first = self.nodes[a % len(self.nodes)]
        node, width, upstream = first
        if kind in ("scale", "clip", "filter") or (kind == "halves" and width < 2):
            layer = {"scale": layers.ScalarMultiply(1.5), "clip": layers.Clip(-0.5, 0.5)}.get(
                kind, layers.Filter(lambda v: v[:, 0] > -1.5)
            )
            self.add(layer(node), width, upstream)
        elif kind in ("add", "multiply", "concat"):
            other = self.partner(first, b, same_width=kind != "concat")
            layer = {"add": layers.Add(), "multiply": layers.ElementWiseMultiply()}.get(
                kind, layers.Concatenate()
            )
            new_width = width + other[1] if kind == "concat" else width
            self.add(layer([node, other[0]]), new_width, upstream | other[2])
        elif kind in ("whiten", "minmax") or (kind == "reuse" and not self.reusable(first)):
            layer = layers.Whiten() if kind != "minmax" else layers.MinMaxScale()
            self.stateful.append((layer, width))
            self.add(layer(node), width, upstream | {id(layer)})
        elif kind == "reuse":
            layer, _ = self.reusable(first)[b % len(self.reusable(first))]
            self.add(layer(node), width, upstream | {id(layer)})
        elif kind == "shared":  # a new layer called on two nodes of one width
            others = [n for n in self.nodes if n[1] == width]
            _, _, other_upstream = other = others[b % len(others)]
            layer = layers.MinMaxScale()
            self.stateful.append((layer, width))
            self.add(layer(node), width, upstream | {id(layer)})
            self.add(layer(other[0]), width, other_upstream | {id(layer)})
        else:
            one, rest = Halves()(node)
            self.add(one, 1, upstream)
            self.add(rest, width - 1, upstream)

    def reusable(self, first):
        """Stateful layers of the node's width that it does not come from (no cycle)."""
        _, width, upstream = first
        return [(layer, w) for layer, w in self.stateful if w == width and id(layer) not in upstream]


def generated(spec, executor):
    widths, steps, pick = spec
    built = Built(widths)
    for kind, a, b in steps:
        built.step(kind, a, b)
    made = built.nodes[len(widths) :]
    rows = built.rows(made[pick % len(made)][0])
    outputs = [node for node, _, _ in made if built.rows(node) == rows]
    outputs = [Lambda(lambda v: v)(node, f"out{k}") for k, node in enumerate(outputs)]
    return megatron.Pipeline(built.inputs, outputs, name="generated", executor=executor)


def outcome(operation, pipeline):
    """What an operation on ``pipeline`` gave: its outputs, or its error's class and message."""
    try:
        return ("ok", operation(pipeline))
    except Exception as exc:
        return ("error", type(exc), str(exc))


def assert_same_outcome(a, b):
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a == b
    elif a[1] is not None and not isinstance(a[1], megatron.Pipeline):
        assert_same_outputs(a[1], b[1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs())
def test_generated_graphs_give_the_same_results_on_both_executors(spec):
    widths = spec[0]
    rng = np.random.default_rng(len(spec[1]))
    data = [{f"x{k}": rng.normal(size=(40, w)) for k, w in enumerate(widths)} for _ in range(4)]
    local, threads = generated(spec, None), generated(spec, ThreadExecutor(max_workers=3))
    for operation in (
        lambda p: p.fit(data[0]),
        lambda p: p.transform(data[1]),
        lambda p: p.partial_fit(data[2]),
        lambda p: p.transform(data[1]),
        lambda p: p.fit_generator(data[:3], progress=False),
        lambda p: p.transform(data[3]),
    ):
        assert_same_outcome(outcome(operation, local), outcome(operation, threads))
        assert_same_states(local, threads)


def test_a_loaded_pipeline_runs_on_the_executor_given(tmp_path):
    """The file holds no executor: loading takes one (a thread pipeline reloaded silently ran
    on the local executor, with no way to ask for threads)."""
    from megatron.execution.threads import ThreadExecutor

    x = Input("x", (3,))
    outputs = [layers.Whiten()(x, "white"), layers.MinMaxScale()(x, "scaled")]
    pipeline = megatron.Pipeline(x, outputs, name="two", executor="threads").fit(batch(0))
    path = pipeline.save(tmp_path)
    reloaded = megatron.load_pipeline(path, executor="threads")
    assert isinstance(reloaded._executor, ThreadExecutor)
    assert_same_outputs(reloaded.transform(batch(1)), pipeline.transform(batch(1)))
