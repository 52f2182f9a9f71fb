"""The storage conformance suite: what every storage backend must do."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
import numpy as np

from megatron.errors import MegatronError, MissingKeyError, StorageError
from megatron.outputs import Outputs
from megatron.storage.base import Storage


@attrs.frozen
class StorageCase:
    """How to open a fresh, empty storage of a backend for pipeline ``name``/``version``
    (``make``), and how to open what a storage wrote anew, as another process would
    (``reopen``; the storage itself where that is all there is, as in memory)."""

    make: Callable[[str, str | None], Storage]
    name: str = "storage"
    reopen: Callable[[Storage], Storage] | None = None
    examples: int = 30
    """How many generated examples each property check runs."""

    def fresh(self, storage: Storage) -> Storage:
        return storage if self.reopen is None else self.reopen(storage)

    def __str__(self) -> str:
        return self.name


OUTPUTS = {
    "int": np.array([3, -1, 7], dtype=np.int64),
    "float": np.array([0.5, np.nan, -np.inf]),
    "float32": np.array([1.5, 2.5, 3.5], dtype=np.float32),
    "bool": np.array([True, False, True]),
    "text": np.array(["a", "bé", "c'; --"]),
    "matrix": np.arange(12, dtype=np.float32).reshape(3, 2, 2),
}


def check_round_trip(case: StorageCase) -> None:
    """Every dtype and shape reads back exactly, under int keys."""
    storage = case.make("conformance_types", "1")
    storage.write([10, 20, 30], OUTPUTS)
    back = storage.read()
    assert list(back) == list(OUTPUTS), f"{case}: outputs {list(back)}"
    assert back.index.tolist() == [10, 20, 30], f"{case}: keys {back.index.tolist()}"
    for name, array in OUTPUTS.items():
        np.testing.assert_array_equal(back[name], array, err_msg=f"{case}: {name}")
        assert back[name].shape == array.shape, f"{case}: {name} shape {back[name].shape}"


def check_order_keys_and_missing(case: StorageCase) -> None:
    """Rows come in the order asked, by int or string key; missing keys are an error."""
    storage = case.make("conformance_order", None)
    storage.write(np.arange(5), {"x": np.arange(5) * 10})
    assert storage.read(rows=["3", 0, 4])["x"].tolist() == [30, 0, 40], str(case)
    assert 3 in storage and "3" in storage and 9 not in storage, str(case)
    try:
        storage.read(rows=[1, 9])
    except MissingKeyError:
        pass
    else:
        raise AssertionError(f"{case}: reading a missing key did not raise MissingKeyError")


def check_lookups_of_any_size(case: StorageCase) -> None:
    """Lookups of one key, a few and many, by int and by string key, with keys missing or
    asked twice: the found positions and their rows, in the order asked."""
    rng = np.random.default_rng(0)
    for keys in (np.arange(0, 600, 2), np.array([f"k{i}" for i in range(0, 600, 2)])):
        storage = case.make(f"conformance_lookup_{keys.dtype.kind}", None)
        storage.write(keys, {"x": np.arange(300) * 2.0, "s": np.array([f"v{i}" for i in range(300)])})
        stored = set(keys.tolist())
        for size in (1, 5, 50, 250):
            asked = rng.choice(np.concatenate([keys, keys[:1]]), size=size).tolist()  # some twice
            asked += [10**6 if keys.dtype.kind == "i" else "missing"] * (size > 1)
            positions, outputs = storage.lookup(np.asarray(asked) if size == 50 else asked)  # arrays too
            expected = [i for i, k in enumerate(asked) if k in stored]
            assert positions.tolist() == expected, f"{case}: positions for {size} keys"
            numbers = [int(str(asked[i]).lstrip("k")) for i in expected]
            assert outputs["x"].tolist() == [float(n) for n in numbers], f"{case}: {size} keys"
            assert outputs["s"].tolist() == [f"v{n // 2}" for n in numbers], f"{case}: {size} keys"
            assert outputs.index.tolist() == [asked[i] for i in expected], f"{case}: index"
        for nothing in ([-1 if keys.dtype.kind == "i" else "none"], []):
            positions, outputs = storage.lookup(nothing)
            assert positions.tolist() == [] and outputs["x"].shape == (0,), f"{case}: lookup {nothing}"


def check_upsert_and_delete(case: StorageCase) -> None:
    """A write replaces the rows of existing keys; delete removes rows."""
    storage = case.make("conformance_upsert", None)
    storage.write(["a", "b"], {"x": np.array([1.0, 2.0])})
    storage.write(["b", "c"], {"x": np.array([20.0, 30.0])})
    assert storage.read(rows=["a", "b", "c"])["x"].tolist() == [1.0, 20.0, 30.0], str(case)
    storage.delete(["a", "zzz"])
    assert sorted(storage.keys()) == ["b", "c"], f"{case}: keys {storage.keys()}"


def check_fingerprints(case: StorageCase) -> None:
    """A lookup by fingerprint finds only the rows written with it."""
    storage = case.make("conformance_fingerprint", None)
    storage.write([1, 2], {"x": np.array([1.0, 2.0])}, fingerprint="a" * 32)
    storage.write([2], {"x": np.array([3.0])}, fingerprint="b" * 32)
    found, outputs = storage.lookup([1, 2, 3], fingerprint="a" * 32)
    assert found.tolist() == [0], f"{case}: found positions {found.tolist()}"
    assert outputs["x"].tolist() == [1.0], str(case)


def check_failed_write_changes_nothing(case: StorageCase) -> None:
    """A refused write leaves the stored rows as they were."""
    storage = case.make("conformance_atomic", None)
    storage.write([1, 2], {"x": np.array([1.0, 2.0])})
    try:
        storage.write([2, 2], {"x": np.array([5.0, 6.0])})
    except (StorageError, MegatronError):
        pass
    else:
        raise AssertionError(f"{case}: a write with duplicate keys was accepted")
    assert storage.read()["x"].tolist() == [1.0, 2.0], str(case)


def check_write_forms(case: StorageCase) -> None:
    """``write(outputs)`` stores an :class:`Outputs` under its own index as ``write(index,
    mapping)`` stores the mapping's arrays under ``index``, with the fingerprint given by
    position or keyword (no index: keys 0..n-1); both refuse the same keys the same way."""
    keys = ["b", "a", "c"]
    with contextlib.ExitStack() as opened:
        whole = _outcome(
            case,
            opened,
            "conformance_forms_outputs",
            lambda s: s.write(Outputs(list(OUTPUTS), list(OUTPUTS.values()), keys), "a" * 32),
        )
        parts = _outcome(
            case, opened, "conformance_forms_mapping", lambda s: s.write(keys, OUTPUTS, fingerprint="a" * 32)
        )
        assert isinstance(whole, Outputs) and isinstance(parts, Outputs), f"{case}: {whole}, {parts}"
        _assert_same_rows(case, whole, parts)
        storage = opened.enter_context(case.make("conformance_forms_fingerprints", None))
        storage.write(Outputs(["x"], [np.array([5.0, 6.0])]), "a" * 32)  # no index: keys 0 and 1
        assert storage.lookup([0, 1], fingerprint="a" * 32)[0].tolist() == [0, 1], (
            f"{case}: write(outputs, fp)"
        )
        storage.write(storage.read(rows=[1]), fingerprint="b" * 32)  # what read gives writes back
        assert storage.lookup([0, 1], fingerprint="b" * 32)[0].tolist() == [1], f"{case}: fingerprint="
    refused: list[list[Any]] = [[0, 2**63], ["a", "a"], [1, "1"], ["a\x00"], [True], [0.5]]
    for i, bad in enumerate(refused):
        outputs = Outputs(["x"], [np.zeros(len(bad))], bad)
        _ = outputs.index  # an array of the keys, made as a caller may: the keys given are still checked
        with contextlib.ExitStack() as opened:
            one, other = (
                _outcome(
                    case,
                    opened,
                    f"conformance_refused_{whole}_{i}",
                    partial(_write, whole=whole, outputs=outputs),
                )
                for whole in (True, False)
            )
        assert isinstance(one, str) and one == other, f"{case}: keys {bad!r}: {one}, {other}"


def check_generated_write_forms(case: StorageCase) -> None:
    """``write(Outputs(names, arrays, keys))`` and ``write(keys, dict(zip(names, arrays)))``
    agree on generated schemas and keys (inside and outside the key domain, lists, tuples and
    arrays): the same rows read back, or the same StorageError."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from megatron.testing import strategies as gen

    counter = iter(range(10**9))

    @settings(
        max_examples=max(1, case.examples // 2),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(data=st.data(), schema=gen.output_schemas(), keys=gen.any_keys(max_size=6))
    def prop(data: Any, schema: tuple[Any, ...], keys: Any) -> None:
        run = next(counter)
        batch = data.draw(gen.output_values(schema, len(keys)))
        outputs = Outputs(list(batch), list(batch.values()), keys)
        with contextlib.ExitStack() as opened:
            one, other = (
                _outcome(
                    case,
                    opened,
                    f"conformance_form_{whole}#{run}",
                    partial(_write, whole=whole, outputs=outputs),
                )
                for whole in (True, False)
            )
            if isinstance(one, Outputs) and isinstance(other, Outputs):
                _assert_same_rows(case, one, other)
            else:
                assert one == other, f"{case}: keys {keys!r}: {one}, {other}"

    prop()


def check_generated_writes(case: StorageCase) -> None:
    """Generated output schemas written in random overlapping batches (in either form of
    ``write``) under generated keys read back exactly from a freshly opened storage, or are
    refused whole with a StorageError when a key is outside the key domain; a look-alike
    pipeline's rows are never touched."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from megatron.testing import strategies as gen

    counter = iter(range(10**9))

    @settings(
        max_examples=case.examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(data=st.data(), schema=gen.output_schemas(), names=gen.lookalike_names())
    def prop(data: Any, schema: tuple[Any, ...], names: Any) -> None:
        run = next(counter)
        (name, version), (other_name, other_version) = names
        with contextlib.ExitStack() as opened:  # close each storage, so no connection lingers
            storage = opened.enter_context(case.make(f"{name}#{run}", version))
            neighbour = opened.enter_context(case.make(f"{other_name}#{run}", other_version))
            neighbour.write([0], data.draw(gen.output_values(schema, 1), label="neighbour"))
            expected_neighbour = neighbour.read()
            model = _write_batches(case, data, schema, storage)
            keys = list(model)
            reader = opened.enter_context(_reader(case, storage))
            back = reader.read(rows=keys)
            assert back.index.tolist() == keys, f"{case}: keys {back.index.tolist()} != {keys}"
            assert sorted(reader.keys(), key=repr) == sorted(keys, key=repr), f"{case}: stored keys"
            for output in schema if keys else ():
                want = np.stack([model[k][output.name] for k in keys])
                got = back[output.name]
                assert got.shape == want.shape, f"{case}: {output} shape {got.shape} != {want.shape}"
                assert got.dtype.kind == want.dtype.kind, f"{case}: {output} dtype {got.dtype}"
                np.testing.assert_array_equal(got, want, err_msg=f"{case}: {output}")
            again = opened.enter_context(_reader(case, neighbour)).read()
            for output in schema:
                np.testing.assert_array_equal(again[output.name], expected_neighbour[output.name], str(case))

    prop()


def _write_batches(case: StorageCase, data: Any, schema: tuple[Any, ...], storage: Storage) -> dict[Any, Any]:
    """Write one to three generated batches to ``storage``, each in either form of ``write``;
    the rows it must then hold, by key."""
    from hypothesis import strategies as st

    from megatron.testing import strategies as gen

    model: dict[Any, dict[str, np.ndarray]] = {}
    for _ in range(data.draw(st.integers(1, 3), label="batches")):
        keys = data.draw(gen.key_sets(max_size=8) | st.lists(gen.OUT_OF_DOMAIN_KEYS, min_size=1, max_size=3))
        if model and keys and type(next(iter(model))) is not type(keys[0]):
            continue  # a storage keeps one key type
        batch = data.draw(gen.output_values(schema, len(keys)))
        try:
            outputs = Outputs(list(batch), list(batch.values()), keys)
            _write(storage, data.draw(st.booleans(), label="write(outputs)"), outputs)
        except StorageError:
            if gen.keys_in_domain(keys):
                raise
            continue
        assert gen.keys_in_domain(keys), f"{case}: keys {keys!r} outside the key domain were stored"
        for i, key in enumerate(keys):
            model[key] = {n: a[i] for n, a in batch.items()}
    return model


def _outcome(
    case: StorageCase, opened: contextlib.ExitStack, name: str, write: Callable[[Storage], None]
) -> Outputs | str:
    """What a fresh storage ``name`` holds after ``write(storage)``, read from a fresh instance
    (closed with ``opened``); or the message of the StorageError refusing the write, which
    must leave it empty."""
    storage = opened.enter_context(case.make(name, None))
    try:
        write(storage)
    except StorageError as error:
        message = str(error)
    else:
        return opened.enter_context(_reader(case, storage)).read()
    assert len(storage) == 0, f"{case}: a refused write stored rows ({message})"
    return message


def _write(storage: Storage, whole: bool, outputs: Outputs) -> None:
    """Write ``outputs`` as they are (``whole``), or as the keys they were given and a
    mapping of their arrays."""
    if whole:
        storage.write(outputs)
    else:
        storage.write(outputs.given_index, dict(outputs))


def _reader(case: StorageCase, storage: Storage) -> contextlib.AbstractContextManager[Storage]:
    """A fresh instance on what ``storage`` wrote, closed on exit; ``storage`` itself (left
    open) where the case has no other."""
    fresh = case.fresh(storage)
    return contextlib.nullcontext(fresh) if fresh is storage else fresh


def _assert_same_rows(case: StorageCase, one: Outputs, other: Outputs) -> None:
    assert one.index.tolist() == other.index.tolist(), f"{case}: keys {one.index} != {other.index}"
    assert list(one) == list(other), f"{case}: outputs {list(one)} != {list(other)}"
    for name in one:
        assert one[name].dtype == other[name].dtype, f"{case}: {name!r} dtype {one[name].dtype}"
        np.testing.assert_array_equal(one[name], other[name], err_msg=f"{case}: {name!r}")


def storage_checks() -> list[Callable[[StorageCase], None]]:
    """Every storage check, for ``pytest.mark.parametrize``."""
    return [
        check_round_trip,
        check_order_keys_and_missing,
        check_lookups_of_any_size,
        check_upsert_and_delete,
        check_fingerprints,
        check_failed_write_changes_nothing,
        check_write_forms,
        check_generated_writes,
        check_generated_write_forms,
    ]
