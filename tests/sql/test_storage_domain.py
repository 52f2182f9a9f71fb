"""What SQL storage keeps and gives back: pipelines never share or destroy each other's tables,
every output schema reads back, keys outside the key domain are refused, and every refusal is
a StorageError rather than a raw database error."""

import threading

import numpy as np
import pytest

from megatron.errors import StorageError
from megatron.storage import MemoryStorage
from megatron_sql import SQLStorage


def test_names_differing_only_in_case_keep_their_own_rows(database_url):
    upper = SQLStorage(database_url, "Sales")
    upper.write([1, 2], {"x": np.array([1.0, 2.0])})
    lower = SQLStorage(database_url, "sales")
    lower.write([1], {"x": np.array([10.0]), "y": np.array([5])})  # another schema: a new table
    assert SQLStorage(database_url, "Sales").read()["x"].tolist() == [1.0, 2.0]
    assert SQLStorage(database_url, "sales").read()["x"].tolist() == [10.0]


@pytest.mark.parametrize(
    ("first", "second"),
    [(("model@v2", None), ("model", "v2")), (("a/b", None), ("a_b", None)), (("m", "1"), ("m", None))],
)
def test_name_and_version_pairs_never_share_a_table(database_url, first, second):
    one = SQLStorage(database_url, *first)
    one.write([0], {"x": np.array([1.0])})
    two = SQLStorage(database_url, *second)
    assert len(two) == 0 and 0 not in two
    two.write([0], {"x": np.array([2.0])})
    assert SQLStorage(database_url, *first).read()["x"].tolist() == [1.0]
    assert SQLStorage(database_url, *second).read()["x"].tolist() == [2.0]


def test_overwrite_never_drops_a_table_the_metadata_gives_to_another_pipeline(database_url):
    owner = SQLStorage(database_url, "owner")
    owner.write([0], {"x": np.array([1.0])})
    other = SQLStorage(database_url, "other", overwrite=True)
    other.table_name = owner.table_name  # a clash: as under a digest collision or an older name
    with pytest.raises(StorageError, match="holds the outputs of pipeline 'owner'"):
        other.write([0], {"y": np.array([1])})
    assert SQLStorage(database_url, "owner").read()["x"].tolist() == [1.0]


def test_a_scalar_output_before_an_array_output_of_the_same_dtype(database_url):
    storage = SQLStorage(database_url, "mixed")
    outputs = {"s": np.array([1.5, 2.5]), "a": np.arange(6.0).reshape(2, 3)}
    storage.write([0, 1], outputs)
    back = SQLStorage(database_url, "mixed").read()
    np.testing.assert_array_equal(back["s"], outputs["s"])
    np.testing.assert_array_equal(back["a"], outputs["a"])
    positions, one = storage.lookup([1])
    assert positions.tolist() == [0] and one["a"].tolist() == [[3.0, 4.0, 5.0]]


def test_bytes_uint64_complex_and_dates_round_trip_exactly(database_url):
    outputs = {
        "bytes": np.array([b"\x00\xff", b"plain", b""]),
        "u64": np.array([0, 2**63, 2**64 - 1], dtype=np.uint64),
        "complex": np.array([1 + 2j, -0.5j, 3]),
        "when": np.array(["2026-01-01", "1970-01-01", "NaT"], dtype="datetime64[s]"),
        "words": np.array([["a", "bc"], ["", "d"], ["e\x00f", "g"]]),
    }
    SQLStorage(database_url, "exact").write([5, 6, 7], outputs)
    back = SQLStorage(database_url, "exact").read(rows=[7, 5, 6])
    for name, array in outputs.items():
        expected = array[[2, 0, 1]]
        assert back[name].dtype.kind == expected.dtype.kind, name
        np.testing.assert_array_equal(back[name], expected, err_msg=name)


def _backends(database_url, name="keys"):
    return [MemoryStorage(name), SQLStorage(database_url, name)]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([True, False], "keys are integers"),
        (np.array([True, False]), "keys of dtype bool"),
        (np.array([0, 2**64 - 1], dtype=np.uint64), "fit in int64"),
        ([0, 2**63], "fit in int64"),
        ([0.5, 1.5], "keys are integers"),
        (np.array([1.0, 2.0]), "keys of dtype float64"),
        (["a", "a\x00"], "without NUL"),
        (["x" * 256, "y"], "at most 255"),
        (["\ud800", "b"], "without NUL"),
        ([1, "1"], "duplicate keys"),
    ],
)
def test_keys_outside_the_key_domain_are_refused_on_every_backend(database_url, keys, message):
    for storage in _backends(database_url):
        with pytest.raises(StorageError, match=message):
            storage.write(keys, {"x": np.array([1.0, 2.0])})
        assert len(storage) == 0, storage


def test_keys_at_the_edges_of_the_domain_round_trip(database_url):
    for name, keys in {"ints": [-(2**63), 2**63 - 1, 0], "strs": ["x" * 255, "日本", "", "'; --"]}.items():
        for storage in _backends(database_url, name):
            storage.write(keys, {"x": np.arange(len(keys))})
            back = storage.read(rows=keys[::-1])
            assert back.index.tolist() == keys[::-1], storage
            assert back["x"].tolist() == list(range(len(keys)))[::-1], storage
            storage.delete(keys)
            assert len(storage) == 0, storage


def test_lookups_of_keys_that_cannot_be_stored_find_nothing(database_url):
    for storage in _backends(database_url):
        storage.write(["a", "b"], {"x": np.array([1.0, 2.0])})
        positions, outputs = storage.lookup(["a\x00", "b", "z" * 300, "\udfff"])
        assert positions.tolist() == [1] and outputs["x"].tolist() == [2.0], storage
        assert "a\x00" not in storage, storage
        with pytest.raises(StorageError, match="keys are integers"):
            storage.lookup([1.5])


def test_string_outputs_a_text_column_cannot_hold_are_refused(database_url):
    for storage in _backends(database_url):
        with pytest.raises(StorageError, match="without NUL"):
            storage.write([0, 1], {"s": np.array(["ok", "a\x00b"])})
        with pytest.raises(StorageError, match="without NUL"):
            storage.write([0, 1], {"s": np.array(["ok", "\ud800"])})
        assert len(storage) == 0, storage


def test_string_outputs_of_any_strides_are_checked_and_stored(database_url):
    # the check for NULs viewed the strings' code points in place, which fails on a reversed array
    strings = np.array(["a", "bé", "c\td"])
    for storage in _backends(database_url):
        storage.write([0, 1, 2], {"s": strings[::-1]})
        storage.write([3, 4], {"s": strings[::2]})
        assert storage.read()["s"].tolist() == ["c\td", "bé", "a", "a", "c\td"], storage
        with pytest.raises(StorageError, match="without NUL"):
            storage.write([5, 6], {"s": np.array(["x", "a\x00b"])[::-1]})


def test_names_a_database_cannot_hold_are_refused(database_url):
    with pytest.raises(StorageError, match="NUL"):
        SQLStorage(database_url, "bad\x00name")
    with pytest.raises(StorageError, match="NUL"):
        SQLStorage(database_url, "name", "v\x00")


def test_a_storage_holding_an_old_description_never_misreads_a_replaced_table(database_url):
    stale = SQLStorage(database_url, "churn")
    stale.write([1], {"score": np.array([[0.25, 0.75]])})
    SQLStorage(database_url, "churn", overwrite=True).write(
        [2], {"label": np.array([[1, 2, 3, 4]], np.int32)}
    )
    with pytest.raises(StorageError, match="holds outputs 'label'"):
        stale.write([3], {"score": np.array([[0.5, 0.5]])})  # refused, not written as the new table
    assert stale.read()["label"].tolist() == [[1, 2, 3, 4]]  # reads find the new table
    assert SQLStorage(database_url, "churn").read()["label"].tolist() == [[1, 2, 3, 4]]


def test_memory_storage_keeps_each_outputs_dtype_and_shape_as_sql_does(database_url):
    for first, second in [
        (np.array([2**62 + 1]), np.array([0.5])),
        (np.array([1.5]), np.array(["x"])),
        (np.zeros((1, 2)), np.zeros((1, 3))),
    ]:
        for storage in _backends(database_url, f"schema {first.dtype}{first.shape}"):
            storage.write([1], {"y": first})
            with pytest.raises(StorageError, match="holds outputs"):
                storage.write([2], {"y": second})
            assert storage.read()["y"].tolist() == first.tolist(), storage


def test_a_string_is_not_a_list_of_keys(database_url):
    for storage in _backends(database_url, "strings"):
        storage.write(["a", "b", "ab"], {"y": np.array([1.0, 2.0, 3.0])})
        for call in (storage.delete, storage.read, storage.lookup):
            with pytest.raises(StorageError, match="list or array of keys"):
                call("ab")
        with pytest.raises(StorageError, match="list or array of keys"):
            storage.read(rows=1)
        assert storage.keys() == ["a", "ab", "b"], storage


def test_string_and_bytes_arrays_of_any_width_in_later_batches(database_url):
    for storage in _backends(database_url, "widths"):
        storage.write([1], {"up": np.array([["a", "b"]]), "raw": np.array([[b"\x00x", b""]])})
        storage.write([2], {"up": np.array([["abc", "de"]]), "raw": np.array([[b"long bytes", b"y"]])})
        back = storage.read(rows=[2, 1])
        assert back["up"].tolist() == [["abc", "de"], ["a", "b"]], storage
        assert back["raw"].tolist() == [[b"long bytes", b"y"], [b"\x00x", b""]], storage


@pytest.mark.parametrize(
    "array",
    [
        np.array([1.5, -2.0], dtype=np.longdouble),
        np.array([2**64 - 1, 7], dtype=">u8"),
        np.array([1.5, -3.25], dtype=">f8"),
    ],
    ids=str,
)
def test_wide_and_big_endian_scalars_round_trip(database_url, array):
    for storage in _backends(database_url, f"wide {array.dtype.str}"):
        storage.write([1, 2], {"y": array, "z": np.array([1.0, 2.0])})
        back = storage.read()
        np.testing.assert_array_equal(back["y"], array)
        assert back["y"].dtype.kind == array.dtype.kind and back["y"].dtype.itemsize == array.dtype.itemsize


def test_only_an_ints_own_string_form_finds_it(database_url):
    for storage in _backends(database_url, "minus zero"):
        storage.write([0], {"y": np.array([1.0])})
        with pytest.raises(StorageError, match="integer keys"):
            storage.write(["-0"], {"y": np.array([9.0])})
        assert "-0" not in storage and "0" in storage
        assert storage.read()["y"].tolist() == [1.0], storage


def test_bad_arguments_are_storage_errors(database_url, tmp_path):
    for storage in _backends(database_url, "arguments"):
        with pytest.raises(StorageError, match="mapping"):
            storage.write([1], None)
        with pytest.raises(StorageError, match="object arrays"):
            storage.write([1], {"y": np.array([object()])})
        storage.write(np.array([]), {"y": np.array([])})  # an empty index of any dtype stores nothing
        assert len(storage) == 0, storage
    with pytest.raises(StorageError, match="name is a string"):
        SQLStorage(database_url, None)
    assert SQLStorage(database_url, "versioned", 2).version == "2"
    with pytest.raises(StorageError, match="could not read the description"):
        SQLStorage(f"sqlite:///{tmp_path / 'missing' / 'dir.db'}", "x")
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="could not read the description"):
        SQLStorage(f"sqlite:///{tmp_path / 'junk.db'}", "x")


def test_reads_of_a_storage_with_nothing_stored_have_the_asked_outputs():
    storage = MemoryStorage("empty")
    assert storage.read(cols=["y"])["y"].shape == (0,)
    storage.write([3, 1], {"y": np.zeros((2, 2), np.float32)})
    assert storage.keys() == [1, 3]  # in order, as SQL lists them
    none = storage.read(rows=[])["y"]
    assert none.shape == (0, 2) and none.dtype == np.float32


def test_an_in_memory_sqlite_storage_is_one_database_for_every_thread():
    storage = SQLStorage("sqlite://", "threads")
    storage.write([1], {"y": np.array([2.0])})
    seen, errors = [], []

    def work(i):
        try:
            for j in range(20):
                storage.write([1000 * i + j], {"y": np.array([float(i)])})
                seen.append(storage.read(rows=[1])["y"].tolist())
        except Exception as exc:  # a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert seen == [[2.0]] * 160
    assert len(storage.keys()) == 161
