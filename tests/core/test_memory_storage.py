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
