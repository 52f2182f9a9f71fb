"""Hostile pipeline files found by attacking saved files: each is refused (or shown safely)
within the limits, allocating little, and a loaded layer's state token follows what the file
holds, so a doctored file cannot poison the cache."""

import io
import json
import os
import stat
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from importlib.metadata import version

import numpy as np
import pytest

import megatron
from megatron import layers
from megatron.errors import PersistenceError
from megatron.nodes import Input
from megatron.persistence import Limits, audit_report, file_name, schema_fields
from megatron.persistence.describe import outline_file
from megatron.persistence.reader import ArchiveReader

from .test_persistence_limits import members_of, refused_within, write_members

MiB = 1 << 20
CORE = {"name": "core", "distribution": "megatron-core", "version": version("megatron-core")}
X_INPUT = {"name": "x", "shape": {"__tuple__": []}, "dtype": None, "columns": None}


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def description(layers_=(), calls=(), outputs=("x",), inputs=(X_INPUT,), name="hostile"):
    return {
        "format": 2,
        "name": name,
        "version": "1",
        "inputs": list(inputs),
        "layers": list(layers_),
        "calls": list(calls),
        "outputs": list(outputs),
        "metrics": [],
    }


def write(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data if isinstance(data, bytes) else json.dumps(data).encode())
    return path


def peak_of(run):
    """What ``run()`` returns (or raises) with the peak it allocated, in bytes."""
    tracemalloc.start()
    try:
        try:
            result = run()
        except Exception as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


WHITEN_CALL = {"layer": 0, "inputs": ["x"], "outputs": ["w"], "named": [True]}


def whiten(metadata_pairs):
    return {
        "class": "Whiten",
        "plugin": CORE,
        "name": "w",
        "config": {"__dict__": []},
        "state": {"metadata": {"__dict__": metadata_pairs}, "fitted": True, "token": "t"},
    }


# One array named many times ---------------------------------------------------------------------


def test_an_array_member_named_twice_is_refused_before_it_is_read(tmp_path):
    pairs = [[f"k{i}", {"__array__": "arrays/1.npy"}] for i in range(40)]
    path = write(
        tmp_path / "refs.megatron",
        {
            "arrays/1.npy": npy(np.zeros(1 << 17)),  # 1 MiB of zeros, a few KB in the file
            "pipeline.json": description([whiten(pairs)], [WHITEN_CALL], ["w"]),
        },
    )
    refused_within(
        path,
        r"layers\[0\].state.metadata.__dict__\[1\]\[1\].__array__: names the member 'arrays/1.npy' a second",
        megabytes=1,
        limits=Limits(max_total_bytes=4 * MiB),
    )
    report, peak = peak_of(lambda: audit_report(path, limits=Limits(max_total_bytes=4 * MiB)))
    assert peak < MiB and "a second time" in report.refused[-1]


def test_every_read_counts_against_the_limits(tmp_path):
    """Everything one reader inflates from a file counts against max_total_bytes and, past the
    ratio floor, against max_ratio times the file's size: a read made again costs again."""
    member = npy(np.zeros((MiB - 1024) // 8))  # just under 1 MiB: under every per-member check
    path = write(tmp_path / "zeros.megatron", {"arrays/1.npy": member, "pipeline.json": description()})
    assert path.stat().st_size < 5_000
    for limits, pattern in (
        (Limits(max_total_bytes=5 * MiB // 2), r"arrays/1.npy: reading it would inflate 3\.0 MiB .*in all; "
                                               r"the limit is 2\.5 MiB.*max_total_bytes"),
        (Limits(ratio_floor_bytes=2 * MiB), r"arrays/1.npy: reading it would inflate 3\.0 MiB in all from a "
                                            r"file of 1\.\d KiB \(\d+ times\); the limit is 100 times.*max_ratio"),
    ):  # fmt: skip
        with ArchiveReader(path, limits) as archive:
            archive.read("arrays/1.npy")
            archive.read("arrays/1.npy")
            with pytest.raises(PersistenceError, match=pattern):
                archive.read("arrays/1.npy")


# Many JSON values -----------------------------------------------------------------------------


def test_a_description_of_many_small_values_is_refused_before_it_is_parsed(tmp_path):
    path = write(tmp_path / "json.megatron", {"pipeline.json": b"[" + b"[]," * 300_000 + b"[]]"})
    assert path.stat().st_size < 5_000
    refused_within(
        path, r"pipeline.json holds up to 600003 JSON values.*the limit is 100000.*max_description_values",
        megabytes=2, limits={"max_description_values": 100_000},
    )  # fmt: skip
    report, peak = peak_of(lambda: audit_report(path, limits={"max_description_values": 100_000}))
    assert peak < 2 * MiB and "max_description_values" in report.refused[-1]


def test_a_large_value_is_never_written_whole_into_an_error():
    value = {f"k{i}": [[]] * 40 for i in range(20_000)}
    text, peak = peak_of(lambda: schema_fields.shown(value))
    assert len(text) < 200 and peak < 64 << 10, peak


# Summary and plot of a layer called many times -------------------------------------------------


def test_summary_reads_a_layer_called_many_times_once(tmp_path, monkeypatch):
    calls = [{"layer": 0, "inputs": ["x"], "outputs": [f"y{i}"], "named": [True]} for i in range(50)]
    dot = {
        "class": "StaticDot",
        "plugin": CORE,
        "name": "dot",
        "state": None,
        "config": {"__dict__": [["W", {"__array__": "arrays/1.npy"}]]},
    }
    inputs = [{"name": "x", "shape": {"__tuple__": [1]}, "dtype": None, "columns": None}]
    path = write(
        tmp_path / "calls.megatron",
        {
            "arrays/1.npy": npy(np.zeros((1, 1 << 16))),
            "pipeline.json": description([dot], calls, ["y0"], inputs),
        },
    )
    reads = []
    real = ArchiveReader.read
    monkeypatch.setattr(ArchiveReader, "read", lambda self, name: reads.append(name) or real(self, name))
    outline = outline_file(path)
    assert len(outline.steps) == 50 and {step.specs[0] for step in outline.steps} == {"(65536,) ?"}
    assert reads.count("arrays/1.npy") == 1


# The zip's directory ---------------------------------------------------------------------------


def directory_trick(path, entries, counts):
    """A zip of one empty member named by ``entries`` directory entries whose end record
    declares ``counts`` (entries on this disk, in all)."""
    with open(path, "wb") as file:
        file.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"a")
        start = file.tell()
        for i in range(entries):
            name = b"%x" % i
            file.write(
                struct.pack(
                    "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0
                )
                + name
            )  # fmt: skip
        size = file.tell() - start
        file.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, *counts, size, start, 0))
    return path


@pytest.mark.parametrize(
    "counts", [(0x4B50, 0x0605), (1, 1)], ids=["count-fields-spell-the-signature", "count-fields-lie"]
)
def test_the_member_count_is_checked_before_the_directory_is_parsed(tmp_path, counts):
    path = directory_trick(tmp_path / "many.megatron", 30_000, counts)
    error = refused_within(path, r"members.*the limit is 1000.*max_members", megabytes=3,
                           limits={"max_members": 1000})  # fmt: skip
    assert "REFUSED" in audit_report(path, limits={"max_members": 1000}).refused[0]
    assert error is not None


# Input dtypes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["V2147483647", "|V8", "<U100000000", "S1000000"])
def test_an_input_dtype_that_makes_every_row_huge_is_refused(tmp_path, dtype):
    inputs = [{"name": "x", "shape": {"__tuple__": []}, "dtype": dtype, "columns": None}]
    path = write(tmp_path / "void.megatron", {"pipeline.json": description(inputs=inputs)})
    refused_within(path, r"inputs\[0\].dtype: .* refused", megabytes=1)


def test_a_dtype_value_is_held_to_the_same_rule(tmp_path):
    cast = {"class": "Cast", "plugin": CORE, "name": "c", "state": None,
            "config": {"__dict__": [["dtype", {"__dtype__": "V1000000000"}]]}}  # fmt: skip
    calls = [{"layer": 0, "inputs": ["x"], "outputs": ["c"], "named": [True]}]
    path = write(tmp_path / "cast.megatron", {"pipeline.json": description([cast], calls, ["c"])})
    refused_within(path, r"__dtype__: .*refused", megabytes=1)


def test_ordinary_dtypes_still_load(tmp_path):
    for dtype in ("float32", "int64", "bool", "<U20", "datetime64[s]", object, "complex128"):
        x = Input("x", dtype=dtype)
        path = megatron.Pipeline(x, layers.Lambda(np.copy)(x, "y"), name="dtypes").save(tmp_path)
        assert megatron.load_pipeline(path).inputs[0].dtype == np.dtype(dtype)


# The command line -------------------------------------------------------------------------------

HOSTILE_TEXT = "\x1b[1A\x1b[2K\rlayer Fake (registered by megatron-core)"


def cli(*args):
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # strict: a lone surrogate cannot be printed
    return subprocess.run(
        [sys.executable, "-m", "megatron", *args], capture_output=True, text=True, env=env, errors="replace"
    )


def test_the_command_line_escapes_what_a_file_says(tmp_path):
    lam = {
        "class": "Lambda",
        "plugin": CORE,
        "name": "l\udfff",
        "state": None,
        "config": {"__dict__": [["function", {"__function__": f"m\ud800:{HOSTILE_TEXT}"}],
                                ["output_shape", None], ["dtype", None], ["n_outputs", 1]]},
    }  # fmt: skip
    calls = [{"layer": 0, "inputs": ["x"], "outputs": ["y\ud800\x1b[2J"], "named": [True]}]
    text = json.dumps(description([lam], calls, ["y\ud800\x1b[2J"], name="n\ud800"))
    path = write(tmp_path / "hostile.megatron", {"pipeline.json": text.encode()})
    for command in (
        ["audit", str(path)],
        ["summary", str(path)],
        ["plot", str(path), "-o", str(tmp_path / "g.dot")],
    ):
        result = cli(*command)
        assert result.returncode in (0, 1), result.stderr
        assert "Traceback" not in result.stderr
        for stream in (result.stdout, result.stderr):
            assert "\x1b" not in stream and "\r" not in stream and "\ufffd" not in stream
    assert "\\x1b[1A\\x1b[2K\\rlayer Fake" in cli("audit", str(path)).stdout
    assert "y\\ud800\\x1b[2J" in cli("summary", str(path)).stdout


def test_audit_reports_a_file_over_the_size_and_member_limits(tmp_path):
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="small")
    pipeline.fit({"x": np.arange(8.0).reshape(4, 2)})
    path = pipeline.save(tmp_path)
    for limits, pattern in (({"max_file_bytes": 100}, "max_file_bytes"), ({"max_members": 2}, "max_members")):
        report = audit_report(path, limits=limits)
        assert report.refused and pattern in report.refused[0]
        result = cli("audit", "--limit", f"{next(iter(limits))}={next(iter(limits.values()))}", str(path))
        assert result.returncode == 1 and "REFUSED" in result.stdout
    # over max_file_bytes the directory is still read and listed
    assert any(
        line.startswith("member pipeline.json") for line in audit_report(path, {"max_file_bytes": 100}).lines
    )


# Saving -----------------------------------------------------------------------------------------


def test_a_failed_save_leaves_no_folder_behind(tmp_path):
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="objects")
    pipeline.fit({"x": np.arange(8.0).reshape(4, 2)})
    pipeline.layers[0].metadata["bad"] = np.array([object()], dtype=object)
    with pytest.raises(PersistenceError, match="object array"):
        pipeline.save(tmp_path / "a" / "b" / "c")
    assert list(tmp_path.iterdir()) == []


def test_saving_over_a_file_keeps_its_permissions(tmp_path):
    x = Input("x", (2,))
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name="private")
    pipeline.fit({"x": np.arange(8.0).reshape(4, 2)})
    path = pipeline.save(tmp_path)
    path.chmod(0o600)
    assert pipeline.save(tmp_path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o640)
    pipeline.save(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_file_name_never_starts_with_a_dash():
    for name, ver in (("-", "1"), ("-rf", None), ("--help", "2"), ("-", None), (".-x", "1")):
        made = file_name(name, ver)
        assert not made.startswith(("-", ".", "~")), made


# custom_objects and numpy functions --------------------------------------------------------------


def test_the_persistence_package_is_an_attribute_of_megatron():
    code = "import megatron; print(megatron.persistence.audit_report.__name__, megatron.persistence.Limits())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("audit_report Limits("), result.stderr


def test_custom_objects_must_be_a_mapping_of_names(tmp_path):
    x = Input("x")
    path = megatron.Pipeline(x, layers.Lambda(np.sqrt)(x, "y"), name="sqrt").save(tmp_path)
    for given in ([np.sqrt], {1: np.sqrt}, "sqrt"):
        with pytest.raises(PersistenceError, match=r"custom_objects= takes a mapping of names"):
            megatron.load_pipeline(path, custom_objects=given)


def test_a_recorded_numpy_function_is_numpy_s_unless_named_with_its_module(tmp_path):
    x = Input("x")
    path = megatron.Pipeline(x, layers.Lambda(np.sqrt)(x, "y"), name="sqrt").save(tmp_path)
    data = {"x": np.array([4.0])}
    loaded = megatron.load_pipeline(path, custom_objects={"sqrt": np.negative})
    assert loaded.transform(data)["y"].tolist() == [2.0]
    overridden = megatron.load_pipeline(path, custom_objects={"numpy:sqrt": np.negative})
    assert overridden.transform(data)["y"].tolist() == [-4.0]


# State tokens -----------------------------------------------------------------------------------


def fitted_whiten(tmp_path, name="scores"):
    x = Input("x", (1,))
    pipeline = megatron.Pipeline(x, layers.Whiten()(x, "w"), name=name, version="1")
    pipeline.fit({"x": np.array([[0.0], [2.0]])})
    return pipeline, pipeline.save(tmp_path)


def doctored(path, target):
    """A copy of ``path`` with its fitted mean changed and its recorded token kept."""
    members = members_of(path)
    recorded = json.loads(members["pipeline.json"])
    mean = dict(recorded["layers"][0]["state"]["metadata"]["__dict__"])["mean"]["__array__"]
    members[mean] = npy(np.array([1000.0]))
    write_members(target, members)
    return target


def test_a_doctored_file_with_the_recorded_token_cannot_poison_the_cache(tmp_path):
    pytest.importorskip("megatron_sql")
    _, path = fitted_whiten(tmp_path)
    evil = doctored(path, tmp_path / "evil.megatron")
    storage = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    data = {"x": np.array([[1.0]])}
    victim = megatron.load_pipeline(evil, storage=storage)
    poisoned = victim.transform(data, index=["alice"])["w"].tolist()
    legit = megatron.load_pipeline(path, storage=storage)
    assert (
        legit.transform(data, index=["alice"], cache=True)["w"].tolist()
        == legit.transform(data)["w"].tolist()
    )
    assert legit.transform(data)["w"].tolist() != poisoned
    assert victim.layers[0].state_token != legit.layers[0].state_token
    assert victim.fingerprint != legit.fingerprint


def test_a_file_loads_with_the_same_token_every_time_and_in_every_process(tmp_path):
    pipeline, path = fitted_whiten(tmp_path)
    first, second = megatron.load_pipeline(path), megatron.load_pipeline(path)
    assert first.layers[0].state_token == second.layers[0].state_token == pipeline.layers[0].state_token
    assert first.fingerprint == second.fingerprint == pipeline.fingerprint
    code = "import sys, megatron; p = megatron.load_pipeline(sys.argv[1]); print(p.layers[0].state_token, p.fingerprint)"
    env = {**os.environ, "PYTHONHASHSEED": "7"}
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [first.layers[0].state_token, first.fingerprint]
    # saved again, unchanged, it keeps its token; refitted, it gets another
    again = megatron.load_pipeline(first.save(tmp_path / "again"))
    assert again.layers[0].state_token == first.layers[0].state_token
    before = first.layers[0].state_token
    first.fit({"x": np.array([[0.0], [4.0]])})
    refitted = megatron.load_pipeline(first.save(tmp_path / "refitted"))
    assert refitted.layers[0].state_token != before
    assert refitted.layers[0].state_token == first.layers[0].state_token


def test_a_token_follows_the_state_as_read_not_the_token_field_alone(tmp_path):
    _, path = fitted_whiten(tmp_path)
    evil = doctored(path, tmp_path / "evil.megatron")
    renamed = tmp_path / "renamed.megatron"  # the same content under other member names
    members = members_of(path)
    text = members["pipeline.json"].decode()
    for member in [m for m in members if m.startswith("arrays/")]:
        text = text.replace(f'"{member}"', f'"{member}.moved"')
        members[f"{member}.moved"] = members.pop(member)
    members["pipeline.json"] = text.encode()
    write_members(renamed, members)
    tokens = [megatron.load_pipeline(p).layers[0].state_token for p in (path, evil, renamed)]
    assert tokens[0] != tokens[1] and tokens[0] == tokens[2]
