"""scikit-learn layers in pipeline files: skops artifacts, trusted types only."""

import io
import re
import tracemalloc
import zipfile

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import megatron
import megatron.persistence
from megatron.errors import PersistenceError
from megatron.nodes import Input
from megatron_sklearn import Sklearn


def test_sklearn_layers_round_trip_and_untrusted_types_are_refused_unless_named(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    x, label = Input("x", (4,)), Input("y")
    scaled = Sklearn(StandardScaler())(x, "scaled")
    reduced = Sklearn(PCA(n_components=3))(scaled, "reduced")
    logistic = Sklearn(LogisticRegression(), method="predict_proba")([reduced, label], "logistic")
    forest = Sklearn(RandomForestClassifier(n_estimators=10, random_state=0))([reduced, label], "forest")
    pipeline = megatron.Pipeline([x, label], [scaled, reduced, logistic, forest], name="sk", version="2")
    pipeline.fit({"x": X, "y": y})
    path = pipeline.save(tmp_path)
    assert not any(name.endswith(".pkl") for name in __import__("zipfile").ZipFile(path).namelist())

    lines = megatron.audit(path)
    assert any("sklearn.tree._tree.Tree (NOT trusted" in line for line in lines)
    with pytest.raises(PersistenceError, match=r"types skops does not trust: \['sklearn.tree._tree.Tree'\]"):
        megatron.load_pipeline(path)

    loaded = megatron.load_pipeline(path, trusted=["sklearn.tree._tree.Tree"])
    before, after = pipeline.transform({"x": X}), loaded.transform({"x": X})
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    assert loaded.layers[1].estimator.components_.shape == (3, 4)


def saved_scaler(tmp_path):
    x = Input("x", (3,))
    pipeline = megatron.Pipeline(x, Sklearn(StandardScaler())(x, "scaled"), name="scaler")
    pipeline.fit({"x": np.arange(12.0).reshape(4, 3)})
    return pipeline.save(tmp_path)


def rewrite_artifact(path, change):
    """Rewrite the skops member of a saved file through ``change(skops members) -> members``,
    or ``change(None) -> bytes`` to replace the member outright."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    name = next(n for n in members if n.endswith(".skops"))
    with zipfile.ZipFile(io.BytesIO(members[name])) as skops:
        inner = {n: skops.read(n) for n in skops.namelist()}
    changed = change(inner)
    if isinstance(changed, bytes):
        members[name] = changed
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as skops:
            for n, data in changed.items():
                skops.writestr(n, data)
        members[name] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for n, data in members.items():
            archive.writestr(n, data)
    return name


def first_array(inner):
    return next(n for n in inner if n.endswith(".npy"))


def pickled(inner):
    hostile = np.empty(1, dtype=object)
    hostile[0] = {"a": 1}
    buffer = io.BytesIO()
    np.save(buffer, hostile, allow_pickle=True)
    inner[first_array(inner)] = buffer.getvalue()
    return inner


def trillion(inner):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    inner[first_array(inner)] = buffer.getvalue()
    return inner


def bad_schema(inner):
    inner["schema.json"] = b'{"__class__": 5}'
    return inner


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda inner: b"not a zip at all", r"estimator.skops is not a readable zip archive"),
        (pickled, r"estimator.skops: \d+.npy is not a plain array and is refused"),
        (trillion, r"estimator.skops: \d+.npy declares a float64 array of shape \(1000000000000,\)"),
        (bad_schema, r"estimator.skops is not a readable skops file"),
        (lambda inner: {"schema.json": b"{" * 100_000}, r"estimator.skops is not a readable skops file"),
    ],
    ids=["not-a-zip", "pickled-npy", "trillion-elements", "bad-schema", "deep-schema"],
)
def test_a_damaged_skops_artifact_is_a_persistence_error_naming_it(tmp_path, change, pattern):
    path = saved_scaler(tmp_path)
    rewrite_artifact(path, change)
    with pytest.raises(PersistenceError, match=pattern):
        megatron.load_pipeline(path)
    refused = megatron.persistence.audit_report(path).refused
    assert refused and re.search(pattern, refused[-1])


def test_a_zip_bomb_inside_a_skops_artifact_is_refused_before_it_inflates(tmp_path):
    path = saved_scaler(tmp_path)

    def bomb(inner):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as skops:
            for n, data in inner.items():
                skops.writestr(n, data)
            skops.writestr("zeros.npy", bytes(80 << 20))  # 80 MiB that deflate to 80 KB
        return buffer.getvalue()

    rewrite_artifact(path, bomb)
    with pytest.raises(PersistenceError, match=r"estimator.skops: zeros.npy inflates \d+ times"):
        megatron.load_pipeline(path)


def deflated_zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def with_npz_members(path, count, mebibytes=1, nested=False):
    """Rewrite the skops artifact of ``path`` (deflated) with ``count`` more ``.npz`` members,
    each a zip of a ``mebibytes`` MiB all-zero array (or, ``nested``, of such an ``.npz``)."""
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((mebibytes << 20) // 8 - 16))  # just under the size: under each per-member check
    npz = deflated_zip({"a.npy": buffer.getvalue()})
    if nested:
        npz = deflated_zip({"inner.npz": npz})
    members = {}
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    name = next(n for n in members if n.endswith(".skops"))
    with zipfile.ZipFile(io.BytesIO(members[name])) as skops:
        inner = {n: skops.read(n) for n in skops.namelist()}
    inner.update({f"m{i}.npz": npz for i in range(count)})
    members[name] = deflated_zip(inner)
    path.write_bytes(deflated_zip(members))


def peak_while(run):
    tracemalloc.start()
    try:
        try:
            result = run()
        except PersistenceError as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("limits", "pattern"),
    [
        (
            {"max_total_bytes": 4 << 20},
            r"estimator.skops: m\d+.npz: a.npy: reading it would inflate .*max_total_bytes",
        ),
        (
            {"ratio_floor_bytes": 2 << 20},
            r"estimator.skops: m\d+.npz: a.npy: reading it would inflate .*max_ratio",
        ),
    ],
    ids=["total", "ratio"],
)
def test_npz_members_of_an_artifact_count_against_one_budget_for_the_whole_file(tmp_path, limits, pattern):
    path = saved_scaler(tmp_path)
    with_npz_members(path, count=16)  # 16 MiB inside a file of a few dozen KB
    assert path.stat().st_size < 100_000
    error, peak = peak_while(lambda: megatron.load_pipeline(path, limits=limits))
    assert isinstance(error, PersistenceError) and re.search(pattern, str(error)), error
    assert peak < 8 << 20, f"loading allocated {peak >> 20} MiB"
    report, peak = peak_while(lambda: megatron.persistence.audit_report(path, limits=limits))
    assert peak < 8 << 20 and re.search(pattern, report.refused[-1])


def test_a_zip_inside_an_npz_inside_an_artifact_is_refused(tmp_path):
    path = saved_scaler(tmp_path)
    with_npz_members(path, count=1, nested=True)
    with pytest.raises(
        PersistenceError, match=r"m0.npz: inner.npz is a zip archive inside a zip inside the artifact"
    ):
        megatron.load_pipeline(path)


def test_an_artifact_with_a_few_npz_members_still_loads(tmp_path):
    path = saved_scaler(tmp_path)
    with_npz_members(path, count=2)
    loaded = megatron.load_pipeline(path)
    assert loaded.transform({"x": np.arange(6.0).reshape(2, 3)})["scaled"].shape == (2, 3)


# Options: serializer_options["skops"], and trusted= for short ------------------------------------


def saved_forest(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    x, label = Input("x", (3,)), Input("y")
    forest = Sklearn(RandomForestClassifier(n_estimators=5, random_state=0))([x, label], "forest")
    pipeline = megatron.Pipeline([x, label], forest, name="forest")
    pipeline.fit({"x": X, "y": y})
    return pipeline, pipeline.save(tmp_path), X


TREE = "sklearn.tree._tree.Tree"


def test_skops_trust_through_serializer_options_equals_the_trusted_shortcut(tmp_path):
    pipeline, path, X = saved_forest(tmp_path)
    by_mapping = megatron.load_pipeline(path, serializer_options={"skops": {"trusted": [TREE]}})
    by_shortcut = megatron.load_pipeline(path, trusted=[TREE])
    expected = pipeline.transform({"x": X})["forest"]
    np.testing.assert_array_equal(by_mapping.transform({"x": X})["forest"], expected)
    np.testing.assert_array_equal(by_shortcut.transform({"x": X})["forest"], expected)
    assert by_mapping.fingerprint == by_shortcut.fingerprint == pipeline.fingerprint
    with pytest.raises(PersistenceError, match=r"serializer_options=\{'skops': \{'trusted': \[\.\.\.\]\}\}"):
        megatron.load_pipeline(path, serializer_options={"skops": {"trusted": []}})
    listed = megatron.persistence.audit_report(path, serializer_options={"skops": {"trusted": [TREE]}}).lines
    assert f"  type {TREE} (NOT trusted by skops: trusted by the options given)" in listed


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        (
            {"trust": [TREE]},
            r"option 'trust', which the 'skops' serializer .*SkopsSerializer.*Did you mean 'trusted'",
        ),
        ({"trusted": TREE}, r"option 'trusted' \(trusted=\) takes a list of type names.*got a str"),
        ({"trusted": [1]}, r"option 'trusted' \(trusted=\) takes type names as strings"),
    ],
    ids=["unknown-option", "a-string", "not-strings"],
)
def test_skops_refuses_an_option_it_does_not_read_or_a_malformed_one(tmp_path, options, pattern):
    _, path, _ = saved_forest(tmp_path)
    with pytest.raises(PersistenceError, match=pattern):
        megatron.load_pipeline(path, serializer_options={"skops": options})
    if "trusted" not in options:
        with pytest.raises(PersistenceError, match=pattern):
            megatron.persistence.audit_report(path, serializer_options={"skops": options})


def test_megatron_audit_passes_serializer_options_from_the_command_line(tmp_path, capsys):
    from megatron.cli import main

    _, path, _ = saved_forest(tmp_path)
    assert main(["audit", str(path), "--serializer-option", f"skops:trusted={TREE}"]) == 0
    assert f"  type {TREE} (NOT trusted by skops: trusted by the options given)" in capsys.readouterr().out
    assert main(["audit", str(path), "--serializer-option", f"skops:trust={TREE}"]) == 1
    assert "option 'trust', which the 'skops' serializer" in capsys.readouterr().err
    assert main(["audit", str(path), "--serializer-option", f"trusted={TREE}"]) == 2
    assert "--serializer-option takes FORMAT:NAME=VALUE; got 'trusted=" in capsys.readouterr().err
