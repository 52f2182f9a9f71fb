"""Fuzzing the save format: whatever is done to a pipeline file (flipped or cut bytes, wrong
JSON types, mutated, missing or extra members, lying sizes, damaged artifacts), loading and
auditing it either succeed or raise PersistenceError, never another exception. And a small
file made to inflate (one array named many times, ``.npz`` members of an artifact, nested
ones, a description of many small values) is refused within the limits: what loading and
auditing allocate stays under twice ``max_total_bytes``, whatever the file declares.

Budget: 200 examples of damage and 40 of inflation, over pipelines with fitted arrays, a
function and a scikit-learn estimator (a skops artifact); about 7 seconds in all (3 s of
damage, 3 s of inflation traced by tracemalloc, 1 s to build the pipeline).
"""

import contextlib
import io
import json
import tempfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import PersistenceError
from megatron.nodes import Input
from megatron.persistence import Limits, audit_report

from .test_persistence_limits import npy_header, raw_zip

sklearn = pytest.importorskip("sklearn")
pytest.importorskip("megatron_sklearn")


@pytest.fixture(scope="module")
def original() -> dict[str, bytes]:
    """The members of a saved pipeline: arrays, a function, an estimator, a metric."""
    from sklearn.preprocessing import StandardScaler

    from megatron_sklearn import Sklearn

    x, y = Input("x", (3,)), Input("y")
    white = layers.Whiten()(x, "white")
    scaled = Sklearn(StandardScaler())(white, "scaled")
    negated = layers.Lambda(np.negative, output_shape=(3,))(scaled, "negated")
    megatron.metrics.Accuracy()([y, layers.OneHotRange(0, 1)(y)], "acc")
    pipeline = megatron.Pipeline([x, y], [white, negated], name="fuzzed", version="1")
    rng = np.random.default_rng(0)
    pipeline.fit({"x": rng.normal(size=(16, 3)), "y": rng.integers(0, 2, 16)})
    with tempfile.TemporaryDirectory() as folder:
        path = pipeline.save(folder)
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist()}


def pack(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def unpack(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
tags = st.sampled_from(
    ["__array__", "__float__", "__dtype__", "__tuple__", "__dict__", "__function__", "__artifact__"]
)
tagged = st.builds(lambda tag, value: {tag: value}, tags, json_values)
hostile_values = json_values | tagged | st.integers(0, 5).map(lambda n: "[" * (10**n) + "]" * (10**n))


def paths(value, prefix=()):
    """Every path into a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths(item, (*prefix, i))


def set_at(value, path, new):
    if not path:
        return new
    *parents, last = path
    for key in parents:
        value = value[key]
    value[last] = new
    return None


@st.composite
def description_edit(draw, members):
    description = json.loads(members["pipeline.json"])
    every = list(paths(description))
    path = draw(st.sampled_from(every))
    new = draw(hostile_values)
    if isinstance(new, str) and new.startswith("["):  # deep nesting, spliced in as text
        placeholder = "\x00NESTED\x00"
        replaced = set_at(description, path, placeholder)
        text = json.dumps(description if replaced is None else replaced)
        members["pipeline.json"] = text.replace(json.dumps(placeholder), new).encode()
        return members
    replaced = set_at(description, path, new)
    members["pipeline.json"] = json.dumps(description if replaced is None else replaced).encode()
    return members


@st.composite
def member_edit(draw, members, nested=False):
    """Change one member, or (not ``nested``) one member of the skops artifact."""
    name = draw(st.sampled_from(sorted(members)))
    actions = ["random", "swap", "drop", "cut", "flip", "extra", "huge-npy"] + ([] if nested else ["skops"])
    action = draw(st.sampled_from(actions))
    data = members[name]
    if action == "random":
        members[name] = draw(st.binary(max_size=300))
    elif action == "swap":
        members[name] = members[draw(st.sampled_from(sorted(members)))]
    elif action == "drop":
        del members[name]
    elif action == "cut":
        members[name] = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    elif action == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        members[name] = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    elif action == "extra":
        members[draw(st.text(min_size=1, max_size=20))] = draw(st.binary(max_size=50))
    elif action == "huge-npy":
        shape = tuple(draw(st.lists(st.integers(0, 10**12), min_size=1, max_size=3)))
        dtype = draw(st.sampled_from(["<f8", "|u1", "|O", "<U10", "|V0"]))
        members[name] = npy_header(shape, dtype) + draw(st.binary(max_size=64))
    elif action == "skops":
        skops = next(n for n in members if n.endswith(".skops"))
        members[skops] = pack(draw(member_edit(unpack(members[skops]), nested=True)), zipfile.ZIP_STORED)
    return members


@st.composite
def declared_sizes(draw, members):
    """Rewrite the archive with one member's declared size, checksum or method changed."""
    target = draw(st.sampled_from(sorted(members)))
    entries = []
    for name, data in members.items():
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = compressor.compress(data) + compressor.flush()
        crc, declared, method = zlib.crc32(data), len(data), zipfile.ZIP_DEFLATED
        if name == target:
            declared = draw(st.integers(0, 2**32 - 1))
            crc = draw(st.sampled_from([crc, 0]))
            method = draw(st.sampled_from([method, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, 99]))
        entries.append((name, packed, crc, declared, method))
    return raw_zip(entries)


@st.composite
def hostile_file(draw, original):
    members = dict(original)
    kind = draw(st.sampled_from(["flip", "truncate", "description", "member", "sizes"]))
    if kind == "description":
        return pack(draw(description_edit(members)))
    if kind == "member":
        return pack(draw(member_edit(members)))
    if kind == "sizes":
        return draw(declared_sizes(members))
    data = pack(members)
    at = draw(st.integers(0, len(data) - 1))
    if kind == "truncate":
        return data[:at]
    return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]


def test_the_original_loads(original):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.megatron"
        path.write_bytes(pack(original))
        loaded = megatron.load_pipeline(path)
        assert loaded.transform({"x": np.ones((2, 3))})["negated"].shape == (2, 3)
        assert not audit_report(path).refused


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_loading_and_auditing_a_mutated_file_succeed_or_raise_persistence_error(original, data):
    data = data.draw(hostile_file(original), label="file")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.megatron"
        path.write_bytes(data)
        for read in (megatron.load_pipeline, megatron.audit):
            with contextlib.suppress(PersistenceError):
                read(path)


# Files made to inflate ---------------------------------------------------------------------------

MiB = 1 << 20
SMALL = Limits(max_total_bytes=4 * MiB, ratio_floor_bytes=MiB, max_description_values=50_000)


def zeros_npy(n_bytes: int) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(max(n_bytes // 8, 1)))
    return buffer.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    return pack(members)


def tagged(value, tag):
    """Every ``{tag: ...}`` object inside a JSON value."""
    if isinstance(value, dict):
        if tag in value:
            yield value
        for item in value.values():
            yield from tagged(item, tag)
    elif isinstance(value, list):
        for item in value:
            yield from tagged(item, tag)


@st.composite
def inflating_file(draw, original):
    members = dict(original)
    description = json.loads(members["pipeline.json"])
    kind = draw(st.sampled_from(["references", "nested", "values"]))
    n_bytes = draw(st.sampled_from([1, 4096, MiB // 2, MiB]))
    if kind == "references":  # one array, named by every reference and by many more
        target = draw(st.sampled_from(sorted(n for n in members if n.startswith("arrays/"))))
        members[target] = zeros_npy(n_bytes)
        for reference in tagged(description, "__array__"):
            reference["__array__"] = target
        stateful = next(layer for layer in description["layers"] if layer["state"])
        copies = [[f"copy{i}", {"__array__": target}] for i in range(draw(st.integers(1, 40)))]
        stateful["state"]["metadata"]["__dict__"] += copies
    elif kind == "nested":  # .npz members in the skops artifact, possibly zips of zips
        npz = zeros_npy(n_bytes)
        for level in range(draw(st.integers(1, 3))):
            npz = zipped({"a.npy" if level == 0 else "inner.npz": npz})
        skops = next(n for n in members if n.endswith(".skops"))
        inner = unpack(members[skops])
        inner.update({f"m{i}.npz": npz for i in range(draw(st.integers(1, 40)))})
        members[skops] = zipped(inner)
    else:  # a list of many small values spliced in anywhere
        item = draw(st.sampled_from(["[]", "{}", "0", '""', "null", "[[]]"]))
        many = "[" + ",".join([item] * draw(st.sampled_from([1, 1000, 100_000, 400_000]))) + "]"
        placeholder = "\x00MANY\x00"
        replaced = set_at(description, draw(st.sampled_from(list(paths(description)))), placeholder)
        text = json.dumps(description if replaced is None else replaced)
        members["pipeline.json"] = text.replace(json.dumps(placeholder), many).encode()
        return pack(members)
    members["pipeline.json"] = json.dumps(description).encode()
    return pack(members)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_a_file_made_to_inflate_is_refused_within_the_limits(original, data):
    data = data.draw(inflating_file(original), label="file")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "inflating.megatron"
        path.write_bytes(data)
        for read in (megatron.load_pipeline, megatron.audit):
            tracemalloc.start()
            try:
                with contextlib.suppress(PersistenceError):
                    read(path, limits=SMALL)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak < 2 * SMALL.max_total_bytes, f"{read.__name__} allocated {peak >> 20} MiB"


def test_the_original_loads_within_the_small_limits(original):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.megatron"
        path.write_bytes(pack(original))
        assert megatron.load_pipeline(path, limits=SMALL).name == "fuzzed"
        assert not audit_report(path, limits=SMALL).refused
