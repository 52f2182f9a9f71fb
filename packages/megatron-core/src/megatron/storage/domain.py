"""What storage holds, checked the same way by every backend before a write changes anything.

Keys are integers in the int64 range or strings of at most :data:`MAX_KEY_LENGTH` characters,
valid Unicode without NUL. Booleans, floats and anything else are refused rather than stored
under a key that would not come back the same. A storage keeps one key type: the first write
decides it (integers only: int; anything else: str), and later keys are converted to it
(``'7'`` finds the int key 7; the int 7 is the str key ``'7'``).

A string output (one string per observation) is stored as text, so it too must be valid
Unicode without NUL. Arrays of any fixed-size dtype, strings and bytes included, are stored as
their raw bytes and may hold anything.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, overload

import attrs
import numpy as np

from megatron.errors import StorageError
from megatron.outputs import Outputs

Key = int | str

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_KEY_LENGTH = 255
"""The longest string key, in characters, on every backend (PostgreSQL's key column is
``VARCHAR(255)``)."""

_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]*")  # as str(n) writes an int n: not '-0', '007', '+7'


@attrs.frozen
class Write:
    """A checked write: its keys (Python ints or strs, of the storage's key type), output names,
    arrays, and each output's schema (see :func:`output_schema`)."""

    keys: list[Key]
    int_keys: bool
    names: list[str]
    arrays: list[np.ndarray]
    schemas: list[tuple[str, tuple[int, ...]]]


def output_schema(name: str, array: np.ndarray) -> tuple[str, tuple[int, ...]]:
    """What every write of an output must keep: its dtype (``'str'`` or ``'bytes'`` for text and
    bytes of any width; otherwise the dtype, little-endian) and its shape per row."""
    dtype = array.dtype
    if dtype.kind in "OV" or dtype.itemsize == 0:
        raise StorageError(
            f"Cannot store output {name!r} of dtype {dtype}: only numbers, booleans, dates, strings, bytes "
            "and fixed-shape arrays of them are stored (no object arrays, no pickle)."
        )
    tag = {"U": "str", "S": "bytes"}.get(dtype.kind) or dtype.newbyteorder("<").str
    return tag, tuple(int(d) for d in array.shape[1:])


def key_array(index: Any) -> np.ndarray:
    """A write's index as a one-dimensional array of its keys, unchecked. A list's or tuple's
    values stay as they are (an object array): numpy would turn ``[0, 2**63]`` into floats."""
    array = np.array(index, dtype=object) if isinstance(index, list | tuple) else np.asarray(index)
    if array.size == 0:
        return array.astype(np.int64)  # no keys: whatever dtype an empty index came in
    return array


def as_outputs(index: Any, outputs: Any) -> Outputs:
    """The arguments of ``write(index, outputs)`` as the :class:`Outputs` that
    ``write(outputs)`` takes: ``outputs``'s arrays under the keys of ``index``, as given (they
    are checked by :func:`checked_outputs`)."""
    if not isinstance(outputs, Mapping):
        raise StorageError(
            f"Cannot store outputs: expected a mapping of output name to array; got {outputs!r:.80}."
        )
    if isinstance(index, str | bytes):
        raise StorageError(
            f"Cannot store rows under the index {index!r:.80}: expected a list or array of keys."
        )
    return Outputs(tuple(outputs), [outputs[name] for name in outputs], key_array(index))


def checked_outputs(outputs: Outputs, int_keys: bool | None = None) -> Write:
    """A write of ``outputs`` under its own keys (:attr:`Outputs.given_index`), checked: keys in
    the key domain, converted to the storage's key type ``int_keys`` (decided from the keys when
    None), one row per key in every output, no key twice, and string outputs that text columns
    can hold. Every backend checks its writes with this before changing anything."""
    index = key_array(outputs.given_index)
    if index.ndim != 1:
        raise StorageError(f"Cannot store rows: the index must be one key per row; got shape {index.shape}.")
    keys, all_ints = _checked_keys(index)
    if int_keys is None:
        int_keys = all_ints
    if int_keys != all_ints or (not int_keys and index.dtype.kind == "O"):  # ints among str keys
        keys = [to_key_type(k, int_keys, strict=True) for k in keys]
    names = list(outputs)
    for name in names:
        if not isinstance(name, str) or not _storable_text(name):
            raise StorageError(
                f"Cannot store output {name!r}: output names are strings without NUL characters."
            )
    arrays = [np.asarray(outputs[n]) for n in names]
    schemas = []
    for name, array in zip(names, arrays):
        if array.ndim == 0 or len(array) != len(keys):
            rows = "a scalar" if array.ndim == 0 else f"{len(array)} rows"
            raise StorageError(f"Cannot store output {name!r}: {rows} for an index of {len(keys)} keys.")
        schemas.append(output_schema(name, array))
        if array.dtype.kind == "U" and array.ndim == 1:
            _check_text(array, f"output {name!r}")
    # an increasing integer index (the usual one) holds no duplicates: no set to build
    increasing = index.dtype.kind in "iu" and bool((np.diff(index) > 0).all())
    if not increasing and len(set(keys)) != len(keys):
        repeated = [key for key, n in collections.Counter(keys).items() if n > 1][:5]
        raise StorageError(
            f"Cannot store rows: the index holds duplicate keys (such as {repeated}); one row is "
            "stored per key, so each key may appear once in a write."
        )
    return Write(keys, int_keys, names, arrays, schemas)


def checked_write(
    index: Sequence[Key] | np.ndarray,
    outputs: Mapping[str, Any],
    int_keys: bool | None = None,
) -> Write:
    """:func:`checked_outputs` of the arguments of ``write(index, outputs)``."""
    return checked_outputs(as_outputs(index, outputs), int_keys)


def _checked_keys(index: np.ndarray) -> tuple[list[Key], bool]:
    """The keys of a one-dimensional index as Python values, and whether all are ints."""
    kind = index.dtype.kind
    if kind in "iu":
        if index.size and kind == "u" and int(index.max()) > INT64_MAX:
            raise StorageError(f"Cannot store key {int(index.max())}: integer keys must fit in int64.")
        return index.tolist(), True
    if kind == "U":
        keys = index.tolist()
        _check_string_keys(keys)
        return keys, False
    if kind != "O":
        raise StorageError(
            f"Cannot store rows under keys of dtype {index.dtype}: keys are integers (int64) or strings."
        )
    keys = [key_value(k) for k in index.tolist()]
    strings = [k for k in keys if type(k) is str]
    _check_string_keys(strings)
    return keys, not strings


def key_value(key: Any) -> Key:
    """A user's key as a Python int or str in the key domain, or a :class:`StorageError`."""
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        if not INT64_MIN <= key <= INT64_MAX:
            raise StorageError(f"Cannot use key {key}: integer keys must fit in int64.")
        return int(key)
    raise StorageError(
        f"Cannot use key {key!r} of type {type(key).__name__}: keys are integers (int64) or strings."
    )


@overload
def to_key_type(key: Any, int_keys: bool, strict: Literal[True]) -> Key: ...
@overload
def to_key_type(key: Any, int_keys: bool, strict: bool = False) -> Key | None: ...
def to_key_type(key: Any, int_keys: bool, strict: bool = False) -> Key | None:
    """``key`` as a key of a storage with int keys (``int_keys``) or str keys: ``'7'`` is the
    int key 7 and 7 the str key ``'7'``. A string that is no integer's canonical form has no
    int key: None, or a :class:`StorageError` when ``strict``."""
    key = key_value(key)
    if int_keys and type(key) is str:
        if _CANONICAL_INT.fullmatch(key) and INT64_MIN <= int(key) <= INT64_MAX:
            return int(key)
        if strict:
            raise StorageError(f"Cannot store key {key!r}: this storage has integer keys.")
        return None
    if not int_keys and type(key) is int:
        return str(key)
    return key


def lookup_keys(rows: Iterable[Any], int_keys: bool) -> tuple[list[Any], list[Key | None]]:
    """The keys asked for, as given, and each as the storage's key type (None where no row can
    have it: a string that is no integer in an int-keyed storage, a string too long or with a
    NUL in a str-keyed one)."""
    asked = rows if type(rows) is list else key_list(rows)
    key_type = int if int_keys else str
    if len(asked) == 1:  # the cache's one-row case, first
        key = asked[0]
        if int_keys:
            if type(key) is int and INT64_MIN <= key <= INT64_MAX:
                return asked, asked
        elif type(key) is str and _storable_text(key):
            return asked, asked
    elif not asked:
        return asked, []
    elif set(map(type, asked)) == {key_type}:
        if int_keys and min(asked) >= INT64_MIN and max(asked) <= INT64_MAX:
            return asked, asked
        if not int_keys and max(map(len, asked)) <= MAX_KEY_LENGTH:
            joined = "".join(asked)
            if "\x00" not in joined and not _SURROGATE.search(joined):
                return asked, asked
    converted = [to_key_type(k, int_keys) for k in asked]
    if not int_keys:
        converted = [k if _storable_text(k) else None for k in converted]  # type: ignore[arg-type]
    return asked, converted


def _storable_text(key: str) -> bool:
    return len(key) <= MAX_KEY_LENGTH and "\x00" not in key and not _SURROGATE.search(key)


_SURROGATE = re.compile("[\ud800-\udfff]")


def key_list(rows: Iterable[Any]) -> list[Any]:
    """Keys as a list of Python values (an array's elements as ints or strings, not numpy
    scalars)."""
    if type(rows) is np.ndarray:
        return rows.tolist()
    if isinstance(rows, str | bytes) or not hasattr(rows, "__iter__"):
        raise StorageError(f"Expected a list or array of keys; got {rows!r:.80} (for one key, pass [key]).")
    return list(rows)


def _check_text(strings: np.ndarray, what: str) -> None:
    """Refuse strings that a text column cannot hold: a NUL inside, or a lone surrogate (no
    UTF-8 form)."""
    if not strings.size or strings.dtype.itemsize == 0:
        return
    codes = np.ascontiguousarray(strings).reshape(-1).view(np.uint32).reshape(strings.size, -1)  # any strides
    # numpy pads with NULs: a NUL followed by any other character is one the string holds
    nul = (codes[:, :-1] == 0) & (codes[:, 1:] != 0)
    surrogate = (codes >= 0xD800) & (codes <= 0xDFFF)
    bad = np.flatnonzero(nul.any(axis=1) | surrogate.any(axis=1))
    if bad.size:
        value = strings.reshape(-1)[bad[0]]
        raise StorageError(
            f"Cannot store {what} {value!r}: stored strings are valid Unicode without NUL characters "
            "(store such values as bytes, or as an array output)."
        )


def _check_string_keys(keys: list[str]) -> None:
    if not keys:
        return
    if max(map(len, keys)) > MAX_KEY_LENGTH:
        longest = max(keys, key=len)
        raise StorageError(
            f"Cannot store key {longest[:20]!r}... of {len(longest)} characters: string keys hold at most "
            f"{MAX_KEY_LENGTH}."
        )
    joined = "".join(keys)
    if "\x00" in joined or _SURROGATE.search(joined):
        bad = next(k for k in keys if not _storable_text(k))
        raise StorageError(f"Cannot store key {bad!r}: string keys are valid Unicode without NUL characters.")
