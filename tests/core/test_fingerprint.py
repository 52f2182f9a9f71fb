"""The pipeline fingerprint: the cache never serves rows that another configuration computed.

Functions count by what they compute (code, constants, defaults, closure values, the globals
they read), hyperparameter arrays and dicts are read-only, and a stateful layer fitted
directly changes the fingerprint too.
"""

import copy
import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import ReadOnlyError
from megatron.fingerprint import value_fingerprint
from megatron.layers import Lambda, StatefulLayer
from megatron.layers.frozen import FrozenDict
from megatron.nodes import Input

from .layers.test_conformance import ALL_CASES

DATA = {"x": np.arange(4.0)}


def cached_pipeline(layer, name="cached"):
    x = Input("x")
    return megatron.Pipeline(x, layer(x, "y"), name=name, storage="memory://")


def cached(pipeline, data=DATA):
    return pipeline.transform(data, cache=True)["y"].tolist()


# -- functions: by what they compute ---------------------------------------------------------
def test_a_replaced_lambda_function_is_not_served_stale_rows():
    lam = Lambda(lambda v: v * 2)
    pipeline = cached_pipeline(lam)
    assert cached(pipeline) == [0.0, 2.0, 4.0, 6.0]
    lam.function = lambda v: v * 3  # same module, same qualified name '<lambda>'
    assert cached(pipeline) == [0.0, 3.0, 6.0, 9.0]


def test_a_changed_closure_value_is_not_served_stale_rows():
    factor = 2

    def scale(v):
        return v * factor

    pipeline = cached_pipeline(Lambda(scale))
    assert cached(pipeline) == [0.0, 2.0, 4.0, 6.0]
    factor = 3  # the closure's cell now holds 3
    assert cached(pipeline) == [0.0, 3.0, 6.0, 9.0]
    assert factor == 3


def test_changed_defaults_and_keyword_defaults_are_not_served_stale_rows():
    def scale(v, factor=2, *, offset=0):
        return v * factor + offset

    pipeline = cached_pipeline(Lambda(scale))
    assert cached(pipeline) == [0.0, 2.0, 4.0, 6.0]
    scale.__defaults__ = (3,)
    assert cached(pipeline) == [0.0, 3.0, 6.0, 9.0]
    scale.__kwdefaults__ = {"offset": 1}
    assert cached(pipeline) == [1.0, 4.0, 7.0, 10.0]


def test_a_list_the_function_captures_edited_in_place_is_seen():
    weights = [2.0]
    pipeline = cached_pipeline(Lambda(lambda v: v * weights[0]))
    assert cached(pipeline) == [0.0, 2.0, 4.0, 6.0]
    weights[0] = 3.0
    assert cached(pipeline) == [0.0, 3.0, 6.0, 9.0]
    weights.append(1.0)  # a new item: recomputed, and the same rows as with one item would be
    assert cached(pipeline) == [0.0, 3.0, 6.0, 9.0]


def test_a_dict_the_function_captures_is_seen_key_by_key():
    table = {"factor": None}
    pipeline = cached_pipeline(Lambda(lambda v: v * (table.get("scale") or 2.0)))
    assert cached(pipeline) == [0.0, 2.0, 4.0, 6.0]
    del table["factor"]
    table["scale"] = 3.0  # as many keys as before, and the old key's value was None
    assert cached(pipeline) == [0.0, 3.0, 6.0, 9.0]


CALLS = 0


def counted(v):
    global CALLS
    CALLS += 1
    return v + 1


def test_state_a_function_keeps_for_itself_does_not_count():
    log, memo = [], {}

    def logged(v):
        log.append(len(v))  # its own log and memo: written by the function, not inputs of it
        memo[len(v)] = True
        return v * 2

    for function in (logged, counted):
        pipeline = cached_pipeline(Lambda(function), name=function.__name__)
        first = cached(pipeline)
        fingerprint = pipeline.fingerprint
        calls = (len(log), CALLS)
        assert cached(pipeline) == first  # served from storage: the function did not run again
        assert (len(log), CALLS) == calls and pipeline.fingerprint == fingerprint


def test_running_a_function_does_not_change_its_fingerprint():
    def step(v):
        return v * 2 + 1

    before = value_fingerprint(step)
    for i in range(2000):  # long enough for the interpreter to specialise its bytecode
        step(i)
    assert value_fingerprint(step) == before


def test_arrays_of_every_kind_are_read_by_content():
    days = np.array(["2020-01-01"], dtype="M8[D]")
    assert value_fingerprint(days) != value_fingerprint(days + 1)
    assert value_fingerprint(np.array(3.0)) != value_fingerprint(np.array([3.0]))
    assert value_fingerprint(np.float64(1.0)) != value_fingerprint(1.0)
    transposed = np.arange(6.0).reshape(2, 3).T
    assert value_fingerprint(transposed) == value_fingerprint(np.ascontiguousarray(transposed))
    assert value_fingerprint(np.array(["a", None], dtype=object)) != value_fingerprint(
        np.array(["a", "None"], dtype=object)
    )


OFFSET = 1.0


def helper(v):
    return v + OFFSET


def uses_globals(v):
    return helper(v) * 2


def test_the_globals_a_function_reads_are_seen_recursively(monkeypatch):
    module = sys.modules[__name__]
    pipeline = cached_pipeline(Lambda(uses_globals))
    assert cached(pipeline) == [2.0, 4.0, 6.0, 8.0]
    monkeypatch.setattr(module, "OFFSET", 2.0)  # read by helper, which uses_globals reads
    assert cached(pipeline) == [4.0, 6.0, 8.0, 10.0]
    monkeypatch.setattr(module, "helper", lambda v: v - 1)  # the helper redefined
    assert cached(pipeline) == [-2.0, 0.0, 2.0, 4.0]


def test_a_function_redefined_under_the_same_name_does_not_get_the_old_rows():
    x = Input("x")

    def transform(v):
        return v * 2

    first = megatron.Pipeline(x, Lambda(transform)(x, "y"), name="same", storage="memory://")
    assert cached(first) == [0.0, 2.0, 4.0, 6.0]

    def transform(v):  # the point: a new definition under the same name
        return v * 3

    second = megatron.Pipeline(x, Lambda(transform)(x, "y"), name="same", storage=first.storage)
    assert second.fingerprint != first.fingerprint
    assert cached(second) == [0.0, 3.0, 6.0, 9.0]


def make_scale(factor):
    def scale(v):
        return v * factor

    return scale


def test_closures_of_one_factory_share_a_name_but_not_a_fingerprint():
    two, three, other_two = make_scale(2), make_scale(3), make_scale(2)
    assert two.__qualname__ == three.__qualname__
    assert value_fingerprint(two) != value_fingerprint(three)
    assert value_fingerprint(two) == value_fingerprint(other_two)  # equal computations, equal digests


def test_a_recursive_function_and_a_self_referencing_closure_are_fingerprinted():
    def countdown(n):
        return 0 if n <= 0 else countdown(n - 1)

    loop = []
    loop.append(loop)
    assert len({value_fingerprint(countdown), value_fingerprint(loop), value_fingerprint([[]])}) == 3


def test_numpy_functions_and_builtins_count_by_name():
    assert value_fingerprint(np.log) == value_fingerprint(np.log)
    assert len({value_fingerprint(f) for f in (np.log, np.exp, np.mean, np.sum, len, abs)}) == 6


def test_objects_count_by_their_attributes():
    class Scaler:
        def __init__(self, factor):
            self.factor = factor

        def __call__(self, v):
            return v * self.factor

    scaler = Scaler(2)
    pipeline = cached_pipeline(Lambda(scaler))
    assert cached(pipeline) == [0.0, 2.0, 4.0, 6.0]
    scaler.factor = 3  # an attribute of the callable object, changed in place
    assert cached(pipeline) == [0.0, 3.0, 6.0, 9.0]
    assert value_fingerprint(Scaler(2)) == value_fingerprint(Scaler(2))
    assert value_fingerprint(Scaler(2).__call__) != value_fingerprint(Scaler(3).__call__)


def test_a_custom_layer_class_counts_by_its_code():
    def define(body):
        namespace = {"StatelessLayer": layers.StatelessLayer}  # no __name__: the class says 'builtins'
        exec(f"class Step(StatelessLayer):\n    def transform(self, X):\n        return {body}\n", namespace)
        return namespace["Step"]

    x = Input("x")
    fingerprints = [
        megatron.Pipeline(x, define(body)()(x, "y"), name="custom").fingerprint for body in ("X + 1", "X + 2")
    ]
    assert fingerprints[0] != fingerprints[1]
    again = megatron.Pipeline(x, define("X + 1")()(x, "y"), name="custom").fingerprint
    assert again == fingerprints[0]


# -- hyperparameters: read-only --------------------------------------------------------------
def test_hyperparameter_arrays_are_read_only_copies():
    W = np.eye(2)
    layer = layers.StaticDot(W)
    with pytest.raises(ValueError, match="read-only"):
        layer.W[0, 0] = 5.0
    assert W.flags.writeable  # the caller's array keeps its flags...
    W[0, 0] = 5.0  # ...and editing it does not reach the layer
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layer(x, "y"), name="static", storage="memory://")
    assert pipeline.transform({"x": np.ones((1, 2))}, cache=True)["y"].tolist() == [[1.0, 1.0]]
    layer.W = W  # assigning a new value is how to change it
    assert pipeline.transform({"x": np.ones((1, 2))}, cache=True)["y"].tolist() == [[5.0, 1.0]]
    assert not layer.W.flags.writeable and W.flags.writeable


def test_hyperparameter_dicts_refuse_edits_and_a_new_one_is_seen():
    impute = layers.Impute({np.nan: 0.0})
    pipeline = cached_pipeline(impute)
    data = {"x": np.array([1.0, np.nan])}
    assert cached(pipeline, data) == [1.0, 0.0]
    for edit in (
        lambda m: m.__setitem__(np.nan, 9.0),
        lambda m: m.update({1.0: 2.0}),
        lambda m: m.pop(np.nan),
        lambda m: m.clear(),
        lambda m: m.setdefault(2.0, 1.0),
    ):
        with pytest.raises(ReadOnlyError, match="assign a new one"):
            edit(impute.mapping)
    impute.mapping = {**impute.mapping, np.nan: 9.0}
    assert isinstance(impute.mapping, FrozenDict)
    assert cached(pipeline, data) == [1.0, 9.0]


def test_frozen_hyperparameters_survive_pickling_copying_and_cloning():
    layer = layers.Impute({"a": np.array(7)})  # a replacement is one value: a 0-d array here
    for other in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer), layers.clone(layer)):
        assert isinstance(other.mapping, FrozenDict)
        assert not other.mapping["a"].flags.writeable
        assert other.mapping["a"].tolist() == 7
    static = layers.StaticDot(np.eye(2))
    assert not pickle.loads(pickle.dumps(static)).W.flags.writeable
    assert layers.clone(static).W is static.W  # already frozen: shared, not copied again


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_every_built_in_layer_keeps_read_only_hyperparameters(case):
    layer = case.make()
    for name, value in layer.get_config().items():
        if isinstance(value, np.ndarray):
            assert not value.flags.writeable, name
        if isinstance(value, dict):
            assert isinstance(value, FrozenDict), name


# -- stateful layers: any fit renews the state token -----------------------------------------
class Mean(StatefulLayer):
    def fit(self, X):
        self.metadata["mean"] = float(X.mean())

    def transform(self, X):
        return X - self.metadata["mean"]


class RunningMax(StatefulLayer):
    def partial_fit(self, X):
        self.metadata["max"] = max(self.metadata.get("max", -np.inf), float(X.max()))

    def transform(self, X):
        return X - self.metadata["max"]


def test_a_layer_fitted_directly_changes_the_fingerprint():
    mean = Mean()
    pipeline = cached_pipeline(mean)
    pipeline.fit(DATA)
    assert cached(pipeline) == [-1.5, -0.5, 0.5, 1.5]
    mean.fit(np.array([10.0]))  # not through the pipeline
    assert cached(pipeline) == [-10.0, -9.0, -8.0, -7.0]

    running = RunningMax()
    pipeline = cached_pipeline(running, "running")
    pipeline.fit(DATA)
    assert cached(pipeline) == [-3.0, -2.0, -1.0, 0.0]
    running.partial_fit(np.array([5.0]))
    assert cached(pipeline) == [-5.0, -4.0, -3.0, -2.0]
    before = pipeline.fingerprint
    running.reset()
    assert pipeline.fingerprint != before


def test_a_failed_direct_fit_still_renews_the_state_token():
    class Broken(Mean):
        def fit(self, X):
            self.metadata["mean"] = 0.0
            raise RuntimeError("half way")

    layer = Broken()
    token = layer.state_token
    with pytest.raises(RuntimeError):
        layer.fit(np.ones(2))
    assert layer.state_token != token


# -- the memo --------------------------------------------------------------------------------
def test_the_fingerprint_is_computed_once_while_nothing_changes():
    pipeline = cached_pipeline(Lambda(helper))
    first = pipeline.fingerprint
    memo = pipeline.__dict__["_fingerprint"]
    assert pipeline.fingerprint == first
    assert pipeline.__dict__["_fingerprint"] is memo  # not recomputed
    clone = pickle.loads(pickle.dumps(pipeline))
    assert clone.fingerprint == first  # recomputed from what the copy holds: the same


# -- the class of defects: generated function variants ---------------------------------------
CONSTANTS = st.one_of(st.integers(-3, 3), st.sampled_from([0.0, -0.0, 0.5, 1.0, 2.5]), st.booleans())
FIELDS = {
    "op": st.sampled_from(["+", "-", "*"]),
    "const": CONSTANTS,
    "default": CONSTANTS,
    "captured": CONSTANTS,
    "body": st.sampled_from(["plain", "nested", "generator", "keyword"]),
}
BODIES = {
    "plain": "def f(v, a={default!r}):\n        return (v {op} {const!r}) * a + captured",
    "nested": "def f(v, a={default!r}):\n        return (lambda w: w {op} {const!r})(v) * a + captured",
    "generator": "def f(v, a={default!r}):\n        return sum(v {op} {const!r} for _ in (1,)) * a + captured",
    "keyword": "def f(v, *, a={default!r}):\n        return (v {op} {const!r}) * a + captured",
}


def define(variant):
    """The function a variant describes, compiled on its own (as another module would)."""
    source = "def outer(captured):\n    " + BODIES[variant["body"]].format(**variant) + "\n    return f\n"
    namespace = {"__name__": "generated"}
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace["outer"](variant["captured"])


def same(a, b):
    """Equal variants: equal values of equal types (1, 1.0, True and -0.0, 0.0 differ)."""
    return all((type(a[k]), repr(a[k])) == (type(b[k]), repr(b[k])) for k in FIELDS)


@st.composite
def variant_pairs(draw):
    a = draw(st.fixed_dictionaries(FIELDS))
    b = dict(a)
    for field in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=2)):
        b[field] = draw(FIELDS[field])
    return a, b


@settings(max_examples=150, deadline=None)
@given(variant_pairs())
def test_distinct_functions_get_distinct_fingerprints_and_equal_ones_equal(pair):
    a, b = pair
    fa, fb = define(a), define(b)
    assert (value_fingerprint(fa) == value_fingerprint(fb)) == same(a, b)
    x = Input("x")
    pa, pb = (megatron.Pipeline(x, Lambda(f)(x, "y"), name="p").fingerprint for f in (fa, fb))
    assert (pa == pb) == same(a, b)


DATA_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([0.0, -0.0, 1.0]) | st.text(max_size=2),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=8,
)


def typed(value):
    """A value with its types spelled out, so that 1, 1.0, True and [1], (1,) differ."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(v) for v in value])
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    return (type(value).__name__, repr(value))


def lookalike(value):
    """Values that print alike or compare equal to ``value``: a tuple for a list, 1.0 or True
    for 1, -0.0 for 0.0, the same items regrouped."""
    if isinstance(value, (list, tuple)):
        items = st.tuples(*(lookalike(v) for v in value))
        return items.map(list) | items | st.just([value]) | st.just([*value, None])
    if isinstance(value, dict):
        return st.fixed_dictionaries({k: lookalike(v) for k, v in value.items()}) | st.just(
            list(value.items())
        )
    if isinstance(value, (bool, int, float)):
        return st.sampled_from([value, int(value), float(value), bool(value), -value, str(value)])
    return st.just(value) | st.just(None if value is not None else "None")


@st.composite
def data_pairs(draw):
    a = draw(DATA_VALUES)
    return a, draw(lookalike(a) | DATA_VALUES)


@settings(max_examples=150, deadline=None)
@given(data_pairs())
def test_distinct_data_values_get_distinct_fingerprints(pair):
    a, b = pair
    assert (value_fingerprint(a) == value_fingerprint(b)) == (typed(a) == typed(b))
    assert value_fingerprint(a) == value_fingerprint(copy.deepcopy(a))


# -- across processes ------------------------------------------------------------------------
SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import megatron
from megatron.fingerprint import value_fingerprint
import fingerprinted

x = megatron.nodes.Input("x")
y = megatron.layers.Lambda(fingerprinted.transform)(x, "y")
pipeline = megatron.Pipeline(x, y, name="shared", version="1", storage=sys.argv[2])
out = pipeline.transform({"x": np.arange(3.0)}, index=[10, 11, 12], cache=True)
print(json.dumps([value_fingerprint(fingerprinted.transform), pipeline.fingerprint, out["y"].tolist()]))
"""

DEFINITIONS = {
    "double": "SCALE = 2.0\n\ndef transform(v):\n    return v * SCALE\n",
    "triple": "SCALE = 3.0\n\ndef transform(v):\n    return v * SCALE\n",
}


def run_definition(tmp_path, definition, seed, storage):
    folder = tmp_path / "module"
    folder.mkdir(exist_ok=True)
    (folder / "fingerprinted.py").write_text(DEFINITIONS[definition])
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(folder), storage],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_fingerprints_are_stable_across_processes_and_differ_between_definitions(tmp_path):
    pytest.importorskip("megatron_sql")
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = run_definition(tmp_path, "double", 0, storage)
    again = run_definition(tmp_path, "double", 1, storage)  # another process, other hash seeds
    assert again[:2] == first[:2]
    assert again[2] == first[2] == [0.0, 2.0, 4.0]
    # The same module and function name, another definition: its own fingerprint, and never
    # the rows the other one stored under the same keys.
    other = run_definition(tmp_path, "triple", 0, storage)
    assert other[0] != first[0] and other[1] != first[1]
    assert other[2] == [0.0, 3.0, 6.0]
