"""Functions in saved pipelines: each is recorded with an identity that tells it apart, and
loading never binds one function where the file recorded another."""

import json
import warnings
import zipfile

import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.errors import PersistenceError
from megatron.nodes import Input
from megatron.persistence.functions import FunctionChangedWarning, FunctionRecord, function_record

DATA = {"x": np.arange(4.0)}


def two_lambdas():
    """A pipeline applying two different lambdas of this module, both recorded as '<lambda>'."""
    plus_one = lambda v: v + 1  # noqa: E731
    times_two = lambda v: v * 2  # noqa: E731
    x = Input("x")
    first = layers.Lambda(plus_one)(x, "first")
    second = layers.Lambda(times_two)(first, "second")
    return megatron.Pipeline(x, [first, second], name="lambdas"), plus_one, times_two


def key(function):
    """The key naming one lambda by its line."""
    return f"<lambda>@{function.__code__.co_firstlineno}"


def test_two_lambdas_are_recorded_apart(tmp_path):
    pipeline, plus_one, times_two = two_lambdas()
    lines = [line for line in megatron.audit(pipeline.save(tmp_path)) if line.startswith("function")]
    assert len(lines) == 2
    assert key(plus_one) in lines[0] and key(times_two) in lines[1]
    records = [FunctionRecord.parse(function_record(f)) for f in (plus_one, times_two)]
    assert records[0].qualname == records[1].qualname == "two_lambdas.<locals>.<lambda>"
    assert records[0].digest != records[1].digest


def test_one_key_for_two_recorded_functions_is_refused_with_a_key_for_each(tmp_path):
    pipeline, plus_one, times_two = two_lambdas()
    path = pipeline.save(tmp_path)
    with pytest.raises(PersistenceError, match="would bind 2 different functions") as caught:
        megatron.load_pipeline(path, custom_objects={"<lambda>": plus_one})
    assert f"custom_objects={{'{key(plus_one)}': ..., '{key(times_two)}': ...}}" in str(caught.value)


def test_each_function_bound_under_its_own_key_gives_the_saved_outputs(tmp_path):
    pipeline, plus_one, times_two = two_lambdas()
    path = pipeline.save(tmp_path)
    loaded = megatron.load_pipeline(path, custom_objects={key(plus_one): plus_one, key(times_two): times_two})
    before, after = pipeline.transform(DATA), loaded.transform(DATA)
    assert after["first"].tolist() == before["first"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert after["second"].tolist() == before["second"].tolist() == [2.0, 4.0, 6.0, 8.0]
    assert loaded.fingerprint == pipeline.fingerprint


def test_swapped_bindings_are_refused(tmp_path):
    pipeline, plus_one, times_two = two_lambdas()
    path = pipeline.save(tmp_path)
    with pytest.raises(PersistenceError, match="the bindings look swapped"):
        megatron.load_pipeline(path, custom_objects={key(plus_one): times_two, key(times_two): plus_one})


def test_lambdas_on_one_line_are_told_apart_by_their_digest(tmp_path):
    plus_one, times_two = (lambda v: v + 1), (lambda v: v * 2)
    x = Input("x")
    pipeline = megatron.Pipeline(
        x, [layers.Lambda(plus_one)(x, "a"), layers.Lambda(times_two)(x, "b")], name="one_line"
    )
    path = pipeline.save(tmp_path)
    with pytest.raises(PersistenceError, match="would bind 2 different functions") as caught:
        megatron.load_pipeline(path, custom_objects={key(plus_one): plus_one})
    keys = [FunctionRecord.parse(function_record(f)) for f in (plus_one, times_two)]
    named = {f"<lambda>@{r.line}#{r.digest}": f for r, f in zip(keys, (plus_one, times_two))}
    for name in named:
        assert repr(name) in str(caught.value)
    loaded = megatron.load_pipeline(path, custom_objects=named)
    assert loaded.transform(DATA)["b"].tolist() == [0.0, 2.0, 4.0, 6.0]


def make_scale(factor):
    def scale(v):
        return v * factor

    return scale


def test_closures_of_one_definition_are_told_apart(tmp_path):
    two, three = make_scale(2), make_scale(3)
    x = Input("x")
    pipeline = megatron.Pipeline(
        x, [layers.Lambda(two)(x, "a"), layers.Lambda(three)(x, "b")], name="closures"
    )
    path = pipeline.save(tmp_path)
    with pytest.raises(PersistenceError, match="would bind 2 different functions"):
        megatron.load_pipeline(path, custom_objects={"scale": two})
    named = {}
    for function in (two, three):
        record = FunctionRecord.parse(function_record(function))
        named[f"scale@{record.line}#{record.digest}"] = function
    loaded = megatron.load_pipeline(path, custom_objects=named)
    out = loaded.transform(DATA)
    assert out["a"].tolist() == [0.0, 2.0, 4.0, 6.0] and out["b"].tolist() == [0.0, 3.0, 6.0, 9.0]


def double(v):
    return v * 2


def test_one_function_used_twice_binds_under_its_name(tmp_path):
    x = Input("x")
    pipeline = megatron.Pipeline(
        x, [layers.Lambda(double)(x, "a"), layers.Lambda(double)(x, "b")], name="twice"
    )
    loaded = megatron.load_pipeline(pipeline.save(tmp_path), custom_objects={"double": double})
    assert loaded.transform(DATA)["b"].tolist() == [0.0, 2.0, 4.0, 6.0]


def test_a_changed_function_is_bound_with_a_warning_and_its_own_fingerprint(tmp_path):
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Lambda(double)(x, "y"), name="changed")
    path = pipeline.save(tmp_path)

    def edited(v):
        return v * 2 + 1

    with pytest.warns(FunctionChangedWarning, match=r"custom_objects\['double'\] does not compute"):
        loaded = megatron.load_pipeline(path, custom_objects={"double": edited})
    assert loaded.transform(DATA)["y"].tolist() == [1.0, 3.0, 5.0, 7.0]
    assert loaded.fingerprint != pipeline.fingerprint  # the cache does not serve the saved rows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        megatron.load_pipeline(path, custom_objects={"double": double})  # the same: no warning


def rewrite_description(path, change):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["pipeline.json"] = json.dumps(change(json.loads(members["pipeline.json"]))).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def strip_identities(value):
    """A description as the earlier format wrote it: functions as 'module:qualname' only."""
    if isinstance(value, list):
        return [strip_identities(v) for v in value]
    if isinstance(value, dict):
        if "__function__" in value:
            return {"__function__": value["__function__"].split("@")[0]}
        return {k: strip_identities(v) for k, v in value.items()}
    return value


def test_files_of_the_earlier_format_still_load(tmp_path):
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Lambda(double)(x, "y"), name="earlier")
    path = pipeline.save(tmp_path)
    rewrite_description(path, strip_identities)
    assert any(line.endswith(":double (from custom_objects, or numpy)") for line in megatron.audit(path))
    loaded = megatron.load_pipeline(path, custom_objects={"double": double})
    assert loaded.transform(DATA)["y"].tolist() == [0.0, 2.0, 4.0, 6.0]
    with pytest.raises(PersistenceError, match="needs the function 'double'"):
        megatron.load_pipeline(path)


def test_numpy_functions_need_no_binding(tmp_path):
    x = Input("x")
    pipeline = megatron.Pipeline(x, layers.Lambda(np.sqrt)(x, "y"), name="numpy")
    loaded = megatron.load_pipeline(pipeline.save(tmp_path))
    assert loaded.transform(DATA)["y"].tolist() == np.sqrt(DATA["x"]).tolist()
    assert loaded.fingerprint == pipeline.fingerprint


def test_record_parsing_and_binding_keys():
    record = FunctionRecord.parse("pkg.mod:outer.<locals>.f@12#0123456789abcdef")
    assert (record.module, record.qualname, record.line, record.digest) == (
        "pkg.mod",
        "outer.<locals>.f",
        12,
        "0123456789abcdef",
    )
    assert record.binding_keys()[0] == "pkg.mod:outer.<locals>.f@12#0123456789abcdef"
    assert record.binding_keys()[-3:] == ["pkg.mod:outer.<locals>.f", "outer.<locals>.f", "f"]
    assert FunctionRecord.parse("numpy:sqrt") == FunctionRecord("numpy", "sqrt")
