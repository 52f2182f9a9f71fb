"""The pipeline fingerprint: the cache never serves rows that another configuration computed.

Functions count by what they compute (code, constants, defaults, closure values, the globals
they read), hyperparameter arrays and dicts are read-only, and a stateful layer fitted
directly changes the fingerprint too.
"""

import copy
import importlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import ReadOnlyError
from megatron.fingerprint import value_fingerprint
from megatron.layers import Lambda, StatefulLayer, StatelessLayer
from megatron.layers.frozen import FrozenDict, FrozenList, FrozenSet
from megatron.nodes import Input

from .layers.test_conformance import ALL_CASES

DATA = {"x": np.arange(4.0)}


def cached_pipeline(layer, name="cached"):
    x = Input("x")
    return megatron.Pipeline(x, layer(x, "y"), name=name, storage="memory://")


def cached(pipeline, data=DATA):
    return pipeline.transform(data, cache=True)["y"].tolist()


@pytest.fixture
def make_module(tmp_path, monkeypatch):
    """``make(name, source)``: a module of one's own, written to a file and imported (each
    test uses names of its own; they leave ``sys.modules`` when it ends)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made = []

    def make(name, source):
        path = tmp_path.joinpath(*name.split("."))
        if "." in name:  # a module of a package: the package's folder and __init__.py
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.joinpath("__init__.py").touch()
        path.with_suffix(".py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        made.append(name)
        return importlib.import_module(name)

    yield make
    for name in made:
        for loaded in (name, name.partition(".")[0]):
            sys.modules.pop(loaded, None)


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


# -- what code reads through modules, classes and attributes --------------------------------
def fresh_and_cached(pipelines):
    """For each ``(pipeline, function)``: the rows the cache serves and those a fresh compute
    gives."""
    return [(cached(pipeline), np.asarray(function(DATA["x"])).tolist()) for pipeline, function in pipelines]


def assert_not_stale(pipelines):
    for served, fresh in fresh_and_cached(pipelines):
        assert served == fresh


def test_module_attributes_a_function_reads_are_seen(make_module):
    helpers = make_module(
        "fp_attr_helpers",
        """
        FACTOR = 2.0
        UNUSED = 0.0
        def scale(v):
            return v * FACTOR
        """,
    )
    sub = make_module("fp_attr_package.sub", "FACTOR = 2.0\n")
    user = make_module(
        "fp_attr_user",
        """
        import fp_attr_helpers as helpers
        import fp_attr_package.sub
        def calls(v):
            return helpers.scale(v)
        def reads(v):
            return v + helpers.FACTOR
        def reads_a_submodule(v):
            return v + fp_attr_package.sub.FACTOR
        def imports_inside(v):
            import fp_attr_helpers
            return v * fp_attr_helpers.FACTOR
        def imports_from_inside(v):
            from fp_attr_helpers import FACTOR
            return v - FACTOR
        """,
    )
    functions = [
        user.calls,
        user.reads,
        user.reads_a_submodule,
        user.imports_inside,
        user.imports_from_inside,
    ]
    pipelines = [(cached_pipeline(Lambda(f), name=f.__name__), f) for f in functions]
    assert_not_stale(pipelines)
    fingerprints = [p.fingerprint for p, _ in pipelines]
    helpers.UNUSED = 1.0  # not read by any of them: no new fingerprint
    assert [p.fingerprint for p, _ in pipelines] == fingerprints
    helpers.FACTOR = 5.0
    sub.FACTOR = 7.0
    assert_not_stale(pipelines)
    helpers.scale = lambda v: v * 10  # the helper redefined
    assert_not_stale(pipelines)


def test_a_module_a_function_imports_is_seen_once_it_is_imported(make_module):
    def late(v):
        import fp_late_module  # imported when the function first runs

        return v * fp_late_module.FACTOR

    pipeline = cached_pipeline(Lambda(late))
    before = pipeline.fingerprint
    module = make_module("fp_late_module", "FACTOR = 2.0\n")
    imported = pipeline.fingerprint
    assert imported != before  # the module it imports now exists, and is read
    module.FACTOR = 3.0
    assert pipeline.fingerprint not in (before, imported)


def test_a_custom_layer_class_sees_the_globals_and_helpers_its_methods_read(make_module):
    module = make_module(
        "fp_layer_module",
        """
        import megatron
        SCALE = 2.0
        FACTORS = [1.0]
        def shift(v):
            return v + 100
        class Scale(megatron.layers.StatelessLayer):
            OFFSET = 0.0
            def transform(self, X):
                return self.offset(self.prepare(shift(X)) * SCALE)
            @staticmethod
            def prepare(X):
                return X * FACTORS[0]
            @classmethod
            def offset(cls, X):
                return X + cls.OFFSET
        """,
    )
    layer = module.Scale()
    pipelines = [(cached_pipeline(layer), layer.transform)]
    assert_not_stale(pipelines)
    for change in (
        lambda: setattr(module, "SCALE", 3.0),  # a constant a method reads
        lambda: setattr(module, "shift", lambda v: v - 100),  # a helper a method calls
        lambda: module.FACTORS.__setitem__(0, 4.0),  # read by a staticmethod
        lambda: setattr(module.Scale, "OFFSET", 1.0),  # a class attribute a classmethod reads
    ):
        change()
        assert_not_stale(pipelines)


CFG = {"k": 2.0}


class Conf:
    K = 2.0


def with_attribute(v):
    return v * with_attribute.k


with_attribute.k = 2.0
G = 2.0


class Helper:
    @staticmethod
    def f(v):
        return v * G


@pytest.mark.parametrize(
    ("function", "change"),
    [
        (lambda v: v * CFG.setdefault("k", 1.0), lambda m: m.setitem(CFG, "k", 7.0)),
        (lambda v: v * Conf.K, lambda m: m.setattr(Conf, "K", 9.0)),
        (with_attribute, lambda m: m.setattr(with_attribute, "k", 11.0)),
        (lambda v: Helper.f(v), lambda m: m.setattr(sys.modules[__name__], "G", 8.0)),
    ],
    ids=[
        "dict read with setdefault",
        "class attribute",
        "function attribute",
        "staticmethod reading a global",
    ],
)
def test_changes_within_one_process_are_seen(function, change, monkeypatch):
    pipelines = [(cached_pipeline(Lambda(function)), function)]
    assert_not_stale(pipelines)
    change(monkeypatch)
    assert_not_stale(pipelines)


def test_inputs_count_by_name_shape_dtype_and_columns():
    def fingerprint(**declared):
        x = Input(**{"name": "x", "shape": (2,), "dtype": None, "columns": None, **declared})
        return megatron.Pipeline(x, Lambda(np.negative)(x, "y"), name="inputs").fingerprint

    variants = [{}, {"shape": None}, {"shape": (3,)}, {"dtype": "float32"}, {"dtype": "float64"}]
    variants += [{"columns": ["a", "b"]}, {"columns": ["b", "c"]}, {"columns": ["b", "a"]}]
    fingerprints = [fingerprint(**declared) for declared in variants]
    assert len(set(fingerprints)) == len(variants)
    assert fingerprint(columns=("a", "b")) == fingerprint(columns=["a", "b"])  # the same declaration

    x = Input("x", (2,), columns=["a", "b"])
    pipeline = megatron.Pipeline(x, Lambda(np.negative)(x, "y"), name="inputs")
    before = pipeline.fingerprint
    x.columns[1] = "c"  # the same input, now reading another column
    assert pipeline.fingerprint != before


def test_the_columns_an_input_reads_are_not_served_another_selections_rows():
    pd = pytest.importorskip("pandas", reason="needs pandas: pip install -e 'packages/megatron-core[pandas]'")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [10.0, 20.0], "c": [100.0, 200.0]})
    storage = "memory://"
    for columns in (["a", "b"], ["b", "c"]):
        x = Input("x", (2,), columns=columns)
        pipeline = megatron.Pipeline(x, Lambda(lambda v: v.sum(axis=1))(x, "y"), name="cols", storage=storage)
        storage = pipeline.storage  # the same storage for both
        served = pipeline.transform(frame, index=["r1", "r2"], cache=True)["y"].tolist()
        assert served == frame[columns].sum(axis=1).tolist()


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


class Tables(StatelessLayer):
    def __init__(self, tables):
        self.tables = tables

    def transform(self, X):
        return X * self.tables[0][0]


def test_hyperparameters_are_read_only_all_the_way_down():
    first, inner = np.array([2.0]), np.array([1.0])
    layer = Tables([first, (inner, {"a": [np.array(1.0)]}), {1, 2}])
    tables = layer.tables
    assert isinstance(tables, FrozenList) and tables == [first, tables[1], {1, 2}]
    assert isinstance(tables[1], tuple) and isinstance(tables[1][1], FrozenDict)
    assert isinstance(tables[1][1]["a"], FrozenList) and isinstance(tables[2], FrozenSet)
    for array in (tables[0], tables[1][0], tables[1][1]["a"][0]):
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 5.0
    assert first.flags.writeable and inner.flags.writeable  # the caller's arrays: neither shared nor changed
    for edit in (
        lambda: tables.append(1),
        lambda: tables.__setitem__(0, 1),
        lambda: tables.__delitem__(0),
        lambda: tables.extend([1]),
        lambda: tables.insert(0, 1),
        lambda: tables.pop(),
        lambda: tables.remove(tables[0]),
        lambda: tables.clear(),
        lambda: tables.sort(),
        lambda: tables.reverse(),
        lambda: tables[1][1]["a"].append(1),
        lambda: tables[2].add(3),
        lambda: tables[2].discard(1),
        lambda: tables[2].update({3}),
        lambda: tables[2].clear(),
    ):
        with pytest.raises(ReadOnlyError, match="assign a new one"):
            edit()
    with pytest.raises(ReadOnlyError):
        layer.tables += [1]  # an augmented assignment edits in place first
    for other in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer), layers.clone(layer)):
        assert isinstance(other.tables, FrozenList) and isinstance(other.tables[2], FrozenSet)
        assert not other.tables[1][1]["a"][0].flags.writeable
        assert value_fingerprint(other.tables) == value_fingerprint(layer.tables)
    pipeline = cached_pipeline(layer)
    assert cached(pipeline) == [0.0, 2.0, 4.0, 6.0]
    layer.tables = [np.array([3.0])]  # assigning a new value is how to change it
    assert cached(pipeline) == [0.0, 3.0, 6.0, 9.0]


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_every_built_in_layer_keeps_read_only_hyperparameters(case):
    layer = case.make()
    for name, value in layer.get_config().items():
        if isinstance(value, np.ndarray):
            assert not value.flags.writeable, name
        if isinstance(value, dict):
            assert isinstance(value, FrozenDict), name
        if isinstance(value, list):
            assert isinstance(value, FrozenList), name


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
    memo = pipeline._fingerprint.memo
    assert pipeline.fingerprint == first
    assert pipeline._fingerprint.memo is memo  # not recomputed
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


# -- the class of defects: generated modules, classes and the paths code reads them by --------
GENERATED_FIELDS = {
    "access": st.sampled_from(
        [
            "module attribute",
            "module function",
            "submodule attribute",
            "import inside",
            "from import inside",
            "dict setdefault",
            "class attribute",
            "method",
            "staticmethod",
            "classmethod",
            "function attribute",
            "layer",
        ]
    ),
    "op": st.sampled_from(["+", "-", "*"]),
    "const": CONSTANTS,
    "decoy": CONSTANTS,  # a module-level name nothing reads: it must not matter
}
GENERATED_SUB = "FACTOR = {const!r}\nUNUSED = {decoy!r}\n"
GENERATED_HELPERS = "FACTOR = {const!r}\nUNUSED = {decoy!r}\n\n\ndef scale(v):\n    return v {op} FACTOR\n"
GENERATED_MAIN = """
import fp_gen_helpers as helpers
from megatron.layers import StatelessLayer

FACTOR = {const!r}
UNUSED = {decoy!r}
CFG = {{"k": {const!r}}}


def shift(v):
    return v {op} FACTOR


class Conf:
    K = {const!r}

    def method(self, v):
        return shift(v)

    @staticmethod
    def static(v):
        return v {op} FACTOR

    @classmethod
    def klass(cls, v):
        return v {op} cls.K


def fa(v):
    return v {op} fa.k


fa.k = {const!r}


class Step(StatelessLayer):
    def transform(self, X):
        return shift(X)


"""
GENERATED_ACCESS = {
    "module attribute": "access = lambda v: v {op} helpers.FACTOR",
    "module function": "access = lambda v: helpers.scale(v)",
    "submodule attribute": "access = lambda v: v {op} helpers.sub.FACTOR",
    "import inside": "def access(v):\n    import fp_gen_helpers\n    return fp_gen_helpers.scale(v)",
    "from import inside": "def access(v):\n    from fp_gen_helpers import FACTOR\n    return v {op} FACTOR",
    "dict setdefault": "access = lambda v: v {op} CFG.setdefault('k', 0)",
    "class attribute": "access = lambda v: v {op} Conf.K",
    "method": "access = lambda v: Conf().method(v)",
    "staticmethod": "access = lambda v: Conf.static(v)",
    "classmethod": "access = lambda v: Conf.klass(v)",
    "function attribute": "access = fa",
    "layer": "access = Step()",
}
GENERATED_MODULES = ("fp_gen_helpers_sub", "fp_gen_helpers", "fp_gen_main")


def install(variant):
    """The modules a variant describes, made and imported as ``fp_gen_*`` (replacing those of
    another variant); the main one, whose ``access`` reads the others by one path."""
    made = {}
    for name, source in zip(
        GENERATED_MODULES,
        (GENERATED_SUB, GENERATED_HELPERS, GENERATED_MAIN + GENERATED_ACCESS[variant["access"]] + "\n"),
    ):
        module = made[name] = types.ModuleType(name)
        sys.modules[name] = module
        exec(compile(source.format(**variant), "<generated>", "exec"), module.__dict__)
    made["fp_gen_helpers"].sub = made["fp_gen_helpers_sub"]
    return made["fp_gen_main"]


@pytest.fixture
def generated():
    yield install
    for name in GENERATED_MODULES:
        sys.modules.pop(name, None)


def generated_pipeline(main):
    layer = main.access if isinstance(main.access, layers.Layer) else Lambda(main.access)
    x = Input("x")
    return megatron.Pipeline(x, layer(x, "y"), name="generated")


@st.composite
def generated_pairs(draw):
    a = draw(st.fixed_dictionaries(GENERATED_FIELDS))
    b = dict(a)
    for field in draw(st.lists(st.sampled_from(sorted(GENERATED_FIELDS)), max_size=2)):
        b[field] = draw(GENERATED_FIELDS[field])
    return a, b


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=generated_pairs())
def test_generated_modules_and_classes_get_distinct_fingerprints_and_equal_ones_equal(pair, generated):
    a, b = pair
    digests = []
    for variant in (a, b):  # one after the other: an import inside reads the modules installed
        main = generated(variant)
        digests.append((value_fingerprint(main.access), generated_pipeline(main).fingerprint))
    equal = all((type(a[k]), repr(a[k])) == (type(b[k]), repr(b[k])) for k in ("access", "op", "const"))
    assert (digests[0][0] == digests[1][0]) == equal
    assert (digests[0][1] == digests[1][1]) == equal


CONSTANT_SLOTS = {
    "module constant": lambda main, value: setattr(main, "FACTOR", value),
    "helper module constant": lambda main, value: setattr(main.helpers, "FACTOR", value),
    "submodule constant": lambda main, value: setattr(main.helpers.sub, "FACTOR", value),
    "dict item": lambda main, value: main.CFG.__setitem__("k", value),
    "class attribute": lambda main, value: setattr(main.Conf, "K", value),
    "function attribute": lambda main, value: setattr(main.fa, "k", value),
}
"""Every place a variant's constant is kept."""
REPLACEMENTS = {
    "helper function": lambda main, fresh: setattr(main, "shift", fresh.shift),
    "helper module function": lambda main, fresh: setattr(main.helpers, "scale", fresh.helpers.scale),
    "method": lambda main, fresh: setattr(main.Conf, "method", fresh.Conf.__dict__["method"]),
    "staticmethod": lambda main, fresh: setattr(main.Conf, "static", fresh.Conf.__dict__["static"]),
    "classmethod": lambda main, fresh: setattr(main.Conf, "klass", fresh.Conf.__dict__["klass"]),
    "module imported anew": lambda main, fresh: sys.modules.__setitem__("fp_gen_helpers", fresh.helpers),
    "unread name": lambda main, fresh: setattr(main.helpers, "UNUSED", object()),
}
"""Functions and modules replaced by those of a fresh variant with the new constant."""


@st.composite
def change_plans(draw):
    """A variant, a new constant, and the steps that change the variant's modules in place to
    compute what a fresh variant with that constant computes, with whether the fingerprint is
    read after each step."""
    variant = draw(st.fixed_dictionaries(GENERATED_FIELDS))
    const = draw(CONSTANTS)
    replaced = draw(st.lists(st.sampled_from(sorted(REPLACEMENTS)), unique=True, max_size=3))
    steps = draw(st.permutations([*CONSTANT_SLOTS, *replaced]))
    reads = draw(st.lists(st.booleans(), min_size=len(steps), max_size=len(steps)))
    return variant, const, list(zip(steps, reads))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=change_plans())
def test_changes_in_place_give_the_fingerprint_of_what_is_computed_now(plan, generated):
    variant, const, steps = plan
    fresh = generated({**variant, "const": const})
    main = generated(variant)
    pipeline = generated_pipeline(main)
    before = pipeline.fingerprint
    for step, read in steps:
        if step in CONSTANT_SLOTS:
            CONSTANT_SLOTS[step](main, const)
        else:
            REPLACEMENTS[step](main, fresh)
        if read:
            pipeline.fingerprint  # the memo, taken part way
    after = pipeline.fingerprint
    sys.modules.update({m.__name__: m for m in (fresh.helpers.sub, fresh.helpers, fresh)})
    assert after == generated_pipeline(fresh).fingerprint  # the memo, as a fresh walk of fresh modules
    assert (after == before) == (
        (type(const), repr(const)) == (type(variant["const"]), repr(variant["const"]))
    )


# -- across processes ------------------------------------------------------------------------
SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import megatron
from megatron.fingerprint import value_fingerprint
import fingerprinted

results = {}
for name, layer in fingerprinted.layers().items():
    x = megatron.nodes.Input("x")
    if name in ("plain", "untouched"):  # their fingerprints alone
        results[name] = megatron.Pipeline(x, layer(x, "y"), name=name).fingerprint
        continue
    pipeline = megatron.Pipeline(x, layer(x, "y"), name=name, version="1", storage=sys.argv[2])
    out = pipeline.transform({"x": np.arange(3.0)}, index=[10, 11, 12], cache=True)
    fresh = np.asarray(layer.transform(np.arange(3.0))).tolist()
    results[name] = [pipeline.fingerprint, out["y"].tolist(), fresh]
results["digest"] = value_fingerprint(fingerprinted.transform)
print(json.dumps(results))
"""

FINGERPRINTED = """
import megatron
import helpers

SCALE = {scale}


def transform(v):
    return v * SCALE


def through_module(v):
    return helpers.scale(v) + helpers.FACTOR


def shift(v):
    return v + {shift}


class Step(megatron.layers.StatelessLayer):
    def transform(self, X):
        return shift(X) * 2


def layers():
    Lambda = megatron.layers.Lambda
    return {{
        "plain": Lambda(transform),
        "module": Lambda(through_module),
        "layer": Step(),
        "untouched": Lambda(lambda v: v + 1),
    }}
"""
HELPERS = "FACTOR = {factor}\n\ndef scale(v):\n    return v * FACTOR\n"


def run_definition(tmp_path, storage, seed, scale=2.0, shift=0.0, factor=2.0):
    """Runs the pipelines of one definition of the modules in a new process."""
    folder = tmp_path / "module"
    folder.mkdir(exist_ok=True)
    (folder / "fingerprinted.py").write_text(FINGERPRINTED.format(scale=scale, shift=shift))
    (folder / "helpers.py").write_text(HELPERS.format(factor=factor))
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
    pytest.importorskip("megatron_sql", reason="needs megatron_sql: pip install -e packages/megatron-sql")
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = run_definition(tmp_path, storage, seed=0)
    again = run_definition(tmp_path, storage, seed=1)  # another process, other hash seeds
    assert again == first  # the same fingerprints, and the rows stored by the first
    assert first["module"][1] == [2.0, 4.0, 6.0] and first["layer"][1] == [0.0, 2.0, 4.0]
    # Each module edited, the functions and classes keeping their names: each pipeline whose
    # code reads what changed (a constant a function reads, a module attribute, a helper a layer
    # method calls) gets its own fingerprint, and never the rows stored under the same keys.
    other = run_definition(tmp_path, storage, seed=0, scale=3.0, shift=1.0, factor=3.0)
    assert other["digest"] != first["digest"] and other["plain"] != first["plain"]
    for name in ("module", "layer"):
        assert other[name][0] != first[name][0], name
        assert other[name][1] == other[name][2] != first[name][1], name
    assert other["untouched"] == first["untouched"]
