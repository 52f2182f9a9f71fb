"""scikit-learn layers in pipeline files: skops artifacts, trusted types only."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import megatron
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
