"""The in-memory storage backend and transform's storing of outputs."""

import numpy as np
import pytest

import megatron
from megatron.errors import MissingKeyError, StorageError
from megatron.layers import Lambda
from megatron.nodes import Input
from megatron.storage import MemoryStorage
from megatron.testing import StorageCase, storage_checks


def make(storage="memory://"):
    x = Input("x", (2,))
    total = Lambda(lambda v: v.sum(axis=1))(x, "total")
    return megatron.Pipeline(x, [x, total], name="p", version=0.1, storage=storage)


def test_transform_stores_rows_read_back_by_int_or_string_key():
    pipeline = make()
    data = np.arange(8.0).reshape(4, 2)
    pipeline.transform({"x": data})
    one = pipeline.storage.read(rows=["0"])
    assert list(one) == ["x", "total"]
    assert one[0].shape == (1, 2)
    np.testing.assert_array_equal(one["total"], [1.0])
    np.testing.assert_array_equal(pipeline.storage.read(rows=[3, 1])["x"], data[[3, 1]])


def test_writes_are_upserts_under_the_given_index():
    pipeline = make()
    pipeline.transform({"x": np.zeros((2, 2))}, index=["a", "b"])
    pipeline.transform({"x": np.ones((2, 2))}, index=["b", "c"])
    assert sorted(pipeline.storage.keys()) == ["a", "b", "c"]
    np.testing.assert_array_equal(pipeline.storage.read(rows=["b"])["total"], [2.0])
    assert "a" in pipeline.storage and "z" not in pipeline.storage


def test_missing_keys_are_named():
    pipeline = make()
    pipeline.transform({"x": np.zeros((2, 2))})
    with pytest.raises(MissingKeyError, match=r"no rows for keys \[7\]"):
        pipeline.storage.read(rows=[0, 7])


def test_failed_write_changes_nothing():
    storage = MemoryStorage()
    storage.write([0, 1], {"a": np.zeros(2)})
    with pytest.raises(StorageError, match="duplicate keys"):
        storage.write([1, 1], {"a": np.ones(2)})
    np.testing.assert_array_equal(storage.read()["a"], [0.0, 0.0])


def test_delete_and_cols():
    storage = MemoryStorage()
    storage.write([0, 1, 2], {"a": np.arange(3), "b": np.arange(3) * 2})
    storage.delete([1])
    assert storage.keys() == [0, 2]
    assert list(storage.read(cols=["b"])) == ["b"]


def test_unknown_scheme_says_which_schemes_exist(megatron_plugins):
    with pytest.raises(StorageError, match=r"scheme 'nosuch'.*Known schemes: .*memory"):
        make("nosuch://x")


@pytest.mark.parametrize("check", storage_checks(), ids=lambda c: c.__name__)
def test_memory_storage_conformance(check):
    check(StorageCase(lambda name, version: MemoryStorage(name, version), name="memory"))


def test_write_takes_outputs_whole_or_an_index_and_a_mapping():
    outputs = megatron.Outputs(["a"], [np.array([1.0, 2.0])], ["k", "j"])
    whole, parts, positional, keywords = (MemoryStorage() for _ in range(4))
    whole.write(outputs, fingerprint="f" * 32)
    parts.write(["k", "j"], {"a": np.array([1.0, 2.0])}, "f" * 32)
    positional.write(outputs, "f" * 32)
    keywords.write(index=["k", "j"], outputs={"a": np.array([1.0, 2.0])}, fingerprint="f" * 32)
    for storage in (whole, parts, positional, keywords):
        found, back = storage.lookup(["j", "k"], fingerprint="f" * 32)
        assert found.tolist() == [0, 1] and back["a"].tolist() == [2.0, 1.0]
    unkeyed = MemoryStorage()
    unkeyed.write(outputs=megatron.Outputs(["a"], [np.array([3.0, 4.0])]))  # no index: 0..n-1
    assert unkeyed.keys() == [0, 1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.write({"a": np.zeros(1)}), r"takes an Outputs .* got \{'a'"),
        (lambda s: s.write(), "got nothing"),
        (lambda s: s.write(outputs={"a": np.zeros(1)}), "alone"),
        (lambda s: s.write(megatron.Outputs(["a"], [np.zeros(1)]), "f", fingerprint="g"), "twice"),
    ],
)
def test_write_called_in_neither_form_is_a_type_error(call, message):
    storage = MemoryStorage()
    with pytest.raises(TypeError, match=message):
        call(storage)
    assert len(storage) == 0


@pytest.mark.parametrize(
    ("keys", "message"),
    [([0, 2**63], "fit in int64"), ([True, 1], "keys are integers"), ([0.5, 1.5], "keys are integers")],
)
def test_outputs_are_stored_under_the_keys_as_given_not_as_numpy_made_them(keys, message):
    outputs = megatron.Outputs(["a"], [np.zeros(2)], keys)
    assert outputs.index.dtype.kind in "fiu"  # numpy's array of these keys loses what they were
    assert outputs.given_index is keys
    for write in (lambda s: s.write(outputs), lambda s: s.write(keys, {"a": np.zeros(2)})):
        storage = MemoryStorage()
        with pytest.raises(StorageError, match=message):
            write(storage)
        assert len(storage) == 0
