"""``hypothesis`` strategies for what flows into storage: output schemas and their batches, keys
inside and outside the key domain, and pipeline names and versions that look alike.

Needs ``hypothesis`` (``pip install -e "packages/megatron-core[testing]"``). A third-party
storage backend runs the same properties through
:func:`megatron.testing.storage.check_generated_writes` and
:func:`~megatron.testing.storage.check_generated_write_forms`.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from megatron.storage.domain import INT64_MAX, INT64_MIN, MAX_KEY_LENGTH

NUMERIC_DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)

# text that a text column can hold: no NUL, no lone surrogate
TEXT = st.characters(codec="utf-8", exclude_characters="\x00")
TRICKY_TEXT = st.sampled_from(["'", '"', ";", "--", "%s", "?", ":k0", "\\", "日本", "é", "🙂", " "])
# strings mixing any text with quotes, comment markers, placeholder-like and non-ASCII text
STRINGS = st.lists(st.text(TEXT, max_size=4) | TRICKY_TEXT, max_size=4).map("".join)


@attrs.frozen
class OutputSchema:
    """One output: its name, dtype (a numpy dtype, ``'str'`` or ``'bytes'``) and shape per row."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def array_dtype(self) -> np.dtype:
        if self.dtype == "str":
            return np.dtype("<U4") if self.shape else np.dtype("<U8")
        if self.dtype == "bytes":
            return np.dtype("S4") if self.shape else np.dtype("S8")
        return np.dtype(self.dtype)


@st.composite
def output_schemas(draw: st.DrawFn, max_outputs: int = 4) -> tuple[OutputSchema, ...]:
    """Outputs of every numeric dtype, bool, str and bytes, scalar or array, in any order and
    mix, under names with any printable characters."""
    names = draw(st.lists(STRINGS.filter(bool), min_size=1, max_size=max_outputs, unique=True))
    schemas = []
    for name in names:
        dtype = draw(st.sampled_from((*NUMERIC_DTYPES, "str", "bytes")))
        shape = draw(st.sampled_from(((), (), (1,), (3,), (2, 2))))
        schemas.append(OutputSchema(name, dtype, shape))
    return tuple(schemas)


def output_values(schema: tuple[OutputSchema, ...], rows: int) -> st.SearchStrategy[dict[str, np.ndarray]]:
    """A batch of ``rows`` rows of ``schema``: NaN, infinities and extremes included."""
    strategies = {}
    for output in schema:
        dtype = output.array_dtype()
        elements = None
        if dtype.kind == "U":
            elements = st.text(TEXT, max_size=dtype.itemsize // 4)
        strategies[output.name] = hnp.arrays(dtype, (rows, *output.shape), elements=elements)
    return st.fixed_dictionaries(strategies)


INT_KEYS = st.integers(INT64_MIN, INT64_MAX) | st.sampled_from([INT64_MIN, INT64_MAX, 0, -1])
STR_KEYS = STRINGS | st.text(TEXT, min_size=250, max_size=MAX_KEY_LENGTH)
OUT_OF_DOMAIN_KEYS: st.SearchStrategy[Any] = st.one_of(
    st.booleans(),
    st.floats(),
    st.integers(INT64_MAX + 1, 2**80) | st.integers(-(2**80), INT64_MIN - 1),
    st.text(min_size=1, max_size=4).map(lambda s: s + "\x00" + s),
    st.text(min_size=MAX_KEY_LENGTH + 1, max_size=MAX_KEY_LENGTH + 20),
    st.sampled_from(["\ud800", "a\udfffb", None, b"bytes", (1, 2)]),
)


def key_sets(min_size: int = 0, max_size: int = 20) -> st.SearchStrategy[list[Any]]:
    """Distinct keys of one type: int64 integers (extremes included) or strings (quotes,
    unicode, placeholder-like text, up to the longest allowed)."""
    return st.lists(INT_KEYS, min_size=min_size, max_size=max_size, unique=True) | st.lists(
        STR_KEYS, min_size=min_size, max_size=max_size, unique=True
    )


def any_keys(max_size: int = 8) -> st.SearchStrategy[Any]:
    """Keys as a write may be given: distinct keys of one type, keys outside the key domain, or
    a mix of both kinds with duplicates (``1`` and ``'1'`` are one key); as a list, a tuple or
    a numpy array (whatever dtype numpy gives them)."""
    mixed = st.lists(INT_KEYS | STR_KEYS | OUT_OF_DOMAIN_KEYS | st.sampled_from([1, "1"]), max_size=max_size)
    keys = key_sets(max_size=max_size) | st.lists(OUT_OF_DOMAIN_KEYS, min_size=1, max_size=3) | mixed
    return st.tuples(keys, st.sampled_from([list, tuple, _array_or_list])).map(
        lambda drawn: drawn[1](drawn[0])
    )


def _array_or_list(keys: list[Any]) -> Any:
    try:
        return np.asarray(keys)
    except (ValueError, TypeError, OverflowError):  # keys numpy cannot put in one array
        return keys


def keys_in_domain(keys: list[Any]) -> bool:
    """Whether every key is one storage must keep: an int64 integer, or a string of at most
    :data:`MAX_KEY_LENGTH` characters without NUL that UTF-8 can encode."""

    def ok(key: Any) -> bool:
        if isinstance(key, bool):
            return False
        if isinstance(key, int):
            return INT64_MIN <= key <= INT64_MAX
        if isinstance(key, str):
            try:
                key.encode()
            except UnicodeEncodeError:
                return False
            return len(key) <= MAX_KEY_LENGTH and "\x00" not in key
        return False

    return all(map(ok, keys))


@st.composite
def lookalike_names(draw: st.DrawFn) -> tuple[tuple[str, str | None], tuple[str, str | None]]:
    """Two different (pipeline name, version) pairs that a careless mapping to table names
    would confuse: case variants, ``@`` and ``/`` against a version, ``_`` for ``/``."""
    base = draw(st.text(st.characters(categories=("Lu", "Ll", "Nd")) | st.sampled_from("@/_-. "), min_size=1))
    version = draw(st.none() | st.text(st.sampled_from("v0123.@/"), min_size=1, max_size=4))
    first = (base, version)
    candidates = [
        (base.swapcase(), version),
        (base.upper(), version),
        (f"{base}@{version}", None),
        (base.replace("/", "_"), version),
        (base.replace("_", "/"), version),
        (f"{base}/{version}", None),
        (base, None if version is not None else "1"),
        (base + " ", version),
    ]
    second = draw(st.sampled_from([c for c in candidates if c != first] or [(base + "x", version)]))
    return first, second


@st.composite
def column_selections(draw: st.DrawFn, columns: list[str]) -> dict[str, Any]:
    """A source's keyword arguments selecting among ``columns``: an index column, excluded
    columns and a group ``"g"`` stacking several, each perhaps absent (see
    :func:`megatron.testing.sources.selected_columns` for what a source must give)."""
    index_col = draw(st.none() | st.sampled_from(columns))
    rest = [c for c in columns if c != index_col]
    excluded = draw(st.lists(st.sampled_from(rest), unique=True, max_size=2))
    free = [c for c in rest if c not in excluded]
    grouped = draw(st.lists(st.sampled_from(free), unique=True, max_size=3))
    return {"exclude_cols": excluded, "groups": {"g": grouped} if grouped else None, "index_col": index_col}
