"""Hostile pipeline files: sizes over the limits, damaged members and wrong types are refused
with a PersistenceError naming the member, without allocating what the file declares."""

import io
import json
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import megatron
from megatron import layers
from megatron.errors import PersistenceError
from megatron.nodes import Input
from megatron.persistence import Limits, audit_report, file_name
from megatron.persistence import archive as archive_module

GiB = 1 << 30


# Building hostile files -------------------------------------------------------------------------


def members_of(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def edit_description(path, change):
    members = members_of(path)
    description = json.loads(members["pipeline.json"])
    change(description)
    members["pipeline.json"] = json.dumps(description).encode()
    write_members(path, members)


def raw_zip(entries):
    """A zip archive from (name, compressed bytes, crc, declared size, method) entries, so a
    test can declare sizes that do not match the data."""
    out, directory = io.BytesIO(), []
    for name, data, crc, declared, method in entries:
        offset = out.tell()
        encoded = name.encode()
        header = struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), declared, len(encoded), 0
        )
        out.write(header + encoded + data)
        directory.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), declared,
                len(encoded), 0, 0, 0, 0, 0, offset,
            )
            + encoded
        )  # fmt: skip
    start = out.tell()
    out.write(b"".join(directory))
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), out.tell() - start, start, 0)
    out.write(end)
    return out.getvalue()


def replace_member(path, name, data, declared, crc=0):
    """Rewrite ``path`` with member ``name`` as raw deflate ``data`` declaring ``declared`` bytes."""
    entries = []
    for member, content in members_of(path).items():
        if member == name:
            entries.append((name, data, crc, declared, zipfile.ZIP_DEFLATED))
        else:
            entries.append((member, content, zlib.crc32(content), len(content), zipfile.ZIP_STORED))
    path.write_bytes(raw_zip(entries))


def npy_header(shape, dtype="<f8"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def bomb(header, mebibytes):
    """Raw deflate of ``header`` then ``mebibytes`` MiB of zeros, about 1 KiB per MiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return start + block * mebibytes + b"\x03\x00"  # an empty final block ends the stream


def saved(tmp_path, name="victim"):
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name=name)
    pipeline.fit({"x": np.arange(8.0).reshape(4, 2)})
    return pipeline.save(tmp_path)


def mean_array(path):
    description = json.loads(members_of(path)["pipeline.json"])
    return dict(description["layers"][0]["state"]["metadata"]["__dict__"])["mean"]["__array__"]


def refused_within(path, pattern, megabytes=64, **kwargs):
    """Loading and auditing ``path`` refuse it, allocating less than ``megabytes``."""
    tracemalloc.start()
    try:
        with pytest.raises(PersistenceError, match=pattern) as refused:
            megatron.load_pipeline(path, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < megabytes << 20, f"loading allocated {peak >> 20} MiB"
    return refused.value


# 1. Sizes ------------------------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_before_it_inflates(tmp_path):
    path = saved(tmp_path)
    member = mean_array(path)
    gib3 = 3 * GiB
    data = bomb(npy_header((gib3 // 8,)), 3 * 1024)  # a valid .npy of 3 GiB in about 3 MB
    replace_member(path, member, data, declared=gib3 + 128)
    assert path.stat().st_size < 4_000_000
    started = time.perf_counter()
    error = refused_within(path, rf"{member} inflates \d+ times \(3\.\d MiB to 3\.0 GiB\)")
    assert "limits={'max_ratio': ...}" in str(error)
    assert time.perf_counter() - started < 2
    report = audit_report(path)
    assert any(line.startswith(f"member {member}: 3.0 GiB") and "REFUSED" in line for line in report.refused)


def test_a_member_that_lies_about_its_size_inflates_no_further_than_it_declares(tmp_path):
    path = saved(tmp_path)
    member = mean_array(path)
    header = npy_header((GiB // 8,))
    data = bomb(header, 1024)  # 1 GiB of zeros, declared as 1 MiB with that MiB's checksum
    declared = 1 << 20
    crc = zlib.crc32(bytes(declared - len(header)), zlib.crc32(header))
    replace_member(path, member, data, declared=declared, crc=crc)
    refused_within(path, rf"{member} declares a float64 array of shape \(134217728,\) \(1\.0 GiB\) but holds")


def test_a_huge_count_in_a_small_file_is_refused_before_anything_is_allocated(tmp_path):
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.Lambda(np.negative)(x, "y"), name="outputs")
    path = pipeline.save(tmp_path)

    def many(description):
        for pair in description["layers"][0]["config"]["__dict__"]:
            if pair[0] == "n_outputs":
                pair[1] = 10**9

    edit_description(path, many)
    assert path.stat().st_size < 1000
    refused_within(path, r"pipeline.json: calls\[0\].*n_outputs=1000000000, but the call names 1 outputs")


def test_an_array_header_declaring_a_trillion_elements_is_refused(tmp_path):
    path = saved(tmp_path)
    member = mean_array(path)
    members = members_of(path)
    members[member] = npy_header((10**12,))
    write_members(path, members)
    refused_within(
        path,
        rf"{member} declares a float64 array of shape \(1000000000000,\) \(7450\.6 GiB\) but holds 0 bytes",
    )
    assert any(line.startswith(f"array {member}: REFUSED") for line in audit_report(path).refused)


def test_limits_are_a_keyword_that_lowers_and_raises_them(tmp_path):
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="zeros")
    pipeline.fit({"x": np.zeros((4, 2))})
    pipeline.layers[0].metadata["big"] = np.zeros(200_000)  # 1.6 MB that deflates to a few KB
    path = pipeline.save(tmp_path)
    assert megatron.load_pipeline(path).layers[0].metadata["big"].shape == (200_000,)
    strict = Limits(ratio_floor_bytes=1 << 20)
    with pytest.raises(PersistenceError, match=r"inflates \d+ times .*limits=\{'max_ratio': \.\.\.\}"):
        megatron.load_pipeline(path, limits=strict)
    raised = {"ratio_floor_bytes": 1 << 20, "max_ratio": 10_000}
    assert megatron.load_pipeline(path, limits=raised).layers[0].metadata["big"].shape == (200_000,)
    with pytest.raises(PersistenceError, match=r"pipeline.json declares .* \(max_description_bytes|limit is"):
        megatron.load_pipeline(path, limits={"max_description_bytes": 100})
    with pytest.raises(PersistenceError, match=r"declares 6 members .*the limit is 3: .*max_members"):
        megatron.load_pipeline(path, limits={"max_members": 3})
    with pytest.raises(PersistenceError, match="max_file_bytes"):
        megatron.load_pipeline(path, limits={"max_file_bytes": 100})
    with pytest.raises(PersistenceError, match=r"Unknown limits \['max_bytes'\]"):
        megatron.load_pipeline(path, limits={"max_bytes": 1})
    with pytest.raises(PersistenceError, match="must be a positive integer"):
        Limits(max_ratio=0)


def test_deep_nesting_is_refused_at_the_limit_and_past_what_json_can_parse(tmp_path):
    path = saved(tmp_path)
    for depth, pattern in (
        (150, r"nests 1\d\d levels deep; the limit is 100"),
        (100_000, "nested too deeply"),
    ):

        def nest(description, depth=depth):
            description["layers"][0]["config"]["__dict__"] = [["deep", "PLACEHOLDER"]]

        edit_description(path, nest)
        members = members_of(path)
        members["pipeline.json"] = members["pipeline.json"].replace(
            b'"PLACEHOLDER"', b"[" * depth + b"]" * depth
        )
        write_members(path, members)
        refused_within(path, rf"pipeline.json.*{pattern}")
        assert "REFUSED" in audit_report(path).refused[-1]


# 2. Writing ----------------------------------------------------------------------------------------


def test_save_never_writes_through_a_link_planted_beside_the_file(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "victim.megatron.partial").symlink_to(victim)  # the temporary name of older versions
    (folder / "victim.megatron").symlink_to(victim)  # and the destination itself
    path = saved(folder)
    assert victim.read_text() == "precious"
    assert not path.is_symlink() and zipfile.is_zipfile(path)
    assert sorted(p.name for p in folder.iterdir()) == ["victim.megatron", "victim.megatron.partial"]


def test_the_temporary_file_is_created_exclusively(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    monkeypatch.setattr(archive_module.secrets, "token_hex", lambda n: "0" * 2 * n)
    (tmp_path / f".victim.megatron.{'0' * 16}.partial").symlink_to(victim)  # every name it tries
    with pytest.raises(PersistenceError, match="Cannot write the pipeline file"):
        saved(tmp_path)
    assert victim.read_text() == "precious"
    assert not (tmp_path / "victim.megatron").exists()


# 3. Damaged files and wrong types -----------------------------------------------------------------


def test_a_flipped_byte_in_a_compressed_member_is_a_persistence_error(tmp_path):
    path = saved(tmp_path)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("pipeline.json")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename)
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PersistenceError, match=r"pipeline.json cannot be read \(corrupted\?\)"):
        megatron.load_pipeline(path)
    assert "pipeline.json cannot be read" in audit_report(path).refused[-1]


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        (("layers", 0, "class"), 5, r"layers\[0\].class: expected a non-empty string .*got integer 5"),
        (
            ("layers", 0, "state", "token"),
            None,
            r"layers\[0\].state.token: expected a non-empty string.*got null",
        ),
        (
            ("layers", 0, "state", "fitted"),
            1,
            r"layers\[0\].state.fitted: expected true or false; got integer 1",
        ),
        (("layers", 0, "state"), [], r"layers\[0\].state: expected an object with metadata"),
        (("calls", 0, "layer"), 7, r"calls\[0\].layer: expected an integer from 0 to 0; got integer 7"),
        (("calls", 0, "inputs", 0), "nowhere", r"calls\[0\].inputs\[0\]: names the node 'nowhere'"),
        (("outputs",), "w", r"outputs: expected an array; got string 'w'"),
        (("inputs", 0, "dtype"), "no-such", r"inputs\[0\].dtype: 'no-such' is not a numpy dtype"),
        (("inputs", 0, "shape"), {"__tuple__": [-1]}, r"inputs\[0\].shape\[0\]: expected an integer from 0"),
        (
            ("layers", 0, "config"),
            {"__dict__": [[1, 2]]},
            r"layers\[0\].config\[0\]\[0\]: expected a non-empty",
        ),
        (
            ("layers", 0, "config"),
            {"__dict__": [["a", {"__float__": "1e9"}]]},
            r"layers\[0\].config.__dict__\[0\]\[1\].__float__: expected one of",
        ),
        (
            ("layers", 0, "config"),
            {"__dict__": [["a", {"__nope__": 1}]]},
            r"layers\[0\].config.__dict__\[0\]\[1\]: unknown value with keys \['__nope__'\]",
        ),
        (
            ("layers", 0, "config"),
            {"__dict__": [["a", {"__dict__": [[[1], 2]]}]]},
            r"layers\[0\].config.__dict__\[0\]\[1\].__dict__\[0\]\[0\]: a list cannot be a dict key",
        ),
        (
            ("layers", 0, "config"),
            {"__dict__": [["a", {"__array__": "arrays/99.npy"}]]},
            r"layers\[0\].config.__dict__\[0\]\[1\].__array__: names the member 'arrays/99.npy', which is not in",
        ),
        (
            ("layers", 0, "config"),
            {"__dict__": [["a", {"__array__": "pipeline.json"}]]},
            r"layers\[0\].config.__dict__\[0\]\[1\].__array__: names the description itself",
        ),
        (("format",), True, r"format: expected a file format version; got true"),
        (("name",), None, r"name: expected a non-empty string"),
        (("extra",), 1, r"the description: unexpected field 'extra'"),
        ((), [], r"the description: expected an object"),
    ],
)
def test_every_field_of_the_description_is_typed(tmp_path, field, value, pattern):
    path = saved(tmp_path)

    def change(description):
        if not field:
            description.clear()
            description["format"] = 1
            return
        *parents, last = field
        for key in parents:
            description = description[key]
        description[last] = value

    if field:
        edit_description(path, change)
    else:
        members = members_of(path)
        members["pipeline.json"] = b"[]"
        write_members(path, members)
    refused_within(path, rf"victim.megatron': pipeline.json: {pattern}")
    assert "description: REFUSED" in audit_report(path).refused[-1]


def test_a_layer_refusing_its_hyperparameters_is_a_persistence_error(tmp_path):
    path = saved(tmp_path)
    edit_description(path, lambda d: d["layers"][0]["config"]["__dict__"].append(["bogus", 1]))
    refused_within(path, r"pipeline.json: layers\[0\] \(Whiten\) cannot be built: TypeError")


def test_members_that_are_missing_encrypted_or_bzip2_are_refused(tmp_path):
    path = saved(tmp_path)
    member = mean_array(path)
    members = members_of(path)
    del members[member]
    write_members(path, members)
    refused_within(
        path, rf"the description names '{member}', which is not in the archive|{member}.*not in the archive"
    )
    path = saved(tmp_path / "b")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("arrays/extra.npy", b"x" * 100)
    refused_within(path, r"arrays/extra.npy uses compression method 12")


# File names ----------------------------------------------------------------------------------------


def test_file_names_keep_ordinary_names_and_no_longer_collide():
    assert file_name("seed", "0.1") == "seed-0.1.megatron"
    assert file_name("getting_started", "0.1") == "getting_started-0.1.megatron"
    assert file_name("my-pipe", "2") == "my-pipe-2.megatron"
    assert file_name("victim", None) == "victim.megatron"
    assert file_name("x", "1") != file_name("x-1", None)
    assert file_name("a/b", None) != file_name("a_b", None)
    assert file_name("a/b", None).startswith("a_b~")
    assert len(file_name("n" * 300, "1").encode()) < 150


def test_a_long_name_saves_and_loads(tmp_path):
    path = saved(tmp_path, name="n" * 300)
    assert len(path.name) < 150 and megatron.load_pipeline(path).name == "n" * 300


text = st.text(st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=300, deadline=None, database=None)
@given(st.tuples(text, st.none() | text), st.tuples(text, st.none() | text))
def test_file_names_are_injective_bounded_and_safe(first, second):
    # 300 examples of pairs, under a second.
    names = file_name(*first), file_name(*second)
    for name in names:
        assert len(name.encode()) <= 215 and name.endswith(".megatron")
        assert not name.startswith(".") and not set(name) & {"/", "\\", "\x00"}
    if first != second:
        assert names[0] != names[1]


# audit ---------------------------------------------------------------------------------------------


def test_audit_reports_member_sizes_and_what_loading_would_refuse(tmp_path):
    path = saved(tmp_path)
    lines = megatron.audit(path)
    assert any(line.startswith("member pipeline.json: ") and "compressed)" in line for line in lines)
    assert any(line == "array arrays/2.npy: float64 (2,)" for line in lines)
    assert not audit_report(path).refused
    members = members_of(path)
    members[mean_array(path)] = npy_header((10**6,))
    write_members(path, members)
    result = subprocess.run(
        [sys.executable, "-m", "megatron", "audit", str(path)], capture_output=True, text=True, env=os.environ
    )
    assert result.returncode == 1 and "REFUSED" in result.stdout and "loading would refuse" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "megatron", "audit", "--limit", "max_member_bytes=10", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "the limit is 10 bytes" in result.stdout
